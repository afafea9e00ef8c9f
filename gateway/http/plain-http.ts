import { isIP } from 'node:net';

/**
 * What plain HTTP still does for a client on another PC once HTTPS is on: health checks and
 * metrics (scrapers, load balancers), and what a browser needs BEFORE it trusts the site CA (the
 * CA file, the page explaining how to trust it, and the landing page `/` that links to both). Everything else (the agent page and its
 * login, the wallboard, the admin API, WebSockets) moves to HTTPS: a page on plain http:// at a
 * non-loopback address is not a secure context, so the browser gives it no microphone, and
 * passwords and tokens would cross the site network in clear.
 */
export const PLAIN_HTTP_PATHS: ReadonlySet<string> = new Set(['/healthz', '/metrics', '/ca.crt', '/trust', '/']);

/** Loopback clients (the box itself: the CLI, the demo, tests) keep plain HTTP: it is a secure context for browsers. */
export function isLoopbackClient(remote: string | undefined): boolean {
  if (!remote) return false;
  const a = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  return a.startsWith('127.') || a === '::1';
}

export type PlainHttpDecision = 'serve' | 'redirect';

/**
 * The redirect rule for a request that arrived on plain HTTP (httpsPort undefined: HTTPS is off,
 * serve all). A connection whose source is the address it reached is from this box too (the CLI
 * when http.host is a site address), like loopback.
 */
export function plainHttpDecision(pathname: string, remote: string | undefined, httpsPort: number | undefined, local?: string): PlainHttpDecision {
  if (httpsPort === undefined) return 'serve';
  if (PLAIN_HTTP_PATHS.has(pathname)) return 'serve';
  if (isLoopbackClient(remote)) return 'serve';
  return remote !== undefined && remote === local ? 'serve' : 'redirect';
}

const DNS_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * The host part of a Host header if it is a plain name or address (never anything that could
 * smuggle a path, userinfo or header into the Location), else undefined.
 */
export function hostOf(header: string | undefined): string | undefined {
  if (!header || header.length > 300) return undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(header);
  if (v6) return isIP(v6[1]) === 6 ? v6[1] : undefined;
  const m = /^([^:]+)(?::\d{1,5})?$/.exec(header);
  if (!m) return undefined;
  return isIP(m[1]) === 4 || DNS_NAME.test(m[1]) ? m[1] : undefined;
}

/**
 * Where a plain-HTTP request goes on HTTPS: the host the browser used (Host header), else the
 * address it reached the box at, on the HTTPS port, same path and query.
 */
export function httpsLocation(o: { hostHeader: string | undefined; localAddress: string | undefined; httpsPort: number; pathAndQuery: string }): string {
  let host = hostOf(o.hostHeader);
  if (!host) {
    const local = o.localAddress ?? '127.0.0.1';
    host = local.startsWith('::ffff:') ? local.slice(7) : local;
  }
  const hostPart = isIP(host) === 6 ? `[${host}]` : host;
  const path = o.pathAndQuery.startsWith('/') && !o.pathAndQuery.startsWith('//') ? o.pathAndQuery : '/';
  return `https://${hostPart}${o.httpsPort === 443 ? '' : `:${o.httpsPort}`}${path}`;
}
