/**
 * GET /trust: how a PC comes to trust the site CA, so the agent page opens over https:// without
 * a warning (and gets the microphone). Served on plain HTTP too: it is read before the CA is trusted.
 * Static text; the only values in it are the box's own (the https:// address, the CA fingerprint).
 */
export function trustPage(o: { agentUrl: string | undefined; caFingerprint256: string | undefined }): string {
  const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const agent = o.agentUrl ? `<a href="${esc(o.agentUrl)}">${esc(o.agentUrl)}</a>` : 'the https:// address of this box (HTTPS is turned off: https.enabled)';
  const ca = o.caFingerprint256
    ? `<p>Download the site CA: <a href="/ca.crt" download="site-ca.crt">site-ca.crt</a>. Before trusting it, check that its SHA-256 fingerprint is<br><code>${esc(o.caFingerprint256)}</code><br>(the administrator sees the same with <code>ccedge cert show</code>).</p>`
    : `<p>This box uses a certificate from your organisation's own CA (imported by the installer): PCs that trust that CA need nothing more.</p>`;
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Trust this box — ccedge</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.45}code{background:#eee;padding:0 .2rem;word-break:break-all}h2{margin-top:1.6rem}</style></head>
<body>
<h1>Trust this box for the agent page</h1>
<p>The agent page is ${agent}. Browsers give a page the microphone only over HTTPS, and show a
certificate warning until the PC trusts this site's certificate authority (CA), made by this box for
this site only. Trust it once per PC (or once for all PCs by policy); certificate renewals need nothing more.</p>
${ca}
<h2>Windows (Chrome, Edge)</h2>
<p>Open site-ca.crt → <b>Install Certificate…</b> → Current User (or Local Machine, as administrator) →
<b>Place all certificates in the following store</b> → <b>Trusted Root Certification Authorities</b> → Finish.
Or, as administrator: <code>certutil -addstore -f Root site-ca.crt</code>. Restart the browser.</p>
<h2>macOS (Safari, Chrome, Edge)</h2>
<p>Open site-ca.crt: Keychain Access adds it to the login keychain. Double-click it → <b>Trust</b> →
<b>When using this certificate: Always Trust</b>. Or: <code>sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain site-ca.crt</code>.</p>
<h2>Linux (Chrome, Chromium, Edge)</h2>
<p><code>certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n ccedge-site-ca -i site-ca.crt</code> (package libnss3-tools),
or Settings → Privacy and security → Security → Manage certificates → Authorities → Import (trust for websites).</p>
<h2>Firefox (every system)</h2>
<p>Settings → Privacy &amp; Security → Certificates → <b>View Certificates…</b> → Authorities → <b>Import…</b> →
site-ca.crt → tick <b>Trust this CA to identify websites</b>. Or set <code>security.enterprise_roots.enabled</code>
to true so Firefox uses the Windows/macOS store.</p>
<h2>Many PCs: managed policy</h2>
<p>Windows domain: Group Policy → Computer Configuration → Policies → Windows Settings → Security Settings →
Public Key Policies → <b>Trusted Root Certification Authorities</b> → Import site-ca.crt (Chrome and Edge use it).
Firefox: policies.json <code>{"policies":{"Certificates":{"ImportEnterpriseRoots":true,"Install":["site-ca.crt"]}}}</code>.
macOS: a configuration profile with a Certificate payload (MDM). ChromeOS: Admin console → Devices → Networks → Certificates.</p>
<h2>If the warning stays</h2>
<p>Open the page by the name or address the certificate names (<code>ccedge cert show</code> lists them; add more with
<code>https.names</code> and restart), and open TCP port of the HTTPS listener (default 8443) and the WebRTC UDP ports
(<code>webrtc.ports</code>) from the agents' PCs to this box.</p>
</body>
</html>
`;
}
