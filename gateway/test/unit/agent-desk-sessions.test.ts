import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { WebSocket } from 'ws';
import { Acd } from '../../acd/acd';
import { AgentDirectory } from '../../acd/agent-directory';
import { agentsSchema, queueConfigSchema } from '../../acd/config';
import { AgentDesk } from '../../agents/agent-desk';
import { AgentSessions } from '../../agents/agent-sessions';
import { agentSessionsConfigSchema } from '../../agents/config';
import { Metrics } from '../../metrics';
import { Semaphore } from '../../net/semaphore';
import { AgentStore } from '../../store/agent-store';
import { Db } from '../../store/db';

/*
 * The agent side without a browser: AgentSessions (login, the /ws hello handshake, frame checks)
 * and the AgentDesk acting on page commands, with a real ACD, directory and sqlite store. Pages
 * are real WebSocket clients over loopback; what they are sent is what is asserted.
 */

const FAST = { N: 1024, r: 8, p: 1 };

type Frame = { type: string; code?: string; ref?: string; message?: string; state?: string; reason?: string | null } & Record<string, unknown>;

/** A page: a WebSocket to /ws that keeps every frame it is sent. */
class Page {
  readonly frames: Frame[] = [];
  private readonly waiters: Array<{ pred: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as Frame;
      this.frames.push(f);
      for (const w of [...this.waiters]) {
        if (!w.pred(f)) continue;
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(f);
      }
    });
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
  }

  static async open(port: number): Promise<Page> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await once(ws, 'open');
    return new Page(ws);
  }

  send(msg: Record<string, unknown> | string): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify({ v: 1, ...msg }));
  }

  /** The next frame (from now on) that matches. */
  next(pred: (f: Frame) => boolean): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame; got ${JSON.stringify(this.frames)}`)), 10_000);
      this.waiters.push({ pred, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }

  /** A frame already received that matches, else the next one. */
  seen(pred: (f: Frame) => boolean): Promise<Frame> {
    const f = this.frames.find(pred);
    return f ? Promise.resolve(f) : this.next(pred);
  }

  /** Sends and waits for the frame answering it (matched by type, and by ref when given). */
  async ask(msg: Record<string, unknown> | string, type: string, ref?: string): Promise<Frame> {
    const p = this.next((f) => f.type === type && (ref === undefined || f.ref === ref));
    this.send(msg);
    return p;
  }

  close(): void {
    this.ws.close();
  }
}

describe('AgentSessions and AgentDesk over a real /ws', function () {
  this.timeout(30_000);
  let dir: string;
  let db: Db;
  let directory: AgentDirectory;
  let acd: Acd;
  let sessions: AgentSessions;
  let desk: AgentDesk;
  let agentStore: AgentStore;
  let metrics: Metrics;
  let http: Server;
  let port: number;
  let pages: Page[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ccedge-agent-desk-'));
    db = await Db.open(join(dir, 'ccedge.db'));
    agentStore = new AgentStore(db);
    const agents = agentsSchema.parse([
      { name: 'alice', password: 'right-alice', displayName: 'Alice A' },
      { name: 'sam', password: 'right-sam', role: 'supervisor' },
    ]);
    directory = await AgentDirectory.create(agents, { scrypt: FAST, hashGate: new Semaphore({ concurrency: 1, maxQueue: 8 }) });
    acd = new Acd({ queues: [queueConfigSchema.parse({ name: 'support' })], agents });
    metrics = new Metrics();
    sessions = new AgentSessions(directory, pino({ level: 'silent' }), { config: agentSessionsConfigSchema.parse({}), metrics });
    desk = new AgentDesk({ acd, sessions, agentStore, log: pino({ level: 'silent' }), webrtc: { interfaces: ['127.0.0.1'], portRange: { min: 32000, max: 32099 } }, reconnectGraceS: 10 });
    http = createServer((_req, res) => res.writeHead(404).end());
    http.on('upgrade', (req, socket, head) => sessions.handleUpgrade(req, socket, head));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    port = (http.address() as AddressInfo).port;
  });
  afterEach(async () => {
    for (const p of pages) {
      p.close();
      await p.closed;
    }
    pages = [];
  });
  after(async () => {
    desk.close();
    sessions.close();
    directory.close();
    http.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function page(): Promise<Page> {
    const p = await Page.open(port);
    pages.push(p);
    return p;
  }

  async function login(name = 'alice', password = `right-${name}`): Promise<string> {
    const r = await sessions.login({ agent: name, password }, '127.0.0.1');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok('token' in r.body);
    return r.body.token;
  }

  /** A page of alice's that said hello and got its welcome. */
  async function loggedInPage(): Promise<{ page: Page; token: string; welcome: Frame }> {
    const token = await login();
    const p = await page();
    const welcome = await p.ask({ type: 'hello', token }, 'welcome');
    return { page: p, token, welcome };
  }

  it('login: 400 for a malformed body, 401 for a wrong password, 403 for a supervisor at the agent door, 200 with a token', async () => {
    const bad = await sessions.login({ agent: 'alice' }, '127.0.0.9');
    assert.equal(bad.status, 400);
    assert.ok('error' in bad.body && bad.body.error.code === 'HTTP_BAD_REQUEST');
    const wrong = await sessions.login({ agent: 'alice', password: 'guess' }, '127.0.0.9');
    assert.equal(wrong.status, 401);
    assert.ok('error' in wrong.body && wrong.body.error.code === 'AGENT_LOGIN_FAILED');
    const unknown = await sessions.login({ agent: 'mallory', password: 'guess' }, '127.0.0.9');
    assert.deepEqual(unknown.body, wrong.body, 'an unknown name is refused exactly like a wrong password');
    const supervisor = await sessions.login({ agent: 'sam', password: 'right-sam' }, '127.0.0.9');
    assert.equal(supervisor.status, 403);
    assert.ok('error' in supervisor.body && supervisor.body.error.code === 'AGENT_WRONG_ROLE');
    const ok = await sessions.login({ agent: 'alice', password: 'right-alice' }, '127.0.0.9');
    assert.equal(ok.status, 200);
    assert.ok('token' in ok.body);
    assert.deepEqual(ok.body.agent, { name: 'alice', displayName: 'Alice A' });
    assert.equal(directory.resolve(ok.body.token)?.name, 'alice');
    const refused = await metrics.registry.getSingleMetricAsString('ccedge_agent_logins_refused_total');
    assert.match(refused, /reason="bad_request"\} 1/);
    assert.match(refused, /reason="wrong_password"\} 2/);
    assert.match(refused, /reason="wrong_role"\} 1/);
  });

  it('the desk puts a logged-in agent into the ACD away (login); the page is welcomed with that state, its history and queues', async () => {
    const { page: p, welcome } = await loggedInPage();
    assert.equal(acd.agent('alice')?.state, 'away');
    assert.equal(welcome.state, 'away');
    assert.equal(welcome.reason, 'login');
    assert.deepEqual(welcome.agent, { name: 'alice', displayName: 'Alice A' });
    assert.equal(welcome.call, null);
    await p.seen((f) => f.type === 'queues');
    assert.deepEqual(p.frames.map((f) => f.type).slice(0, 3), ['welcome', 'history', 'queues']);
    assert.equal(sessions.isConnected('alice'), true);
  });

  it('before hello: frames get WS_NOT_AUTHENTICATED (with their ref), bad JSON WS_BAD_MESSAGE, a bad token WS_SESSION_INVALID; the 6th frame closes it (1008)', async () => {
    const p = await page();
    const early = await p.ask({ type: 'ping', ref: 'r1' }, 'error', 'r1');
    assert.equal(early.code, 'WS_NOT_AUTHENTICATED');
    const notJson = await p.ask('{nope', 'error');
    assert.equal(notJson.code, 'WS_BAD_MESSAGE');
    const badToken = await p.ask({ type: 'hello', token: 'x'.repeat(32), ref: 'h1' }, 'error', 'h1');
    assert.equal(badToken.code, 'WS_SESSION_INVALID');
    const oldVersion = await p.ask(JSON.stringify({ v: 0, type: 'ping', ref: 'v0' }), 'error', 'v0');
    assert.equal(oldVersion.code, 'WS_UNSUPPORTED_VERSION');
    const badField = await p.ask({ type: 'setState', state: 'asleep', ref: 's1' }, 'error', 's1');
    assert.equal(badField.code, 'WS_BAD_MESSAGE');
    p.send({ type: 'ping' });
    assert.equal(await p.closed, 1008);
    assert.equal(p.frames.length, 5, 'the sixth frame was not answered');
  });

  it("a supervisor's token does not open an agent page (WS_NOT_ALLOWED)", async () => {
    const { token } = await directory.login('sam', 'right-sam', 'supervisor');
    const p = await page();
    const r = await p.ask({ type: 'hello', token, ref: 'h' }, 'error', 'h');
    assert.equal(r.code, 'WS_NOT_ALLOWED');
    assert.equal(sessions.isConnected('sam'), false);
  });

  it('after hello: ping is answered pong with its ref', async () => {
    const { page: p } = await loggedInPage();
    const pong = await p.ask({ type: 'ping', ref: 'p-42' }, 'pong', 'p-42');
    assert.equal(pong.ref, 'p-42');
  });

  it('setState: available and away are applied, reported to the page and stored; an unconfigured reason is refused', async () => {
    const { page: p } = await loggedInPage();
    const avail = await p.ask({ type: 'setState', state: 'available' }, 'state');
    assert.equal(avail.state, 'available');
    assert.equal(acd.agent('alice')?.state, 'available');
    const refused = await p.ask({ type: 'setState', state: 'away', reason: 'nap', ref: 'a1' }, 'error', 'a1');
    assert.equal(refused.code, 'WS_NOT_ALLOWED');
    assert.match(refused.message ?? '', /break, lunch, training, meeting/);
    assert.equal(acd.agent('alice')?.state, 'available', 'a refused change changes nothing');
    const away = await p.ask({ type: 'setState', state: 'away' }, 'state');
    assert.deepEqual([away.state, away.reason], ['away', 'break'], 'Away without a reason takes the first configured one');
    const lunch = await p.ask({ type: 'setState', state: 'away', reason: 'lunch' }, 'state');
    assert.deepEqual([lunch.state, lunch.reason], ['away', 'lunch']);
    await db.betweenWrites(() => Promise.resolve());
    const stored = (await agentStore.events('alice')).reverse().map((e) => `${e.state}/${e.reason ?? ''}`);
    assert.deepEqual(stored.slice(-3), ['available/', 'away/break', 'away/lunch']);
  });

  it('a page without a microphone cannot go Available: an Available agent is set away (no-microphone), then WS_NO_MICROPHONE', async () => {
    const { page: p } = await loggedInPage();
    await p.ask({ type: 'setState', state: 'available' }, 'state');
    const away = await p.ask({ type: 'devices', microphone: false, detail: 'NotFoundError' }, 'state');
    assert.deepEqual([away.state, away.reason], ['away', 'no-microphone']);
    const refused = await p.ask({ type: 'setState', state: 'available', ref: 'm1' }, 'error', 'm1');
    assert.equal(refused.code, 'WS_NO_MICROPHONE');
    assert.equal(acd.agent('alice')?.state, 'away');
    p.send({ type: 'devices', microphone: true });
    const back = await p.ask({ type: 'setState', state: 'available' }, 'state');
    assert.equal(back.state, 'available');
    // Leave alice away for the next test's login, as a logout would.
    await p.ask({ type: 'setState', state: 'away' }, 'state');
  });

  it('commands on a call the agent does not have are refused WS_NO_SUCH_CALL (ref kept); dispositions without KPIs WS_NOT_ALLOWED', async () => {
    const { page: p } = await loggedInPage();
    const callId = randomUUID();
    for (const [i, cmd] of [{ type: 'hangup', callId }, { type: 'hold', callId, on: true }, { type: 'mute', callId, on: true }, { type: 'dtmf', callId, digits: '1' }, { type: 'webrtcAnswer', callId, sdp: 'v=0 not an answer' }].entries()) {
      const r = await p.ask({ ...cmd, ref: `c${i}` }, 'error', `c${i}`);
      assert.equal(r.code, 'WS_NO_SUCH_CALL', `${cmd.type}`);
    }
    const answer = await p.ask({ type: 'answer', callId, ref: 'ans' }, 'error', 'ans');
    assert.equal(answer.code, 'WS_NOT_ALLOWED', 'an agent who is not ringing cannot answer (the ACD refuses the transition)');
    assert.match(answer.message ?? '', /alice is away, not ringing/);
    const disp = await p.ask({ type: 'disposition', callId, disposition: 'resolved', ref: 'd' }, 'error', 'd');
    assert.equal(disp.code, 'WS_NOT_ALLOWED');
  });

  it('every page of an agent gets its state; the agent is detached only when the last page goes', async () => {
    const { page: a, token } = await loggedInPage();
    const b = await page();
    await b.ask({ type: 'hello', token }, 'welcome');
    const detached: string[] = [];
    const onDetached = (name: string): void => void detached.push(name);
    sessions.on('detached', onDetached);
    try {
      const onB = b.next((f) => f.type === 'state');
      const onA = await a.ask({ type: 'setState', state: 'away', reason: 'meeting' }, 'state');
      assert.equal(onA.reason, 'meeting');
      assert.equal((await onB).reason, 'meeting');
      a.close();
      await a.closed;
      // A round trip on b gives the server time to handle a's close (b's page keeps alice attached).
      await b.ask({ type: 'ping', ref: 'after-a' }, 'pong', 'after-a');
      assert.equal(sessions.isConnected('alice'), true);
      assert.deepEqual(detached, []);
      b.close();
      await b.closed;
      for (let i = 0; i < 200 && detached.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(detached, ['alice']);
      assert.equal(sessions.isConnected('alice'), false);
    } finally {
      sessions.off('detached', onDetached);
    }
  });

  it('logout: the session ends (4001, WS_SESSION_INVALID), the ACD has the agent offline, the token is dead', async () => {
    const { page: p, token } = await loggedInPage();
    const ended = p.next((f) => f.type === 'error');
    p.send({ type: 'logout' });
    const frame = await ended;
    assert.equal(frame.code, 'WS_SESSION_INVALID');
    assert.match(frame.message ?? '', /logout/);
    assert.equal(await p.closed, 4001);
    assert.equal(acd.agent('alice')?.state, 'offline');
    assert.equal(directory.resolve(token), undefined);
    const again = await page();
    const r = await again.ask({ type: 'hello', token, ref: 'h' }, 'error', 'h');
    assert.equal(r.code, 'WS_SESSION_INVALID');
  });

  it('a new login replaces the session: the old page is told and closed (4001)', async () => {
    const { page: old } = await loggedInPage();
    const told = old.next((f) => f.type === 'error');
    await login();
    assert.match((await told).message ?? '', /replaced/);
    assert.equal(await old.closed, 4001);
  });
});
