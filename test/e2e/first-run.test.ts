import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync, existsSync, mkdtempSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { encodeFrame } from '../../media/tones/g711';
import { eventually, freePort, runCli, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';
import { launchChromium, openAgent } from './browser';

/**
 * From a new box to the first answered call, as the installer does it, with no YAML written by
 * hand: `ccedge provision` from the USB file (or provision, then /setup over HTTPS with the claim
 * code), the daemon on the config it wrote, an agent logging in with the one-time password,
 * choosing a new one, going Available and answering a call from the PBX.
 */
const CLAIM = 'ABCD-2345-WXYZ';


/** Agent → one-time password, from provision's or /setup's output. */
function oneTimePasswords(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^\s+([A-Za-z0-9_.-]+)\s+([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})$/gm)].map((m) => [m[1], m[2]]));
}

/** An HTTPS request trusting only the site CA, optionally from another loopback address. */
function https(port: number, ca: string, o: { method?: string; path: string; body?: string; type?: string; accept?: string; from?: string }): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: o.method ?? 'GET',
        path: o.path,
        ca,
        localAddress: o.from,
        headers: { ...(o.type ? { 'content-type': o.type } : {}), ...(o.accept ? { accept: o.accept } : {}) },
        timeout: 15_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** The agent answers a call from the PBX: two-way audio between the TestUac and the werift peer. */
async function answerOneCall(daemon: DaemonHandle, agent: WeriftAgent, uacs: TestUac[]): Promise<void> {
  agent.available();
  await eventually(async () => (await daemon.api<{ agents: Array<{ name: string; state: string }> }>('/api/v1/agents')).body.agents.find((a) => a.name === agent.name && a.state === 'available'), 10_000);
  const uac = await TestUac.create({ codec: 'PCMU' });
  uacs.push(uac);
  assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: '+15550001', to: '8005551000' }), 200, 'the box answers the caller');
  const connected = await agent.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected', 20_000);
  const peer = agent.peer(connected.callId);
  assert.ok(peer, 'the agent has a media peer for the call');
  await peer.waitConnected();
  uac.resetMeasurement();
  for (let i = 0; i < 100; i++) {
    const samples = new Int16Array(160);
    for (let n = 0; n < 160; n++) samples[n] = Math.round(8000 * Math.sin((2 * Math.PI * 1000 * (i * 160 + n)) / 8000));
    peer.sendAudio(encodeFrame('PCMU', samples), 5000 + i * 160);
    await sleep(20);
  }
  await eventually(async () => peer.received.length > 50, 10_000);
  await eventually(async () => uac.packetsReceived > 50 && uac.receivedLevel > 500, 10_000).catch(() => {
    throw new Error(`the caller did not hear the agent: ${uac.packetsReceived} packets, level ${uac.receivedLevel}`);
  });
  const call = await eventually(async () => (await daemon.api<{ calls: Array<{ state: string; fromUser: string | null }> }>('/api/v1/calls?limit=10')).body.calls.find((c) => c.fromUser === '+15550001' && c.state === 'answered'), 10_000);
  assert.ok(call);
  agent.hangup(connected.callId);
  assert.ok(await uac.waitForBye(10_000), 'the caller got BYE when the agent hung up');
}

describe('first run: a new box to the first answered call, no YAML by hand', function () {
  this.timeout(240_000);
  let dir: string;
  const daemons: DaemonHandle[] = [];
  const agents: WeriftAgent[] = [];
  const uacs: TestUac[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ccedge-first-run-'));
  });
  afterEach(async () => {
    for (const u of uacs.splice(0)) u.close();
    for (const a of agents.splice(0)) await a.close().catch(() => undefined);
    for (const d of daemons.splice(0)) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const provisionFile = (extra: Record<string, unknown> = {}): string => {
    const file = path.join(dir, 'usb-provision.yaml');
    writeFileSync(file, YAML.stringify({ siteId: 'store-042', deviceId: 'edge-01', trunkPeers: ['127.0.0.1'], brokerUrl: 'offline', claimCode: CLAIM, ...extra }));
    return file;
  };
  const provision = (args: string[]) => runCli(['provision', '--from', provisionFile(), '--config-dir', path.join(dir, 'etc'), '--data-dir', path.join(dir, 'data'), ...args], {});

  it('ccedge provision with a queue and agents → the agent logs in with the one-time password, sets a new one and answers a call; GET / lists the pages', async () => {
    const p = await provision(['--queue', 'support', '--agent', 'alice:Alice Martin', '--agent', 'bob']);
    assert.equal(p.code, 0, p.stderr);
    const passwords = oneTimePasswords(p.stdout);
    assert.deepEqual([...passwords.keys()], ['alice', 'bob'], p.stdout);
    const configFile = path.join(dir, 'etc', 'ccedge.yaml');
    const written = readFileSync(configFile, 'utf8');
    for (const pw of passwords.values()) assert.ok(!written.includes(pw), 'no password in clear in the config');
    assert.match(written, /mustChangePassword: true/);

    const daemon = await startDaemon({ configFile, dataDir: path.join(dir, 'data'), env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
    daemons.push(daemon);
    // The start log names where to go.
    const urls = await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('open '));
    assert.ok((urls.agent as string[]).includes(`https://127.0.0.1:${daemon.httpsPort}/agent`), JSON.stringify(urls));
    assert.ok((urls.urls as string[]).includes(`http://127.0.0.1:${daemon.httpPort}/`), JSON.stringify(urls));
    // GET / is a page of links, not a JSON 404, with no secrets.
    const landing = await fetch(`http://127.0.0.1:${daemon.httpPort}/`);
    assert.equal(landing.status, 200);
    assert.match(landing.headers.get('content-type') ?? '', /text\/html/);
    const html = await landing.text();
    for (const href of ['/agent', '/supervisor', '/wallboard', '/ca.crt', '/trust', '/healthz']) assert.ok(html.includes(`href="${href}"`), `landing page links ${href}`);
    assert.ok(!html.includes('href="/setup"'), 'setup is done: no setup link');
    assert.ok(!html.includes(daemon.adminToken) && ![...passwords.values()].some((pw) => html.includes(pw)));
    // /setup is closed after provisioning with agents.
    const ca = readFileSync(path.join(dir, 'data', 'keys', 'site-ca.crt'), 'utf8');
    assert.equal((await https(daemon.httpsPort, ca, { path: '/setup' })).status, 410);

    // First login: the one-time password is right but a new one is required before any session.
    const oneTime = passwords.get('alice') as string;
    const first = await fetch(`http://127.0.0.1:${daemon.httpPort}/agent/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ agent: 'alice', password: oneTime }) });
    assert.equal(first.status, 403);
    assert.equal(((await first.json()) as { error: { code: string } }).error.code, 'AGENT_PASSWORD_CHANGE_REQUIRED');
    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', oneTime, { newPassword: 'alice-chose-this' });
    agents.push(alice);
    await answerOneCall(daemon, alice, uacs);
    // The one-time password is spent; the chosen one works.
    const again = await fetch(`http://127.0.0.1:${daemon.httpPort}/agent/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ agent: 'alice', password: oneTime }) });
    assert.equal(again.status, 401);

    // Bob on the agent page (Chromium): the page asks for a new password, then he is in.
    const browser = await launchChromium();
    try {
      const bob = await openAgent(browser, daemon.httpPort, 'bob', '', { login: false });
      await bob.page.getByLabel('Agent').fill('bob');
      await bob.page.getByLabel('Password').fill(passwords.get('bob') as string);
      await bob.page.getByRole('button', { name: 'Log in' }).click();
      await bob.page.getByLabel('New passphrase', { exact: true }).waitFor();
      assert.match(await bob.page.getByRole('alert').first().textContent() ?? '', /one-time password/i);
      await bob.page.getByLabel('New passphrase', { exact: true }).fill('bob-own-secret');
      await bob.page.getByLabel('Repeat the new passphrase').fill('bob-typo-secret');
      await bob.page.getByRole('button', { name: 'Set password and log in' }).click();
      await eventually(async () => /differ/.test((await bob.page.getByRole('alert').first().textContent()) ?? ''), 10_000);
      await bob.page.getByLabel('Repeat the new passphrase').fill('bob-own-secret');
      await bob.page.getByRole('button', { name: 'Set password and log in' }).click();
      await bob.page.getByRole('button', { name: 'Available' }).waitFor();
      const relogin = await fetch(`http://127.0.0.1:${daemon.httpPort}/agent/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ agent: 'bob', password: 'bob-own-secret' }) });
      assert.equal(relogin.status, 200, 'the password chosen on the page is the one that works');
    } finally {
      await browser.close();
    }
  });

  it('provision without agents → /setup over HTTPS with the claim code (wrong codes refused and throttled) → restart → an agent answers a call', async () => {
    const p = await provision([]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /no agents yet: finish on https:\/\/.*\/setup/);
    const configFile = path.join(dir, 'etc', 'ccedge.yaml');
    const dataDir = path.join(dir, 'data');
    const ports = { sip: await freePort(), http: await freePort(), sipTls: await freePort(), https: await freePort() };
    const env = { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' };
    const d1 = await startDaemon({ configFile, dataDir, ports, env });
    daemons.push(d1);
    const ca = readFileSync(path.join(dataDir, 'keys', 'site-ca.crt'), 'utf8');
    assert.match(await (await fetch(`http://127.0.0.1:${d1.httpPort}/`)).text(), /href="\/setup"/, 'the landing page points the installer to setup');
    // Plain HTTP never carries the claim code.
    assert.equal((await fetch(`http://127.0.0.1:${d1.httpPort}/setup`)).status, 403);
    const form = await https(d1.httpsPort, ca, { path: '/setup' });
    assert.equal(form.status, 200);
    assert.match(form.body, /name="claimCode"/);

    const body = (claimCode: string): string => new URLSearchParams({ claimCode, trunkPeers: '127.0.0.1', queue: 'sales', agents: 'carol:Carol Diaz\ndave' }).toString();
    const formType = 'application/x-www-form-urlencoded';
    // A guesser on another address: refused, then blocked before the code is even compared.
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await https(d1.httpsPort, ca, { method: 'POST', path: '/setup', body: body(`WRNG-CODE-${String(1000 + i)}`), type: formType, from: '127.0.0.2' })).status);
    assert.deepEqual(statuses, [403, 403, 403, 403, 403, 429, 429]);
    const blocked = await https(d1.httpsPort, ca, { method: 'POST', path: '/setup', body: body(CLAIM), type: formType, from: '127.0.0.2' });
    assert.equal(blocked.status, 429, 'even the right code waits out the block');
    assert.ok(Number(blocked.headers['retry-after']) >= 1);
    // Keeps knocking: logged, but not a line per attempt (burst 5 per kind of refusal, then a summary).
    for (let i = 0; i < 30; i++) assert.equal((await https(d1.httpsPort, ca, { method: 'POST', path: '/setup', body: body(CLAIM), type: formType, from: '127.0.0.2' })).status, 429);
    await sleep(300);
    const refusedLines = d1.logs.filter((l) => l.code === 'SETUP_REFUSED').length;
    assert.ok(refusedLines >= 2 && refusedLines <= 10, `${refusedLines} log lines for 38 refused attempts`);

    // The installer, with the right code.
    const submitted = Date.now();
    const done = await https(d1.httpsPort, ca, { method: 'POST', path: '/setup', body: body(CLAIM), type: formType });
    assert.equal(done.status, 200, done.body);
    const passwords = oneTimePasswordsFromHtml(done.body);
    assert.deepEqual([...passwords.keys()], ['carol', 'dave']);
    // The daemon restarts into the new config (systemd starts it again on exit 75).
    assert.equal(await d1.exited, 75);
    daemons.splice(daemons.indexOf(d1), 1);
    const written = readFileSync(configFile, 'utf8');
    for (const pw of passwords.values()) assert.ok(!written.includes(pw), 'no password in clear');
    const d2 = await startDaemon({ configFile, dataDir, ports, env });
    daemons.push(d2);
    // A figure for the README's installer steps (printed, not asserted).
    console.log(`      /setup submitted → restarted box answering: ${((Date.now() - submitted) / 1000).toFixed(1)} s`);
    const closed = await https(d2.httpsPort, ca, { method: 'POST', path: '/setup', body: body(CLAIM), type: formType });
    assert.equal(closed.status, 410, 'setup is closed once done');

    const carol = await WeriftAgent.login(d2.httpPort, 'carol', passwords.get('carol') as string, { newPassword: 'carol-own-password' });
    agents.push(carol);
    await answerOneCall(d2, carol, uacs);
  });

  it('ccedge calls in an empty directory creates nothing', async () => {
    const r = await runCli(['calls'], {}, { cwd: dir });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /CLI_NO_DATA_DIR/);
    assert.equal(existsSync(path.join(dir, 'var')), false);
    assert.deepEqual(readdirSync(dir), []);
  });
});

function oneTimePasswordsFromHtml(html: string): Map<string, string> {
  return new Map([...html.matchAll(/<tr><td>([A-Za-z0-9_.-]+)<\/td><td><code>([A-Z2-9-]{14})<\/code><\/td><\/tr>/g)].map((m) => [m[1], m[2]]));
}
