import sip, { type SipUri } from 'sip';

/**
 * Dialog route sets (RFC 3261 §12.1, §12.2.1.1). A proxy in front of us (an SBC such as Kamailio
 * with record_route) lists itself in Record-Route; every in-dialog request must then carry the
 * route set as Route headers, or the proxy cannot relay it (Kamailio answers `404 Not here`).
 *
 * The route set only shapes the Request-URI and Route headers. Where a request physically goes
 * stays the dialog's flow (the address the INVITE came from, or the trunk's outbound address):
 * a Record-Route or Contact from the wire never makes the appliance resolve a name or reach a
 * third party. Behind a proxy the flow *is* the first route hop.
 */

/** One Route / Record-Route value: the URI as text and the name-addr's own parameters. */
export interface RouteEntry {
  uri: string;
  params: Record<string, string | null | undefined>;
}

/** More entries than any real topology needs (each SBC adds one or two); above it → 400. */
export const MAX_ROUTE_SET = 16;
/** A URI longer than this in Record-Route is refused (Kamailio's own MAX_URI_SIZE is 1024). */
export const MAX_ROUTE_URI = 1024;

export type RouteSetResult = { ok: true; routes: RouteEntry[] } | { ok: false; detail: string };

/**
 * The route set from a message's Record-Route headers, in header order (what a UAS keeps, and
 * copies into its 18x/2xx). A UAC reverses it. Absent header → empty set. Anything we could not
 * send back unchanged (an unparseable or non-SIP URI, too many entries) is an error.
 */
export function recordRouteOf(headers: Record<string, unknown>): RouteSetResult {
  const raw = headers['record-route'];
  if (raw === undefined) return { ok: true, routes: [] };
  // sip.js leaves a header it could not parse as the raw string (or drops it): not a route set.
  if (!Array.isArray(raw)) return { ok: false, detail: 'unparseable Record-Route' };
  if (raw.length > MAX_ROUTE_SET) return { ok: false, detail: `${raw.length} Record-Route entries (at most ${MAX_ROUTE_SET})` };
  const routes: RouteEntry[] = [];
  for (const entry of raw as Array<{ uri?: unknown; params?: unknown }>) {
    const uri = uriText(entry?.uri);
    if (!uri) return { ok: false, detail: 'Record-Route entry without a SIP URI' };
    if (uri.length > MAX_ROUTE_URI) return { ok: false, detail: `Record-Route URI of ${uri.length} characters` };
    if (!/^sips?:/i.test(uri) || !sip.parseUri(uri)) return { ok: false, detail: `Record-Route URI ${uri.slice(0, 80)}` };
    const params = entry.params && typeof entry.params === 'object' ? { ...(entry.params as RouteEntry['params']) } : {};
    routes.push({ uri, params });
  }
  return { ok: true, routes };
}

/** True when the URI names a loose router (`;lr`, RFC 3261 §16.12.1.1). */
export function isLooseRouter(uri: string): boolean {
  const parsed = sip.parseUri(uri);
  return parsed !== undefined && parsed !== null && Object.prototype.hasOwnProperty.call(parsed.params, 'lr');
}

/**
 * Request-URI and Route headers of an in-dialog request (RFC 3261 §12.2.1.1):
 * - empty route set: Request-URI = remote target, no Route;
 * - first route is a loose router: Request-URI = remote target, Route = the route set;
 * - first route is a strict router: Request-URI = the first route's URI (its header-level
 *   parameters dropped), Route = the rest followed by the remote target.
 */
export function inDialogAddressing(routeSet: readonly RouteEntry[], remoteTarget: string): { uri: string; route: RouteEntry[] } {
  const copy = routeSet.map((r) => ({ uri: r.uri, params: { ...r.params } }));
  if (copy.length === 0) return { uri: remoteTarget, route: [] };
  if (isLooseRouter(copy[0].uri)) return { uri: remoteTarget, route: copy };
  const [first, ...rest] = copy;
  return { uri: stripUriHeaders(first.uri), route: [...rest, { uri: remoteTarget, params: {} }] };
}

/** The route set as Record-Route header values for a response (same order, same text). */
export function asHeaderValues(routeSet: readonly RouteEntry[]): RouteEntry[] {
  return routeSet.map((r) => ({ uri: r.uri, params: { ...r.params } }));
}

function uriText(u: unknown): string | undefined {
  if (typeof u === 'string') return u;
  if (u && typeof u === 'object' && typeof (u as SipUri).host === 'string') return sip.stringifyUri(u as SipUri);
  return undefined;
}

/** RFC 3261 §12.2.1.1: parameters not allowed in a Request-URI (URI headers `?...`) are stripped. */
function stripUriHeaders(uri: string): string {
  const q = uri.indexOf('?');
  return q < 0 ? uri : uri.slice(0, q);
}
