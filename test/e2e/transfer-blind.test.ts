import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { launchChromium, openAgent, type AgentPage } from './browser';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { TestUas, type UasCall } from './test-uas';
import { checkHears, describeReport, TONE_CANDIDATES, TONES, type ToneReport } from './tones';
import { WeriftAgent } from './werift-agent';

/*
 * Blind transfers end to end: every party sends its own tone and the test checks who hears whom.
 * The caller is TestUac (1 kHz); the first agent (700 Hz) hands the call on; the target is an
 * extension behind the trunk (TestUas on 127.0.0.4, 1400 Hz), a queue or an agent (1800 Hz).
 */

const EXTENSION_IP = '127.0.0.4';
const REFER_PBX_IP = '127.0.0.2';
const PASSWORD = 'transfer-secret';
/** Two seconds of audio at 8 kHz. */
const ENOUGH = 16_000;

type Connected = Extract<ServerMessage, { type: 'callConnected' }>;

describe('blind transfers: to an extension (bridged, REFER), to a queue, to an agent', function () {
  this.timeout(240_000);
  let daemon: DaemonHandle;
  let extension: TestUas;
  let browser: Browser | undefined;
  let target: string;
  const uacs: TestUac[] = [];
  const agents: WeriftAgent[] = [];
  const pages: AgentPage[] = [];

  before(async () => {
    extension = await TestUas.create({ localIp: EXTENSION_IP, toneHz: TONES.extension });
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support', maxDurationS: 600 },
        trunks: [
          // The extension's in-dialog requests (its BYE) come from its own address.
          { name: 'pbx', allow: ['127.0.0.1/32', `${EXTENSION_IP}/32`], codecs: ['PCMU', 'PCMA'], outbound: { host: EXTENSION_IP, port: extension.sipPort } },
          { name: 'referpbx', allow: [`${REFER_PBX_IP}/32`], codecs: ['PCMU', 'PCMA'], transferMode: 'refer' },
        ],
        queues: [
          { name: 'support', ringTimeoutS: 15, wrapUpS: 3 },
          { name: 'sales', ringTimeoutS: 15, wrapUpS: 3 },
        ],
        agents: [
          { name: 'alice', displayName: 'Alice', password: PASSWORD, queues: ['support'] },
          { name: 'dave', displayName: 'Dave', password: PASSWORD, queues: ['support'] },
          { name: 'bob', displayName: 'Bob', password: PASSWORD, queues: ['sales'] },
          { name: 'carol', displayName: 'Carol', password: PASSWORD, queues: ['sales'] },
        ],
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
    target = `127.0.0.1:${daemon.sipPort}`;
  });
  afterEach(async () => {
    for (const u of uacs.splice(0)) u.close();
    for (const a of agents.splice(0)) await a.close().catch(() => undefined);
    for (const p of pages.splice(0)) await p.context.close().catch(() => undefined);
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
    extension?.close();
  });

  const agent = async (name: string, hz: number): Promise<WeriftAgent> => {
    const a = await WeriftAgent.login(daemon.httpPort, name, PASSWORD);
    agents.push(a);
    a.toneHz = hz;
    a.available();
    await a.waitFor((m) => m.type === 'state' && m.state === 'available');
    return a;
  };
  const caller = async (from: string, localIp = '127.0.0.1'): Promise<TestUac> => {
    const uac = await TestUac.create({ localIp, toneHz: TONES.caller });
    uacs.push(uac);
    return uac;
  };
  /** The call the werift agent took, with its media up. */
  const connected = async (a: WeriftAgent, from = 0): Promise<string> => {
    const m = await a.waitFor<Connected>((x) => x.type === 'callConnected', 20_000, from);
    await eventually(async () => a.peer(m.callId)?.connectionState === 'connected', 15_000);
    return m.callId;
  };
  /** What the werift agent hears on the call from now, once there is enough of it. */
  const agentHears = async (a: WeriftAgent, callId: string): Promise<ToneReport> => {
    const from = a.receivedCount(callId);
    return eventually(async () => {
      const r = a.hears(callId, from, TONE_CANDIDATES);
      return r.samples >= ENOUGH && r;
    }, 20_000, 250);
  };
  /** What the caller hears from now (100 ms blocks), once there is enough of it. */
  const callerHears = async (uac: TestUac): Promise<number[]> => {
    uac.resetMeasurement();
    assert.ok(await uac.until(() => uac.ear.blocks.judged >= 15, 20_000), `the caller hears nothing: ${uac.ear.describe()}`);
    return uac.ear.heard();
  };
  const extensionHears = async (call: UasCall): Promise<number[]> => {
    call.ear?.reset();
    await extension.until(() => (call.ear?.blocks.judged ?? 0) >= 15, 20_000);
    return call.ear?.heard() ?? [];
  };
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`http://127.0.0.1:${daemon.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${daemon.adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const eventsOf = async (callId: string): Promise<Array<{ type: string; data: Record<string, unknown> }>> => {
    const r = await api('GET', `/api/v1/calls/${callId}`);
    assert.equal(r.status, 200);
    return (r.json.events as Array<{ type: string; data: Record<string, unknown> | string }>).map((e) => ({ type: e.type, data: typeof e.data === 'string' ? (JSON.parse(e.data) as Record<string, unknown>) : e.data }));
  };

  it('to an extension with transferMode refer: the PBX gets REFER with Refer-To, connects the caller to the extension; we leave', async () => {
    const dave = await agent('dave', TONES.agent);
    const uac = await caller('5550701', REFER_PBX_IP);
    uac.handleRefer({ via: { host: EXTENSION_IP, port: extension.sipPort } });
    assert.equal(await uac.call(target, { from: '5550701' }), 200);
    const callId = await connected(dave);
    assert.deepEqual(await callerHears(uac), [TONES.agent], 'before: the caller hears the agent');

    const extCalls = extension.calls.length;
    dave.send({ type: 'transfer', callId, target: '2002', mode: 'blind' });
    const ended = await dave.waitFor<Extract<ServerMessage, { type: 'callEnded' }>>((m) => m.type === 'callEnded' && m.callId === callId, 30_000);
    assert.equal(ended.cause, 'transferred');
    assert.equal(uac.refers.length, 1, 'one REFER at the PBX');
    assert.match(uac.refers[0].referTo, new RegExp(`^sip:2002@${REFER_PBX_IP.replace(/\./g, '\\.')}:\\d+$`), 'Refer-To: the number at the PBX');
    assert.equal(uac.refers[0].transferStatus, 200);
    assert.ok(await uac.waitForBye(10_000), 'we leave the call with BYE once the PBX connected it');
    assert.equal(extension.calls.length, extCalls + 1, 'the PBX called the extension');
    await dave.waitFor((m) => m.type === 'state' && m.state === 'wrap-up');

    assert.deepEqual(await callerHears(uac), [TONES.extension], `the caller hears the extension only: ${uac.ear.describe()}`);
    const ext = extension.calls[extCalls];
    assert.deepEqual(await extensionHears(ext), [TONES.caller], `the extension hears the caller: ${ext.ear?.describe()}`);
    const events = await eventsOf(callId);
    assert.ok(events.some((e) => e.type === 'call.transferred' && e.data.via === 'refer' && e.data.number === '2002'));
    assert.ok(events.some((e) => e.type === 'call.ended' && e.data.cause === 'transferred'));
    assert.equal(await uac.hangup(), 200);
  });

  it('to a queue: the caller waits on hold audio, a second agent answers the same call id; they hear each other; the first agent wraps up', async () => {
    const dave = await agent('dave', TONES.agent);
    const uac = await caller('5550702');
    assert.equal(await uac.call(target, { from: '5550702' }), 200);
    const callId = await connected(dave);

    const bob = await agent('bob', TONES.target);
    dave.send({ type: 'transfer', callId, target: 'queue:sales', mode: 'blind' });
    const ended = await dave.waitFor<Extract<ServerMessage, { type: 'callEnded' }>>((m) => m.type === 'callEnded' && m.callId === callId);
    assert.equal(ended.cause, 'transferred');
    await dave.waitFor((m) => m.type === 'state' && m.state === 'wrap-up');
    const bobCall = await connected(bob);
    assert.equal(bobCall, callId, 'the same call id at the second agent');
    const rang = (a: WeriftAgent): Extract<ServerMessage, { type: 'ringing' }> | undefined =>
      a.inbox.find((m): m is Extract<ServerMessage, { type: 'ringing' }> => m.type === 'ringing' && m.call.callId === callId);
    assert.equal(rang(bob)?.call.queue, 'sales');
    assert.equal(rang(bob)?.call.queuedAt, rang(dave)?.call.queuedAt, 'the caller keeps their wait time');

    const heard = await callerHears(uac);
    const bobHears = await agentHears(bob, callId);
    console.log(`      caller hears ${uac.ear.describe()}; bob hears ${describeReport(bobHears)}`);
    assert.deepEqual(heard, [TONES.target], 'the caller hears the second agent only');
    assert.equal(checkHears('bob', bobHears, [TONES.caller]), null);

    const events = await eventsOf(callId);
    const legs = events.filter((e) => e.type === 'call.leg-added' && e.data.kind === 'agent').map((e) => e.data.name);
    assert.deepEqual(legs, ['dave', 'bob'], 'the record has both agents');
    assert.ok(events.some((e) => e.type === 'call.leg-removed' && e.data.name === 'dave' && e.data.reason === 'transferred'));
    bob.hangup(callId);
    assert.ok(await uac.waitForBye(5000));
  });

  it('to an agent (admin API too): only that agent rings, then talks to the caller; bad requests get 400/404/409', async () => {
    const dave = await agent('dave', TONES.agent);
    const uac = await caller('5550703');
    assert.equal(await uac.call(target, { from: '5550703' }), 200);
    const callId = await connected(dave);
    const bob = await agent('bob', TONES.extension);
    const carol = await agent('carol', TONES.target);

    assert.equal((await api('POST', `/api/v1/calls/${callId}/transfer`, { target: 'sales' })).status, 400, 'not a target');
    assert.equal((await api('POST', `/api/v1/calls/${callId}/transfer`, {})).status, 400, 'no target');
    assert.equal((await api('POST', '/api/v1/calls/00000000-0000-0000-0000-000000000000/transfer', { target: 'queue:sales' })).status, 404, 'no such call');
    const self = await api('POST', `/api/v1/calls/${callId}/transfer`, { target: 'agent:dave' });
    assert.equal(self.status, 409, JSON.stringify(self.json));
    // Over /ws, a target that cannot take it: the agent keeps the call and reads why.
    const mark = dave.inbox.length;
    dave.send({ type: 'transfer', callId, target: 'agent:alice', mode: 'blind' });
    const err = await dave.waitFor<Extract<ServerMessage, { type: 'error' }>>((m) => m.type === 'error', 10_000, mark);
    assert.equal(err.code, 'WS_TARGET_UNAVAILABLE');

    const bobMark = bob.inbox.length;
    const done = await api('POST', `/api/v1/calls/${callId}/transfer`, { target: 'agent:carol' });
    assert.equal(done.status, 200, JSON.stringify(done.json));
    assert.equal(done.json.agent, 'dave');
    assert.equal((await dave.waitFor<Extract<ServerMessage, { type: 'callEnded' }>>((m) => m.type === 'callEnded' && m.callId === callId)).cause, 'transferred');
    assert.equal(await connected(carol), callId);
    assert.equal(bob.inbox.slice(bobMark).some((m) => m.type === 'ringing'), false, 'only carol rang');

    assert.deepEqual(await callerHears(uac), [TONES.target], `the caller hears carol: ${uac.ear.describe()}`);
    assert.equal(checkHears('carol', await agentHears(carol, callId), [TONES.caller]), null);
    assert.equal(await uac.hangup(), 200);
    await carol.waitFor((m) => m.type === 'callEnded' && m.callId === callId);
  });

  it('to a busy extension, bridged: the agent keeps talking to the caller while it rings, then reads why; the call goes on', async () => {
    const dave = await agent('dave', TONES.agent);
    const uac = await caller('5550705');
    assert.equal(await uac.call(target, { from: '5550705' }), 200);
    const callId = await connected(dave);
    extension.holdAnswers = true;
    extension.answerWith = 486;
    try {
      const extCalls = extension.calls.length;
      const mark = dave.inbox.length;
      dave.send({ type: 'transfer', callId, target: '2009', mode: 'blind' });
      await extension.until(() => extension.calls.length === extCalls + 1, 10_000);
      assert.deepEqual(await callerHears(uac), [TONES.agent], 'while the extension rings the caller still hears the agent');
      const again = dave.inbox.length;
      dave.send({ type: 'transfer', callId, target: 'queue:sales', mode: 'blind' });
      assert.equal((await dave.waitFor<Extract<ServerMessage, { type: 'error' }>>((m) => m.type === 'error', 10_000, again)).code, 'WS_NOT_ALLOWED', 'one transfer at a time');
      extension.releaseAnswers();
      const err = await dave.waitFor<Extract<ServerMessage, { type: 'error' }>>((m) => m.type === 'error' && /2009/.test(m.message), 15_000, mark);
      assert.equal(err.code, 'WS_TARGET_UNAVAILABLE');
      assert.match(err.message, /486/);
    } finally {
      extension.answerWith = 200;
      extension.holdAnswers = false;
    }
    assert.equal(dave.inbox.some((m) => m.type === 'callEnded' && m.callId === callId), false, 'the agent still has the call');
    assert.deepEqual(await callerHears(uac), [TONES.agent], `the caller still hears the agent: ${uac.ear.describe()}`);
    assert.equal(checkHears('dave', await agentHears(dave, callId), [TONES.caller]), null);
    const events = await eventsOf(callId);
    assert.ok(events.some((e) => e.type === 'call.transfer-failed' && e.data.number === '2009'));
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    assert.match(metrics, /^ccedge_transfers_total\{via="bridge",outcome="failed"\} 1$/m, 'the failed transfer is counted');
    assert.match(metrics, /^ccedge_transfers_total\{via="refer",outcome="done"\} 1$/m);
    assert.match(metrics, /^ccedge_transfers_total\{via="agent",outcome="refused"\} 2$/m, 'agent:dave (themselves, admin API) and agent:alice (offline) were refused');
    dave.hangup(callId);
    assert.ok(await uac.waitForBye(5000));
  });

  it('to an extension, bridged (Chromium agent: Transfer, Transfer to, Transfer now): the caller then hears only the extension, the extension the caller', async () => {
    browser = await launchChromium({ toneHz: TONES.agent });
    const alice = await openAgent(browser, daemon.httpPort, 'alice', PASSWORD);
    pages.push(alice);
    const { page } = alice;
    const statusIs = (re: RegExp): Promise<string> => eventually(async () => re.test(await alice.status()) && alice.status(), 15_000);
    await page.getByRole('button', { name: 'Available' }).click();
    await statusIs(/^Available$/);
    const uac = await caller('5550704');
    assert.equal(await uac.call(target, { from: '5550704' }), 200);
    await statusIs(/^Ringing$/);
    await page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(/^On call$/);
    const callId = await eventually(async () => {
      const calls = (await api('GET', '/api/v1/calls?limit=5')).json.calls as Array<{ id: string; fromUri: string }>;
      return calls.find((c) => c.fromUri.includes('5550704'))?.id;
    }, 10_000);

    const extCalls = extension.calls.length;
    await page.getByRole('button', { name: 'Transfer', exact: true }).click();
    await page.getByRole('textbox', { name: 'Transfer to', exact: true }).fill('2001');
    await page.getByRole('button', { name: 'Transfer now', exact: true }).click();
    await page.getByText('Call ended: The caller was transferred.').waitFor({ timeout: 30_000 });
    await statusIs(/^Wrap-up/);
    await alice.shot('transfer-blind-done');
    assert.equal(extension.calls.length, extCalls + 1, 'the extension was called through the trunk');
    const ext = extension.calls[extCalls];
    assert.equal(ext.invite.headers.to.uri.startsWith('sip:2001@'), true);

    assert.deepEqual(await callerHears(uac), [TONES.extension], `the caller hears the extension only: ${uac.ear.describe()}`);
    assert.deepEqual(await extensionHears(ext), [TONES.caller], `the extension hears the caller: ${ext.ear?.describe()}`);
    const events = await eventsOf(callId);
    assert.ok(events.some((e) => e.type === 'call.leg-removed' && e.data.name === 'alice' && e.data.reason === 'transferred'));
    assert.ok(events.some((e) => e.type === 'call.leg-joined' && e.data.kind === 'outbound' && e.data.number === '2001'));
    assert.ok(events.some((e) => e.type === 'call.transferred' && e.data.via === 'bridge'));

    assert.equal(await uac.hangup(), 200);
    await extension.until(() => ext.byeReceived, 10_000);
    await sleep(3200); // wrap-up (3 s) ends before the daemon stops
  });
});
