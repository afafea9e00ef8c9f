import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import WebSocket from 'ws';
import type { AgentStatus } from '../../gateway/agents/agent-desk';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { Db } from '../../gateway/store/db';
import type { SupervisorAuditRow } from '../../gateway/store/supervisor-audit-store';
import type { SupervisorServerMessage } from '../../gateway/supervisor/protocol';
import { launchChromium, SHOTS } from './browser';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';

const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret', sue: 'sue-secret', sam: 'sam-secret' };
const CONFIG = {
  site: { id: 'e2e', deviceId: 'edge-supervisor' },
  calls: { queue: 'support', maxDurationS: 600 },
  trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMA', 'PCMU'] }],
  queues: [
    { name: 'support', ringTimeoutS: 20, wrapUpS: 0 },
    { name: 'sales', ringTimeoutS: 20, wrapUpS: 0 },
  ],
  agents: [
    { name: 'alice', displayName: 'Alice', password: PASSWORDS.alice },
    { name: 'bob', displayName: 'Bob', password: PASSWORDS.bob, queues: ['support'] },
    { name: 'sue', displayName: 'Sue', password: PASSWORDS.sue, role: 'supervisor' },
    { name: 'sam', displayName: 'Sam', password: PASSWORDS.sam, role: 'supervisor' },
  ],
  agentDesk: { awayReasons: ['break', 'lunch'] },
  supervisor: { updateEveryMs: 300 },
};

type Ringing = Extract<ServerMessage, { type: 'ringing' }>;
type StateMsg = Extract<ServerMessage, { type: 'state' }>;

/** A raw /supervisor/ws client: the protocol as a page speaks it. */
class SupervisorSocket {
  readonly inbox: SupervisorServerMessage[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => this.inbox.push(JSON.parse(d.toString()) as SupervisorServerMessage));
  }
  static async open(httpPort: number, token: string): Promise<SupervisorSocket> {
    const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/supervisor/ws`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const s = new SupervisorSocket(ws);
    s.send({ type: 'hello', token });
    return s;
  }
  send(msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ v: 1, ...msg }));
  }
  waitFor<T extends SupervisorServerMessage>(pred: (m: SupervisorServerMessage) => boolean, timeoutMs = 10_000): Promise<T> {
    return eventually(async () => this.inbox.find(pred) as T | undefined, timeoutMs, 50);
  }
  close(): void {
    this.ws.close();
  }
}

describe('supervisor page: every agent and waiting caller live, Away / Log out / pause a queue, audited (Chromium + werift agent + SIP callers)', function () {
  let daemon: DaemonHandle;
  let browser: Browser;
  let target: string;
  const uacs: TestUac[] = [];
  const werifts: WeriftAgent[] = [];
  const contexts: BrowserContext[] = [];
  const sockets: SupervisorSocket[] = [];

  const login = (where: 'agent' | 'supervisor', name: keyof typeof PASSWORDS, password: string = PASSWORDS[name]): Promise<Response> =>
    fetch(`http://127.0.0.1:${daemon.httpPort}/${where}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ agent: name, password }) });
  const agents = async (): Promise<AgentStatus[]> => (await daemon.api<{ agents: AgentStatus[] }>('/api/v1/agents')).body.agents;
  const agentIs = (name: string, state: string, reason: string | null): Promise<AgentStatus> =>
    eventually(async () => (await agents()).find((a) => a.name === name && a.state === state && a.reason === reason), 15_000);
  const audit = async (): Promise<SupervisorAuditRow[]> => (await daemon.api<{ audit: SupervisorAuditRow[] }>('/api/v1/supervisor-audit')).body.audit;
  const caller = async (from: string): Promise<TestUac> => {
    const uac = await TestUac.create({ codec: 'PCMA' });
    uacs.push(uac);
    assert.equal(await uac.call(target, { from, fromName: 'Jane Caller', to: '8005551000' }), 200, 'the queue answers the caller');
    return uac;
  };
  const openSupervisor = async (name: keyof typeof PASSWORDS): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    await context.grantPermissions(['microphone'], { origin: `http://127.0.0.1:${daemon.httpPort}` });
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${daemon.httpPort}/supervisor`);
    await page.getByLabel('Agent').fill(name);
    await page.getByLabel('Password').fill(PASSWORDS[name]);
    await page.getByRole('button', { name: 'Log in' }).click();
    return page;
  };

  before(async () => {
    daemon = await startDaemon({ config: CONFIG, env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
    target = `127.0.0.1:${daemon.sipPort}`;
    browser = await launchChromium();
  });
  afterEach(async () => {
    for (const u of uacs.splice(0)) u.close();
    for (const a of werifts.splice(0)) await a.close();
    for (const s of sockets.splice(0)) s.close();
    for (const c of contexts.splice(0)) await c.close().catch(() => undefined);
    await sleep(300);
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('sue watches bob go Available and On call and a caller wait, pauses the queue, sets bob Away, logs him out; each action is in the audit trail and the outbox', async () => {
    const page = await openSupervisor('sue');
    await page.getByRole('heading', { name: 'Agents' }).waitFor();
    const row = (agent: string) => page.locator(`tr[data-agent="${agent}"]`);
    const support = page.locator('section[data-queue="support"]');
    await row('bob').getByText('Offline').waitFor();
    assert.equal(await row('sue').count(), 0, 'supervisors are not agents: not on the board, never offered calls');

    const bob = await WeriftAgent.login(daemon.httpPort, 'bob', PASSWORDS.bob);
    werifts.push(bob);
    bob.available();
    await row('bob').getByText('Available').waitFor();
    await row('bob').getByText('Connected', { exact: true }).waitFor();

    const first = await caller('5550111');
    const ring = await bob.waitFor<Ringing>((m) => m.type === 'ringing');
    await bob.waitFor((m) => m.type === 'callConnected');
    await row('bob').getByText('On call').waitFor();
    await row('bob').getByText(ring.call.callId.slice(0, 8)).waitFor();
    await row('bob').getByRole('cell', { name: 'support', exact: true }).waitFor();
    for (const name of ['Listen', 'Whisper', 'Barge', 'Stop']) await row('bob').getByRole('button', { name, exact: true }).waitFor();

    // A second caller waits (bob is busy): shown masked, never the whole number.
    const second = await caller('4930550177');
    await support.getByText(/^\*+0177$/).waitFor();
    await support.getByRole('cell', { name: 'Waiting', exact: true }).waitFor();
    assert.ok(!(await page.content()).includes('4930550177'), 'the waiting caller number is masked on the supervisor page');

    await support.getByRole('button', { name: 'Pause', exact: true }).click();
    await support.getByText('Paused', { exact: true }).waitFor();
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'supervisor-board.png'), fullPage: true });

    // Paused: bob is free again and the caller still waits (unpaused, the ACD would offer it at once).
    bob.hangup(ring.call.callId);
    assert.ok(await first.waitForBye(5000));
    await agentIs('bob', 'available', null);
    const before = bob.inbox.filter((m) => m.type === 'ringing').length;
    await support.getByText(/^\*+0177$/).waitFor();
    assert.equal(bob.inbox.filter((m) => m.type === 'ringing').length, before, 'no call offered from a paused queue');

    await page.getByLabel('Away reason').selectOption('lunch');
    await row('bob').getByRole('button', { name: 'Away', exact: true }).click();
    const away = await bob.waitFor<StateMsg>((m) => m.type === 'state' && m.state === 'away');
    assert.equal(away.reason, 'lunch', "bob's page is told why");
    await agentIs('bob', 'away', 'lunch');
    await row('bob').getByText('lunch', { exact: true }).waitFor();

    await support.getByRole('button', { name: 'Resume', exact: true }).click();
    await support.getByRole('button', { name: 'Pause', exact: true }).waitFor();
    bob.available();
    const ring2 = await bob.waitFor<Ringing>((m) => m.type === 'ringing' && m.call.caller === '4930550177');
    await bob.waitFor((m) => m.type === 'callConnected' && m.callId === ring2.call.callId);
    await support.getByText('No callers waiting').waitFor();
    bob.hangup(ring2.call.callId);
    assert.ok(await second.waitForBye(5000));
    await agentIs('bob', 'available', null);

    await row('bob').getByRole('button', { name: 'Log out', exact: true }).click();
    await bob.waitFor((m) => m.type === 'error' && m.code === 'WS_SESSION_INVALID');
    await agentIs('bob', 'offline', 'logout');
    await row('bob').getByText('Offline').waitFor();

    const rows = await eventually(async () => {
      const r = await audit();
      return r.length >= 4 && r;
    });
    const brief = rows.map((r) => [r.supervisor, r.action, r.agent, r.queue, r.from, r.to]).reverse();
    assert.deepEqual(brief, [
      ['sue', 'pause-queue', null, 'support', 'running', 'paused'],
      ['sue', 'set-away', 'bob', null, 'available', 'away(lunch)'],
      ['sue', 'resume-queue', null, 'support', 'paused', 'running'],
      ['sue', 'logout-agent', 'bob', null, 'available', 'offline'],
    ]);
    // The same actions leave for the cloud as events, with only the allowed fields.
    const db = await Db.open(path.join(daemon.dataDir, 'ccedge.db'));
    try {
      const events = await db.all<{ type: string; payload: string }>("SELECT type, payload FROM sync_outbox WHERE type = 'supervisor.action' ORDER BY seq");
      assert.deepEqual(
        events.map((e) => (JSON.parse(e.payload) as { action: string }).action),
        ['pause-queue', 'set-away', 'resume-queue', 'logout-agent'],
      );
      assert.equal((JSON.parse(events[1].payload) as { supervisor: string; agent: string }).agent, 'bob');
    } finally {
      await db.close();
    }
  });

  it('an agent is refused at /supervisor (403, desk session kept), a supervisor at /agent; the supervisor socket refuses agent tokens; monitoring refuses a call nobody talks on', async () => {
    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', PASSWORDS.alice);
    werifts.push(alice);

    const page = await openSupervisor('alice');
    await page.getByRole('alert').getByText(/Login refused: this page is for supervisors/).waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Agents' }).isVisible(), false, 'no board for an agent');
    const refused = await login('supervisor', 'alice');
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'AGENT_WRONG_ROLE');
    assert.equal((await login('supervisor', 'alice', 'wrong-password')).status, 401, 'a wrong password says nothing about roles');
    // alice's desk session survived both attempts.
    alice.send({ type: 'ping' });
    await alice.waitFor((m) => m.type === 'pong');
    assert.equal((await agents()).find((a) => a.name === 'alice')?.connected, true);

    const atAgentPage = await login('agent', 'sam');
    assert.equal(atAgentPage.status, 403, 'a supervisor cannot take calls on the agent page');
    assert.match(((await atAgentPage.json()) as { error: { message: string } }).error.message, /supervisors log in at \/supervisor/);

    const aliceToken = ((await (await login('agent', 'alice')).json()) as { token: string }).token;
    const wrong = await SupervisorSocket.open(daemon.httpPort, aliceToken);
    sockets.push(wrong);
    await wrong.waitFor((m) => m.type === 'error' && m.code === 'WS_NOT_ALLOWED');

    const samToken = ((await (await login('supervisor', 'sam')).json()) as { token: string }).token;
    const sam = await SupervisorSocket.open(daemon.httpPort, samToken);
    sockets.push(sam);
    const welcome = await sam.waitFor<Extract<SupervisorServerMessage, { type: 'welcome' }>>((m) => m.type === 'welcome');
    assert.equal(welcome.monitoring, true, 'Listen / Whisper / Barge are wired');
    assert.deepEqual(welcome.awayReasons, ['break', 'lunch']);
    const board = await sam.waitFor<Extract<SupervisorServerMessage, { type: 'board' }>>((m) => m.type === 'board');
    assert.deepEqual(board.agents.map((a) => a.name).sort(), ['alice', 'bob']);
    assert.deepEqual(board.queues.map((q) => q.name).sort(), ['sales', 'support']);
    sam.send({ type: 'monitor', callId: randomUUID(), mode: 'listen', ref: 'm1' });
    const err = await sam.waitFor<Extract<SupervisorServerMessage, { type: 'error' }>>((m) => m.type === 'error' && m.ref === 'm1');
    assert.equal(err.code, 'WS_NO_SUCH_CALL');
    sam.send({ type: 'setAgentAway', agent: 'alice', reason: 'not-a-configured-reason', ref: 'a1' });
    assert.match((await sam.waitFor<Extract<SupervisorServerMessage, { type: 'error' }>>((m) => m.type === 'error' && m.ref === 'a1')).message, /away reasons are: break, lunch/);
    sam.send({ type: 'pauseQueue', queue: 'nope', paused: true, ref: 'q1' });
    assert.equal((await sam.waitFor<Extract<SupervisorServerMessage, { type: 'error' }>>((m) => m.type === 'error' && m.ref === 'q1')).code, 'SUP_NO_SUCH_QUEUE');
  });
});
