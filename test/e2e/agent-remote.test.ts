import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { CHROMIUM, inboundAudio, launchChromium, openAgent, SHOTS, type AgentPage } from './browser';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';

const run = promisify(execFile);
const PASSWORD = 'remote-secret';
const CONFIG = {
  site: { id: 'e2e', deviceId: 'edge-remote' },
  calls: { queue: 'support', maxDurationS: 600 },
  trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMA', 'PCMU'] }],
  queues: [{ name: 'support', ringTimeoutS: 10, wrapUpS: 2 }],
  agents: [{ name: 'carol', displayName: 'Carol', password: PASSWORD }],
};

/**
 * The "Done when": an agent on another PC. Chromium runs in its own network namespace
 * (a veth pair to the box, 10.77.X.0/30), trusts the site CA through its own NSS database
 * (certutil) — never by ignoring certificate errors — and opens the agent page by the box's
 * address over HTTPS, where it is a secure context with a microphone; audio flows both ways.
 */
describe('an agent on another PC: HTTPS with the site certificate, Chromium in a network namespace', function () {
  const x = 100 + Math.floor(Math.random() * 150);
  const ns = `ccar${x}`;
  const vethHost = `ccarA${x}`;
  const vethNs = `ccarB${x}`;
  const box = `10.77.${x}.1`;
  const pc = `10.77.${x}.2`;
  const home = mkdtempSync(path.join(tmpdir(), 'ccedge-agent-pc-'));
  let daemon: DaemonHandle | undefined;
  let browser: Browser | undefined;
  const uacs: TestUac[] = [];
  const pages: AgentPage[] = [];

  const sh = async (cmd: string, args: string[]): Promise<string> => (await run(cmd, args, { timeout: 30_000 })).stdout;
  /** A command on the agent PC (inside the namespace). */
  const onPc = (args: string[]): Promise<{ stdout: string; stderr: string; code: number }> =>
    new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', ns, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ stdout, stderr, code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0 }),
      );
    });
  const removeNetwork = async (): Promise<void> => {
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await run('ip', ['link', 'del', vethHost]).catch(() => undefined);
  };

  before(async () => {
    await removeNetwork(); // a namespace of an earlier, killed run with the same number
    await sh('ip', ['netns', 'add', ns]);
    await sh('ip', ['link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethNs]);
    await sh('ip', ['link', 'set', vethNs, 'netns', ns]);
    await sh('ip', ['addr', 'add', `${box}/30`, 'dev', vethHost]);
    await sh('ip', ['link', 'set', vethHost, 'up']);
    await sh('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${pc}/30`, 'dev', vethNs]);
    await sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', vethNs, 'up']);
    await sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);

    // The box: plain HTTP on every address (like the default 0.0.0.0), HTTPS on the site address,
    // ICE host candidates on the address the PC reaches; SIP stays on loopback (the PBX side).
    daemon = await startDaemon({ config: CONFIG, env: { CCEDGE_HTTP_HOST: '0.0.0.0', CCEDGE_HTTPS_HOST: box, CCEDGE_WEBRTC_INTERFACES: box } });

    // The PC's browser profile: an NSS database that trusts the site CA, fetched over plain HTTP
    // from the box as an installer would.
    const nssdb = path.join(home, '.pki', 'nssdb');
    mkdirSync(nssdb, { recursive: true });
    await sh('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
    const ca = path.join(home, 'site-ca.crt');
    const got = await onPc(['curl', '-sS', '-f', '-o', ca, '-w', '%{content_type}', `http://${box}:${daemon.httpPort}/ca.crt`]);
    assert.equal(got.code, 0, `CA download from the PC: ${got.stderr}`);
    assert.equal(got.stdout, 'application/x-x509-ca-cert');
    await sh('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'site-ca', '-i', ca]);

    // Chromium started by Playwright through a wrapper that enters the namespace with this HOME.
    const wrapper = path.join(home, 'chromium-in-netns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} env HOME=${home} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    browser = await launchChromium({ executablePath: wrapper });
  });

  afterEach(async () => {
    for (const u of uacs.splice(0)) u.close();
    for (const p of pages.splice(0)) await p.context.close().catch(() => undefined);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await daemon?.stop();
    await removeNetwork();
    rmSync(home, { recursive: true, force: true });
  });

  it('from the PC, plain HTTP keeps /healthz and /ca.crt, redirects the agent page to HTTPS and refuses plain WebSockets; HTTPS is refused without the CA', async () => {
    const d = daemon as DaemonHandle;
    const health = await onPc(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${box}:${d.httpPort}/healthz`]);
    assert.equal(health.stdout, '200');
    const redirect = await onPc(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `http://${box}:${d.httpPort}/agent?x=1`]);
    assert.equal(redirect.stdout, `301 https://${box}:${d.httpsPort}/agent?x=1`);
    const api = await onPc(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `http://${box}:${d.httpPort}/api/v1/calls`]);
    assert.equal(api.stdout, `301 https://${box}:${d.httpsPort}/api/v1/calls`, 'the admin API moves to HTTPS too');
    const ws = await onPc([
      'curl', '-sS', '--http1.1', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      '-w', '\n%{http_code}', `http://${box}:${d.httpPort}/ws`,
    ]);
    assert.match(ws.stdout, new RegExp(`wss://${box.replace(/\./g, '\\.')}:${d.httpsPort}/ws[\\s\\S]*\\n403$`));
    // Without the site CA the certificate is not trusted (curl's exit 60): trust comes from the CA, nothing else.
    const untrusted = await onPc(['curl', '-sS', '-o', '/dev/null', `https://${box}:${d.httpsPort}/healthz`]);
    assert.equal(untrusted.code, 60, untrusted.stderr);
    const trusted = await onPc(['curl', '-sS', '--cacert', path.join(home, 'site-ca.crt'), '-w', '%{http_code}', '-o', '/dev/null', `https://${box}:${d.httpsPort}/healthz`]);
    assert.equal(trusted.stdout, '200');
    // The loopback client (the box itself, the demo) keeps plain HTTP.
    const local = await fetch(`http://127.0.0.1:${d.httpPort}/agent`, { redirect: 'manual' });
    assert.equal(local.status, 200);
  });

  it('the trust page opens over plain HTTP on the PC with the CA fingerprint and the https:// address of the agent page', async () => {
    const d = daemon as DaemonHandle;
    const context = await (browser as Browser).newContext({ viewport: { width: 1024, height: 900 } });
    try {
      const page = await context.newPage();
      await page.goto(`http://${box}:${d.httpPort}/trust`);
      assert.equal(page.url(), `http://${box}:${d.httpPort}/trust`, 'not redirected: it is read before the CA is trusted');
      const text = (await page.textContent('body')) ?? '';
      const fingerprint = new X509Certificate(readFileSync(path.join(d.dataDir, 'keys', 'site-ca.crt'))).fingerprint256;
      assert.ok(text.includes(fingerprint), 'the CA fingerprint to check before trusting it');
      assert.ok(text.includes(`https://${box}:${d.httpsPort}/agent`), 'the agent page address');
      for (const where of ['Windows', 'macOS', 'Firefox', 'managed policy']) assert.match(text, new RegExp(where, 'i'));
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'remote-00-trust-page.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('the agent types the http:// address, lands on https:// as a secure context with a microphone, answers a PBX call and audio flows both ways', async () => {
    const d = daemon as DaemonHandle;
    const origin = `https://${box}:${d.httpsPort}`;
    const carol = await openAgent(browser as Browser, d.httpPort, 'carol', PASSWORD, { origin, url: `http://${box}:${d.httpPort}/agent`, login: false });
    pages.push(carol);
    assert.equal(carol.page.url(), `${origin}/agent`, 'plain HTTP sent the browser to HTTPS');
    const env = await carol.page.evaluate(() => {
      const g = globalThis as unknown as { isSecureContext: boolean; navigator: { mediaDevices?: unknown } };
      return { secure: g.isSecureContext, media: g.navigator.mediaDevices !== undefined };
    });
    assert.deepEqual(env, { secure: true, media: true }, 'a secure context with navigator.mediaDevices');
    assert.equal(await carol.page.locator('#insecure-warning').isVisible(), false, 'no "not HTTPS" warning');
    await carol.page.getByLabel('Agent').fill('carol');
    await carol.page.getByLabel('Password').fill(PASSWORD);
    await carol.page.getByRole('button', { name: 'Log in' }).click();
    await carol.page.getByRole('button', { name: 'Available' }).click();
    const statusIs = (re: RegExp): Promise<string> => eventually(async () => re.test(await carol.status()) && carol.status(), 20_000);
    await statusIs(/^Available$/);
    await carol.shot('remote-01-available-https');

    const uac = await TestUac.create({ codec: 'PCMA' });
    uacs.push(uac);
    assert.equal(await uac.call(`127.0.0.1:${d.sipPort}`, { from: '5550177', fromName: 'Remote Caller' }), 200, 'the queue answers the caller');
    await statusIs(/^Ringing$/);
    await carol.page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(/^On call$/);

    // Caller → agent PC: the UAC's tone is heard in the page.
    const heard = await eventually(async () => {
      const s = await inboundAudio(carol.page);
      return s.packetsReceived > 50 && s.audioLevel > 0.01 && s;
    }, 20_000);
    assert.ok(heard.audioLevel > 0.01, `audioLevel ${heard.audioLevel}`);
    // Agent PC's microphone (Chromium's fake device) → caller: non-silent RTP at the PBX side.
    await eventually(async () => uac.packetsReceived > 0, 10_000);
    uac.resetMeasurement();
    await sleep(3000);
    assert.ok(uac.packetsReceived > 100, `caller received ${uac.packetsReceived} packets in 3 s`);
    assert.ok(uac.receivedLevel > 100, `caller heard RMS ${uac.receivedLevel.toFixed(1)} (silence is < 10)`);
    await carol.shot('remote-02-on-call-https');

    // (The browser's namespace has only the veth: whatever audio it exchanged crossed it.)
    const calls = await d.api<{ calls: Array<{ agent: string | null; state: string }> }>('/api/v1/calls?limit=5');
    assert.ok(calls.body.calls.some((c) => c.agent === 'carol'), 'the call record names the agent');
    await carol.page.getByRole('button', { name: 'Hang up' }).click();
    assert.ok(await uac.waitForBye(5000), 'the PBX leg got BYE');
    await statusIs(/^Wrap-up$/);
  });
});
