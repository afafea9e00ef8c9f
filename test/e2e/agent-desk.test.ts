import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import type { AgentStatus } from '../../gateway/agents/agent-desk';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import type { QueueKpi } from '../../gateway/kpi/kpi-types';
import type { CallRecord } from '../../gateway/store/call-store';
import { inboundAudio, launchChromium, openAgent, type AgentPage } from './browser';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';

const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret', carol: 'carol-secret' };
const CONFIG = {
  site: { id: 'e2e', deviceId: 'edge-desk' },
  calls: { queue: 'support', maxDurationS: 600 },
  trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMA', 'PCMU'] }],
  queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 4 }],
  agents: [
    { name: 'alice', displayName: 'Alice', password: PASSWORDS.alice },
    { name: 'bob', displayName: 'Bob', password: PASSWORDS.bob },
    { name: 'carol', displayName: 'Carol', password: PASSWORDS.carol },
  ],
  agentSessions: { reconnectGraceS: 2 },
};

type Ringing = Extract<ServerMessage, { type: 'ringing' }>;
type Ended = Extract<ServerMessage, { type: 'callEnded' }>;

describe('agent desk: sessions that never lie and a desk for a full shift (headless Chromium + werift agents)', function () {
  let daemon: DaemonHandle;
  let browser: Browser;
  const uacs: TestUac[] = [];
  const pages: AgentPage[] = [];
  const werifts: WeriftAgent[] = [];
  const browsers: Browser[] = [];
  let target: string;
  /** A stand-in CRM on loopback: the screen pop must reach it from the agent's browser. */
  let crm: Server;
  const crmHits: string[] = [];

  const caller = async (from: string, name = 'Jane Caller'): Promise<TestUac> => {
    const uac = await TestUac.create({ codec: 'PCMA' });
    uacs.push(uac);
    assert.equal(await uac.call(target, { from, fromName: name, to: '8005551000' }), 200, 'the queue answers the caller');
    return uac;
  };
  const page = async (name: 'alice' | 'bob', b = browser): Promise<AgentPage> => {
    const p = await openAgent(b, daemon.httpPort, name, PASSWORDS[name]);
    pages.push(p);
    return p;
  };
  const werift = async (name: 'bob' | 'carol'): Promise<WeriftAgent> => {
    const a = await WeriftAgent.login(daemon.httpPort, name, PASSWORDS[name]);
    werifts.push(a);
    return a;
  };
  const statusIs = (p: AgentPage, re: RegExp): Promise<string> => eventually(async () => re.test(await p.status()) && p.status(), 15000);
  const agents = async (): Promise<AgentStatus[]> => (await daemon.api<{ agents: AgentStatus[] }>('/api/v1/agents')).body.agents;
  const agentIs = (name: string, state: string, reason: string | null, timeoutMs = 15000): Promise<AgentStatus> =>
    eventually(async () => (await agents()).find((a) => a.name === name && a.state === state && a.reason === reason), timeoutMs);
  const support = async (): Promise<QueueKpi> => (await daemon.api<{ queues: QueueKpi[] }>('/api/v1/queues')).body.queues.find((q) => q.name === 'support') as QueueKpi;
  const callRecord = (match: (c: CallRecord) => boolean): Promise<CallRecord> =>
    eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=200')).body.calls.find(match), 15000);

  before(async () => {
    crm = createServer((req, res) => {
      crmHits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'text/html' }).end('<title>CRM</title><h1>Customer</h1>');
    });
    await new Promise<void>((r) => crm.listen(0, '127.0.0.1', r));
    const crmPort = (crm.address() as AddressInfo).port;
    const config = { ...CONFIG, agentDesk: { screenPopUrl: `http://127.0.0.1:${crmPort}/crm/search?phone={caller}&name={callerName}&queue={queue}`, wrapUpExtendS: 30 } };
    daemon = await startDaemon({ config, env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
    target = `127.0.0.1:${daemon.sipPort}`;
    browser = await launchChromium();
  });
  afterEach(async () => {
    for (const u of uacs.splice(0)) u.close();
    for (const p of pages.splice(0)) {
      // Log out like an agent at the end of a shift, so the next test starts from offline.
      await p.page.getByRole('button', { name: 'Log out' }).click({ timeout: 2000 }).catch(() => undefined);
      await p.context.close().catch(() => undefined);
    }
    for (const a of werifts.splice(0)) await a.close();
    for (const b of browsers.splice(0)) await b.close().catch(() => undefined);
    await sleep(500);
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
    crm?.close();
  });

  it('Log out takes the agent offline in the ACD at once: the next call rings another agent, the agents API and KPIs say offline', async () => {
    const alice = await page('alice');
    await alice.page.getByRole('button', { name: 'Available' }).click();
    await statusIs(alice, /^Available$/);
    const bob = await werift('bob');
    bob.available();
    await agentIs('bob', 'available', null);
    // alice has been idle longest: without the fix she would ring first, though logged out.
    await alice.page.getByRole('button', { name: 'Log out' }).click();
    await alice.page.getByLabel('Agent').waitFor();
    const row = await agentIs('alice', 'offline', 'logout', 3000);
    assert.equal(row.label, 'Offline');
    const q = await eventually(async () => {
      const k = await support();
      return k.agents.available === 1 && k;
    });
    assert.equal(q.agents.offline, 2, JSON.stringify(q.agents)); // alice (logged out) and carol (never logged in)
    const uac = await caller('5550101');
    const ring = await bob.waitFor<Ringing>((m) => m.type === 'ringing');
    assert.equal(ring.call.caller, '5550101');
    await bob.waitFor((m) => m.type === 'callConnected');
    const rec = await callRecord((c) => c.fromUser === '5550101' && c.agent === 'bob');
    assert.equal(rec.queue, 'support');
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    assert.match(metrics, /ccedge_agent_sessions_ended_total\{reason="logout"\} [1-9]/);
    bob.hangup(ring.call.callId);
    assert.ok(await uac.waitForBye(5000));
  });

  it('a closed tab: the agent leaves Available after the grace (away, disconnected) and the ringing caller goes to another agent', async () => {
    const alice = await page('alice');
    await alice.page.getByRole('button', { name: 'Available' }).click();
    await statusIs(alice, /^Available$/);
    const bob = await werift('bob');
    bob.available();
    await agentIs('bob', 'available', null);
    await alice.context.close(); // the tab and its WebSocket are gone; no logout was sent
    pages.splice(pages.indexOf(alice), 1);
    const uac = await caller('5550202');
    // The caller is first offered to alice (longest idle, still Available within the grace) ...
    await agentIs('alice', 'away', 'disconnected', 10000);
    // ... and goes to bob once the grace is over, long before alice's 20 s ring timeout.
    const ring = await bob.waitFor<Ringing>((m) => m.type === 'ringing', 10000);
    assert.equal(ring.call.caller, '5550202');
    await bob.waitFor((m) => m.type === 'callConnected');
    const kpi = await eventually(async () => {
      const k = await support();
      return (k.away.disconnected ?? 0) === 1 && k;
    });
    assert.equal(kpi.agents.away, 1);
    bob.hangup(ring.call.callId);
    assert.ok(await uac.waitForBye(5000));
    assert.equal((await agents()).find((a) => a.name === 'alice')?.state, 'away', 'still away: nothing puts a vanished desk back in line');
  });

  it('media that never connects: the agent goes away (media-failed), the caller hears hold audio again at the HEAD of the queue and the next agent answers', async () => {
    const carol = await werift('carol');
    carol.brokenMedia = true;
    const bob = await werift('bob'); // logged in, away (login): nobody else can take calls yet
    carol.available();
    await agentIs('carol', 'available', null);
    const first = await caller('5550301', 'First Caller');
    await carol.waitFor((m) => m.type === 'webrtcOffer');
    const second = await caller('5550302', 'Second Caller'); // queued behind, nobody available
    const ended = await carol.waitFor<Ended>((m) => m.type === 'callEnded', 40_000);
    assert.equal(ended.cause, 'requeued');
    const row = await agentIs('carol', 'away', 'media-failed', 5000);
    assert.equal(row.label, 'Away (media-failed)');
    // Not hung up: no BYE, and the caller hears the hold tone again.
    first.resetMeasurement();
    await sleep(2000);
    assert.equal(await first.waitForBye(10), false, 'the caller was not hung up');
    assert.ok(first.receivedLevel > 100, `hold audio RMS ${first.receivedLevel.toFixed(1)}`);
    bob.available();
    const ring = await bob.waitFor<Ringing>((m) => m.type === 'ringing');
    assert.equal(ring.call.caller, '5550301', 'the re-queued caller is at the head, before the one who came later');
    await bob.waitFor((m) => m.type === 'callConnected' && m.callId === ring.call.callId);
    const rec = await callRecord((c) => c.fromUser === '5550301' && c.agent === 'bob');
    const { body } = await daemon.api<{ events: Array<{ type: string; data: Record<string, unknown> }> }>(`/api/v1/calls/${rec.id}`);
    assert.ok(body.events.some((e) => e.type === 'call.agent-media-failed' && e.data.agent === 'carol'), 'the failure is in the call record');
    bob.hangup(ring.call.callId);
    assert.ok(await first.waitForBye(5000));
    assert.equal(await second.hangup(), 200);
  });

  it('a PC without a microphone cannot go Available: the page says why, and the server refuses too', async () => {
    const noMic = await launchChromium({ fakeMicrophone: false });
    browsers.push(noMic);
    const alice = await page('alice', noMic);
    const available = alice.page.getByRole('button', { name: 'Available' });
    const warning = alice.page.locator('#mic-warning');
    // No audio input listed: the page says so on its own. A listed device that cannot be opened
    // is found when the agent presses Available (the click asks for the microphone).
    const shown = await warning.waitFor({ state: 'visible', timeout: 3000 }).then(() => true, () => false);
    if (!shown) await available.click({ timeout: 2000 }).catch(() => undefined);
    await warning.waitFor({ state: 'visible' });
    assert.match((await warning.textContent()) ?? '', /cannot go Available: .*microphone/i);
    assert.equal(await available.isDisabled(), true);
    await alice.shot('17-no-microphone');
    const row = await agentIs('alice', 'away', 'login');
    assert.equal(row.microphone, false);
    // The server does not trust the page: a session that declared no microphone is refused.
    const bob = await werift('bob');
    bob.send({ type: 'devices', microphone: false, detail: 'test' });
    bob.available();
    const err = await bob.waitFor<Extract<ServerMessage, { type: 'error' }>>((m) => m.type === 'error');
    assert.equal(err.code, 'WS_NO_MICROPHONE');
    assert.equal((await agents()).find((a) => a.name === 'bob')?.state, 'away');
  });

  it('a full shift at the desk: away reasons, queue figures, caller context, screen pop, recording indicator, notes, wrap-up countdown and Extend, this shift’s calls, shortcuts', async () => {
    const alice = await page('alice');
    // Away reason: choosing one sets the agent away at once.
    const reason = alice.page.getByLabel('Away reason');
    assert.deepEqual(await reason.locator('option').allTextContents(), ['break', 'lunch', 'training', 'meeting']);
    await reason.selectOption('lunch');
    await statusIs(alice, /^Away \(lunch\)$/);
    const row = await agentIs('alice', 'away', 'lunch');
    assert.equal(row.label, 'Away (lunch)');
    await eventually(async () => (await support()).away.lunch === 1);
    await alice.shot('10-away-reason');

    // Waiting callers and longest wait of the agent's queues.
    const early = await caller('5550401', 'Pat Customer');
    const cells = alice.page.locator('#queues-body tr').first().locator('td');
    await eventually(async () => {
      const [name, waiting, longest] = await cells.allTextContents();
      return name === 'support' && waiting === '1' && /^0:0[1-9]$/.test(longest ?? '');
    });
    await alice.shot('11-queue-figures');
    assert.equal(await early.hangup(), 200); // abandons: still a call from this number

    await alice.page.getByRole('button', { name: 'Available' }).click();
    await statusIs(alice, /^Available$/);
    const uac = await caller('5550401', 'Pat Customer');
    await statusIs(alice, /^Ringing$/);
    const card = alice.page.locator('#call-details');
    await eventually(async () => ((await alice.page.locator('#ctx-recent').textContent()) ?? '') === '1');
    assert.equal(await alice.page.locator('#ctx-called').textContent(), '8005551000');
    assert.equal(await alice.page.locator('#ctx-callback').textContent(), 'No');
    assert.match((await card.textContent()) ?? '', /Pat Customer/);
    await alice.shot('12-caller-context');

    // Answer opens the CRM screen pop in the agent's browser.
    const popup = alice.context.waitForEvent('page', { timeout: 10000 });
    await alice.page.keyboard.press('Alt+A'); // the Answer shortcut
    const pop = await popup;
    await pop.waitForLoadState();
    assert.deepEqual(crmHits.filter((u) => u.startsWith('/crm/')), ['/crm/search?phone=5550401&name=Pat%20Customer&queue=support'], 'the CRM got the screen pop, fields URL-encoded');
    await pop.close();
    await statusIs(alice, /^On call$/);
    // Audio really connects (the popup did not stall the softphone) and the figures follow.
    await eventually(async () => (await inboundAudio(alice.page)).packetsReceived > 10, 15000);
    await eventually(async () => (await cells.allTextContents())[1] === '0');
    const rec = alice.page.locator('#rec-indicator');
    await rec.waitFor({ state: 'visible' });
    // The default recording policy records this queue: the indicator follows start and pause.
    await eventually(async () => (await rec.textContent()) === 'Recording');
    await alice.page.getByRole('button', { name: 'Pause recording' }).click();
    await eventually(async () => (await rec.textContent()) === 'Recording paused');
    await alice.shot('13a-recording-paused');
    await alice.page.getByRole('button', { name: 'Resume recording' }).click();
    await eventually(async () => (await rec.textContent()) === 'Recording');

    // Notes, saved as typed (here: on blur).
    const notes = alice.page.getByRole('textbox', { name: 'Notes' });
    await notes.fill('Wants a refund for order 1234.');
    await alice.page.locator('#call-heading').click(); // focus leaves the field
    await alice.page.getByText(/^Notes saved at/).waitFor();
    await alice.shot('13-on-call-notes-recording');

    await alice.page.keyboard.press('Alt+H'); // the Hang up shortcut
    assert.ok(await uac.waitForBye(5000), 'the PBX leg got BYE');
    await statusIs(alice, /^Wrap-up$/);
    const countdown = alice.page.locator('#wrapup-countdown');
    await countdown.waitFor({ state: 'visible' });
    assert.match((await countdown.textContent()) ?? '', /^Wrap-up ends in 0:0[1-4]$/);
    await alice.page.getByRole('button', { name: 'Extend wrap-up' }).click();
    await eventually(async () => /^Wrap-up ends in 0:3[0-4]$/.test((await countdown.textContent()) ?? ''));
    await notes.fill('Wants a refund for order 1234. Promised a call back on Monday.');
    await notes.blur();
    await eventually(async () => /^Notes saved at/.test((await alice.page.locator('#notes-saved').textContent()) ?? ''));
    await alice.shot('14-wrap-up-extend-notes');
    await sleep(5000);
    assert.equal(await alice.status(), 'Wrap-up', 'the extension holds the agent in wrap-up past the queue’s 4 s');

    // This shift's calls.
    await alice.page.getByRole('button', { name: 'Resolved', exact: true }).click();
    const shift = alice.page.locator('#shift-body tr');
    await eventually(async () => /Pat Customer \(5550401\).*support.*0:\d\d.*Resolved/.test((await shift.first().textContent()) ?? ''));
    await alice.shot('15-shift-history');
    await alice.page.locator('#settings').scrollIntoViewIfNeeded();
    assert.match((await alice.page.locator('#shortcuts').textContent()) ?? '', /Alt\+A\s*Answer.*Alt\+H\s*Hang up.*Alt\+L\s*Hold.*Alt\+M\s*Mute/s);
    await alice.page.getByLabel('Ring volume').fill('80');
    await alice.shot('16-ring-shortcuts');

    // Notes are kept on site with the call record.
    const record = await callRecord((c) => c.fromUser === '5550401' && c.agent === 'alice');
    const { body } = await daemon.api<{ call: CallRecord & { notes: string | null; notesBy: string | null } }>(`/api/v1/calls/${record.id}`);
    assert.equal(body.call.notes, 'Wants a refund for order 1234. Promised a call back on Monday.');
    assert.equal(body.call.notesBy, 'alice');
  });
});
