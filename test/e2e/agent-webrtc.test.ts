import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import WebSocket from 'ws';
import type { CallRecord } from '../../gateway/store/call-store';
import { inboundAudio, launchChromium, openAgent, type AgentPage } from './browser';
import { eventually, ROOT, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';

const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret' };
const CONFIG = {
  site: { id: 'e2e', deviceId: 'edge-agents' },
  calls: { queue: 'support', maxDurationS: 600 },
  trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMA', 'PCMU'] }],
  queues: [{ name: 'support', ringTimeoutS: 4, wrapUpS: 3 }],
  agents: [
    { name: 'alice', displayName: 'Alice', password: PASSWORDS.alice },
    { name: 'bob', displayName: 'Bob', password: PASSWORDS.bob },
  ],
  agentSessions: { reconnectGraceS: 2 },
};
const STRACE = path.join(ROOT, 'test-output', 'agent-e2e.strace');

describe('agents on WebRTC: headless Chromium answers calls from the PBX', function () {
  let daemon: DaemonHandle;
  let browser: Browser;
  const uacs: TestUac[] = [];
  const pages: AgentPage[] = [];
  let target: string;

  const caller = async (codec: 'PCMU' | 'PCMA' = 'PCMA', from = '5550100', name = 'Jane Caller'): Promise<TestUac> => {
    const uac = await TestUac.create({ codec });
    uacs.push(uac);
    assert.equal(await uac.call(target, { from, fromName: name }), 200, 'the queue answers the caller');
    return uac;
  };
  const agent = async (name: 'alice' | 'bob'): Promise<AgentPage> => {
    const p = await openAgent(browser, daemon.httpPort, name, PASSWORDS[name]);
    pages.push(p);
    return p;
  };
  const statusIs = (p: AgentPage, re: RegExp): Promise<string> => eventually(async () => re.test(await p.status()) && p.status(), 15000);
  const callRecord = async (match: (c: CallRecord) => boolean): Promise<CallRecord> =>
    eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=100')).body.calls.find((c) => match(c) && c.state === 'ended'), 15000);

  before(async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path.dirname(STRACE), { recursive: true });
    daemon = await startDaemon({ config: CONFIG, env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' }, straceFile: STRACE });
    target = `127.0.0.1:${daemon.sipPort}`;
    browser = await launchChromium();
  });
  afterEach(async () => {
    for (const u of uacs.splice(0)) u.close();
    for (const p of pages.splice(0)) await p.context.close().catch(() => undefined);
    await sleep(3200); // wrap-up of the last call ends before the next test
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('the agent answers in the browser and audio flows both ways; the agent hangs up and the PBX gets BYE', async () => {
    const alice = await agent('alice');
    await alice.shot('01-logged-in');
    await alice.page.getByRole('button', { name: 'Available' }).click();
    await statusIs(alice, /^Available$/);
    await alice.shot('02-available');

    const uac = await caller('PCMA');
    await statusIs(alice, /^Ringing$/);
    assert.match((await alice.page.textContent('body')) ?? '', /5550100/);
    await alice.shot('03-ringing');
    await alice.page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(alice, /^On call$/);

    // Caller → browser: the tone from the test UAC is heard in the page.
    const heard = await eventually(async () => {
      const s = await inboundAudio(alice.page);
      return s.packetsReceived > 50 && s.audioLevel > 0 && s;
    }, 15000);
    assert.ok(heard.audioLevel > 0.01, `audioLevel ${heard.audioLevel}`);
    // Browser → caller: the fake microphone's audio arrives at the caller's RTP socket, not silence.
    uac.resetMeasurement();
    await sleep(3000);
    assert.ok(uac.packetsReceived > 100, `caller received ${uac.packetsReceived} packets in 3 s`);
    assert.ok(uac.receivedLevel > 100, `caller heard RMS ${uac.receivedLevel.toFixed(1)} (silence is < 10)`);
    await alice.shot('04-on-call');

    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    assert.ok(await uac.waitForBye(5000), 'the PBX leg got BYE');
    await statusIs(alice, /^Wrap-up$/);
    await alice.page.getByRole('button', { name: 'Resolved', exact: true }).click();
    await alice.page.getByText('Saved: Resolved.').waitFor();
    await alice.shot('05-wrap-up');
    await statusIs(alice, /^Available$/);
    const rec = await callRecord((c) => c.agent === 'alice' && c.endCause === 'agent-hangup');
    assert.equal(rec.queue, 'support');
    assert.equal(rec.codec, 'PCMA');
  });

  it('the caller hangs up during the call: the page is told and the agent goes to wrap-up', async () => {
    const alice = await agent('alice');
    await alice.page.getByRole('button', { name: 'Available' }).click();
    const uac = await caller('PCMU', '5550111');
    await statusIs(alice, /^Ringing$/);
    await alice.page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(alice, /^On call$/);
    await eventually(async () => (await inboundAudio(alice.page)).packetsReceived > 10);
    assert.equal(await uac.hangup(), 200);
    await statusIs(alice, /^Wrap-up$/);
    assert.match((await alice.page.textContent('body')) ?? '', /caller hung up/i);
    await callRecord((c) => c.agent === 'alice' && c.fromUser === '5550111' && c.endCause === 'caller-hangup');
  });

  it('ring-no-answer: the agent goes away (no-answer) and the call rings the next agent', async () => {
    const alice = await agent('alice');
    await alice.page.getByRole('button', { name: 'Available' }).click();
    await statusIs(alice, /^Available$/);
    const bob = await agent('bob');
    await caller('PCMA', '5550122');
    // alice became available first, so she is the longest idle and rings first.
    await statusIs(alice, /^Ringing$/);
    await bob.page.getByRole('button', { name: 'Available' }).click();
    await statusIs(alice, /^Away \(no-answer\)$/);
    await alice.shot('06-rona');
    await statusIs(bob, /^Ringing$/);
    await bob.page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(bob, /^On call$/);
    await bob.page.getByRole('button', { name: 'Hang up' }).click();
  });

  it('the caller hangs up while the agent’s phone rings: the ringing stops', async () => {
    const alice = await agent('alice');
    await alice.page.getByRole('button', { name: 'Available' }).click();
    const uac = await caller('PCMA', '5550133');
    await statusIs(alice, /^Ringing$/);
    assert.equal(await uac.hangup(), 200);
    await statusIs(alice, /^Available$/);
    assert.equal(await alice.page.getByRole('button', { name: 'Answer' }).isDisabled(), true);
  });

  it('two agents, three callers: two are answered, the third waits for the first free agent', async () => {
    const alice = await agent('alice');
    const bob = await agent('bob');
    await alice.page.getByRole('button', { name: 'Available' }).click();
    await bob.page.getByRole('button', { name: 'Available' }).click();
    await caller('PCMA', '5550141');
    await caller('PCMA', '5550142');
    await caller('PCMA', '5550143');
    for (const p of [alice, bob]) {
      await statusIs(p, /^Ringing$/);
      await p.page.getByRole('button', { name: 'Answer' }).click();
      await statusIs(p, /^On call$/);
    }
    const waiting = (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=10')).body.calls.filter((c) => c.state === 'answered' && c.agent === null);
    assert.equal(waiting.length, 1, 'one caller still queued');
    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    await statusIs(alice, /^Wrap-up$/);
    await statusIs(alice, /^Ringing$/); // after 3 s of wrap-up the third caller rings at alice
    assert.match((await alice.page.textContent('body')) ?? '', /5550143/);
    await alice.page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(alice, /^On call$/);
    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    await bob.page.getByRole('button', { name: 'Hang up' }).click();
  });

  it('a browser that vanishes mid-call: the call ends and the caller gets BYE within the grace time', async () => {
    const bob = await agent('bob');
    await bob.page.getByRole('button', { name: 'Available' }).click();
    const uac = await caller('PCMA', '5550150');
    await statusIs(bob, /^Ringing$/);
    await bob.page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(bob, /^On call$/);
    await bob.context.close(); // the tab and its connections are gone at once
    assert.ok(await uac.waitForBye(10_000), 'the caller got BYE');
    const rec = await callRecord((c) => c.fromUser === '5550150');
    assert.ok(rec.endCause === 'agent-lost' || rec.endCause === 'media-failed', String(rec.endCause));
  });

  it('a wrong password shows a clear error and opens no session', async () => {
    const p = await openAgent(browser, daemon.httpPort, 'alice', 'nope', { login: false });
    pages.push(p);
    await p.page.getByLabel('Agent').fill('alice');
    await p.page.getByLabel('Password').fill('wrong');
    await p.page.getByRole('button', { name: 'Log in' }).click();
    const alert = p.page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /wrong agent name or password/i);
    await p.shot('07-bad-login');
    assert.equal(await p.page.getByRole('button', { name: 'Available' }).isVisible(), false);
  });

  it('a garbage WebSocket message gets an error reply and the connection stays usable', async () => {
    const login = await fetch(`http://127.0.0.1:${daemon.httpPort}/agent/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ agent: 'bob', password: PASSWORDS.bob }),
    });
    assert.equal(login.status, 200);
    const { token } = (await login.json()) as { token: string };
    const ws = new WebSocket(`ws://127.0.0.1:${daemon.httpPort}/ws`);
    const inbox: Array<{ type: string; code?: string }> = [];
    ws.on('message', (d) => inbox.push(JSON.parse(d.toString()) as { type: string; code?: string }));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ v: 1, type: 'hello', token }));
    await eventually(async () => inbox.some((m) => m.type === 'welcome'));
    ws.send('{{{ not json');
    ws.send(JSON.stringify({ v: 1, type: 'answer', callId: 'not-a-uuid' }));
    ws.send(JSON.stringify({ v: 7, type: 'ping' }));
    await eventually(async () => inbox.filter((m) => m.type === 'error').length === 3);
    assert.deepEqual(inbox.filter((m) => m.type === 'error').map((m) => m.code), ['WS_BAD_MESSAGE', 'WS_BAD_MESSAGE', 'WS_UNSUPPORTED_VERSION']);
    ws.send(JSON.stringify({ v: 1, type: 'ping' }));
    await eventually(async () => inbox.some((m) => m.type === 'pong'));
    ws.close();
  });

  it('the wallboard shows the queue KPIs live, and /api/v1/queues has them as JSON', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${daemon.httpPort}/wallboard#token=${daemon.adminToken}`);
    const tile = page.locator('article.tile[data-queue="support"]');
    await tile.waitFor();
    const { body } = await daemon.api<{ queues: Array<{ name: string; offered: number; answered: number; abandoned: number; serviceLevel: number | null; fcr: number | null; aht: number | null }> }>('/api/v1/queues');
    const q = body.queues.find((x) => x.name === 'support');
    // Seven answered calls; the caller who hung up after ~1 s of ringing is a short abandon
    // (under 5 s): not offered, not abandoned (the default `exclude-short` rule).
    assert.ok(q && q.offered === 7 && q.answered === 7 && q.abandoned === 0, JSON.stringify(q));
    assert.equal(q.fcr, 1, 'one disposition, resolved');
    assert.ok(q.serviceLevel !== null && q.serviceLevel > 0);
    await page.screenshot({ path: path.join(ROOT, 'test-output', 'screenshots', '08-wallboard.png') });
    await context.close();
  });

  it('the daemon sent nothing outside loopback during all of this (strace of connect/sendto/sendmsg)', async () => {
    const trace = readFileSync(STRACE, 'utf8');
    const v4 = [...trace.matchAll(/inet_addr\("([\d.]+)"\)/g)].map((m) => m[1]);
    const v6 = [...trace.matchAll(/inet_pton\(AF_INET6, "([^"]+)"/g)].map((m) => m[1]);
    assert.ok(v4.length > 100, `trace has ${v4.length} IPv4 destinations`);
    const outside = [...v4.filter((a) => !a.startsWith('127.')), ...v6.filter((a) => a !== '::1' && !a.startsWith('::ffff:127.'))];
    assert.deepEqual([...new Set(outside)], [], 'destinations outside loopback');
    assert.doesNotMatch(trace, /htons\(53\)/, 'no DNS query');
  });
});
