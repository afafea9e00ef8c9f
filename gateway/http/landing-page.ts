/**
 * GET /: where a person who typed the box's address goes next, and the start log's list of the
 * same addresses. Static links only: no names, counts or tokens (it is served to anyone who asks).
 */
import { isIP } from 'node:net';
import { isWildcard, siteIPv4Addresses } from '../net/addresses';

export const SITE_PAGES: ReadonlyArray<{ path: string; label: string; what: string }> = [
  { path: '/agent', label: 'Agent page', what: 'agents log in here to take calls' },
  { path: '/supervisor', label: 'Supervisor page', what: 'queues and agents live, for supervisors' },
  { path: '/wallboard', label: 'Wallboard', what: 'queue figures for a wall screen' },
  { path: '/trust', label: 'Trust this box', what: 'how a PC trusts the site certificate (once per PC)' },
  { path: '/ca.crt', label: 'Site CA certificate', what: 'download site-ca.crt' },
  { path: '/healthz', label: 'Status', what: 'health check (JSON)' },
];

export function landingPage(o: { setupOpen: boolean }): string {
  const items = SITE_PAGES.map((p) => `<li><a href="${p.path}">${p.label}</a> — ${p.what}</li>`).join('\n');
  const setup = o.setupOpen ? '<p><b>First run:</b> this box has no agents yet. The installer finishes with <a href="/setup">setup</a> (needs the claim code).</p>' : '';
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>ccedge</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}li{margin:.3rem 0}</style></head>
<body>
<h1>ccedge contact-center edge</h1>
${setup}
<ul>
${items}
</ul>
<p>Agents on other PCs use the https:// address; if the browser warns about the certificate, see <a href="/trust">Trust this box</a> first.</p>
</body>
</html>
`;
}

/** The addresses people use to reach the box: the listen address, or every site IPv4 (and loopback) for a wildcard. */
export function advertisedHosts(listen: string, names: readonly string[] = []): string[] {
  const hosts = isWildcard(listen) ? [...siteIPv4Addresses(), '127.0.0.1'] : [listen];
  return [...new Set([...names, ...hosts])].map((h) => (isIP(h) === 6 ? `[${h}]` : h));
}

/** Every page's URL on every advertised address, https first (what other PCs use), then http. */
export function siteUrls(o: { httpHost: string; httpPort: number; httpsHost?: string; httpsPort?: number; names?: readonly string[] }): { landing: string[]; pages: Record<string, string[]> } {
  const bases: string[] = [];
  if (o.httpsPort !== undefined) for (const h of advertisedHosts(o.httpsHost ?? o.httpHost, o.names)) bases.push(`https://${h}:${o.httpsPort}`);
  for (const h of advertisedHosts(o.httpHost)) bases.push(`http://${h}:${o.httpPort}`);
  const pages: Record<string, string[]> = {};
  for (const p of SITE_PAGES) pages[p.path] = bases.map((b) => b + p.path);
  return { landing: bases.map((b) => `${b}/`), pages };
}
