import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Acd } from '../../acd/acd';
import { AgentDirectory } from '../../acd/agent-directory';
import { agentsSchema } from '../../acd/config';
import { agentSessionsConfigSchema } from '../../agents/config';
import { AgentSessions, SessionHub } from '../../agents/agent-sessions';
import { createLogger } from '../../logging';
import { Db } from '../../store/db';
import { SupervisorAuditStore } from '../../store/supervisor-audit-store';
import { supervisorConfigSchema } from '../../supervisor/config';
import { supervisorClientMessage, type SupervisorClientMessage, type SupervisorServerMessage } from '../../supervisor/protocol';
import { SupervisorDesk } from '../../supervisor/supervisor-desk';

const FAST = { N: 1024, r: 8, p: 1 };
type Changes = Extract<SupervisorServerMessage, { type: 'changes' }>;

describe('supervisor desk: one door with the agents, a coalesced live board, audited actions (real ws on loopback)', () => {
  let dir: string;
  let db: Db;
  let server: Server;
  let port: number;
  let directory: AgentDirectory;
  let acd: Acd;
  let agents: AgentSessions;
  let hub: SessionHub<SupervisorClientMessage, SupervisorServerMessage>;
  let desk: SupervisorDesk;
  let audit: SupervisorAuditStore;
  const sockets: WebSocket[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ccedge-sup-'));
    db = await Db.open(path.join(dir, 'ccedge.db'));
    const people = agentsSchema.parse([
      { name: 'alice', password: 'alice-pw', queues: ['sales'] },
      { name: 'sue', password: 'sue-pw', role: 'supervisor' },
    ]);
    directory = await AgentDirectory.create(people, { scrypt: FAST });
    acd = new Acd({ queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }, { name: 'sales', ringTimeoutS: 20, wrapUpS: 0 }], agents: directory.list() });
    const log = createLogger('silent');
    const config = agentSessionsConfigSchema.parse({ loginFailuresPerAddress: { maxFailures: 3 } });
    agents = new AgentSessions(directory, log, { config });
    hub = new SessionHub(directory, log, { role: 'supervisor', schema: supervisorClientMessage, shareWith: agents });
    audit = new SupervisorAuditStore(db);
    desk = new SupervisorDesk({
      acd,
      hub,
      agents,
      callerPrivate: (id) => id === '00000000-0000-4000-8000-000000000003',
      awayReasons: ['break', 'lunch'],
      audit,
      config: supervisorConfigSchema.parse({ updateEveryMs: 200 }),
      log,
    });
    server = createServer();
    server.on('upgrade', (req, socket, head) => (req.url === '/supervisor/ws' ? hub : agents).handleUpgrade(req, socket, head));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.close();
    desk.close();
    hub.close();
    agents.close();
    acd.close();
    directory.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function supervisor(): Promise<{ inbox: SupervisorServerMessage[]; send: (m: Record<string, unknown>) => void; until: <T extends SupervisorServerMessage>(p: (m: SupervisorServerMessage) => boolean) => Promise<T> }> {
    const login = await hub.login({ agent: 'sue', password: 'sue-pw' }, '127.0.0.1');
    assert.equal(login.status, 200);
    const token = (login.body as { token: string }).token;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/supervisor/ws`);
    sockets.push(ws);
    const inbox: SupervisorServerMessage[] = [];
    const waiters: Array<() => void> = [];
    ws.on('message', (d) => {
      inbox.push(JSON.parse(d.toString()) as SupervisorServerMessage);
      for (const w of waiters.splice(0)) w();
    });
    await new Promise((r) => ws.once('open', r));
    const send = (m: Record<string, unknown>): void => ws.send(JSON.stringify({ v: 1, ...m }));
    send({ type: 'hello', token });
    const until = async <T extends SupervisorServerMessage>(p: (m: SupervisorServerMessage) => boolean): Promise<T> => {
      for (let i = 0; i < 100; i++) {
        const found = inbox.find(p);
        if (found) return found as T;
        await new Promise<void>((r) => {
          const t = setTimeout(r, 100);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
      throw new Error(`no matching message; got ${inbox.map((m) => m.type).join(',')}`);
    };
    await until((m) => m.type === 'board');
    return { inbox, send, until };
  }

  it('failed logins at /supervisor and /agent count together (one door), and each page refuses the other role', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await hub.login({ agent: 'sue', password: 'guess' }, '10.0.0.7')).status, 401);
    const blocked = await agents.login({ agent: 'alice', password: 'alice-pw' }, '10.0.0.7');
    assert.equal(blocked.status, 429, 'the agent door is closed to an address that guessed at the supervisor door');
    const wrongRole = await hub.login({ agent: 'alice', password: 'alice-pw' }, '127.0.0.1');
    assert.equal(wrongRole.status, 403);
    assert.equal((await agents.login({ agent: 'sue', password: 'sue-pw' }, '127.0.0.1')).status, 403);
  });

  it('a burst of agent and queue events reaches the page as one coalesced change with the end state; callers masked or Private', async () => {
    const sue = await supervisor();
    const board = sue.inbox.find((m) => m.type === 'board') as Extract<SupervisorServerMessage, { type: 'board' }>;
    assert.deepEqual(board.agents.map((a) => [a.name, a.state]), [['alice', 'offline']], 'the supervisor is not on the board');
    acd.login('alice', { ready: true });
    for (let i = 0; i < 50; i++) {
      acd.setAway('alice', 'break');
      acd.setAvailable('alice');
    }
    acd.setAway('alice', 'lunch');
    acd.enqueue('support', { callId: '00000000-0000-4000-8000-000000000001', caller: '+4930555123456', callerName: 'Jane' });
    acd.enqueue('support', { callId: '00000000-0000-4000-8000-000000000002', caller: '4930555000777', callerName: null });
    acd.enqueue('support', { callId: '00000000-0000-4000-8000-000000000003', caller: '4930555000999', callerName: 'Hidden' });
    const first = await sue.until<Changes>((m) => m.type === 'changes');
    assert.deepEqual(first.agents.map((a) => [a.name, a.state, a.reason]), [['alice', 'away', 'lunch']], '102 agent events, one row with the end state');
    const support = first.queues.find((q) => q.name === 'support');
    assert.equal(support?.waiting, 3);
    assert.deepEqual(
      support?.callers.map((c) => c.caller),
      ['+*********3456', '*********0777', 'Private'],
    );
    assert.ok(!JSON.stringify(first).includes('Jane') && !JSON.stringify(first).includes('Hidden'), 'no caller names');
    acd.setAvailable('alice');
    await sue.until<Changes>((m) => m.type === 'changes' && m.agents.some((a) => a.state === 'available'));
    assert.equal(sue.inbox.filter((m) => m.type === 'changes').length, 2);
  });

  it('pause and Away are carried out and audited; bad targets and reasons get errors; monitor is not available', async () => {
    const sue = await supervisor();
    acd.login('alice', { ready: true });
    sue.send({ type: 'pauseQueue', queue: 'sales', paused: true, ref: 'p' });
    await sue.until((m) => m.type === 'done' && m.ref === 'p');
    assert.equal(acd.snapshot().queues.find((q) => q.name === 'sales')?.paused, true);
    sue.send({ type: 'setAgentAway', agent: 'alice', reason: 'lunch', ref: 'a' });
    await sue.until((m) => m.type === 'done' && m.ref === 'a');
    assert.equal(acd.agent('alice')?.reason, 'lunch');
    sue.send({ type: 'setAgentAway', agent: 'nobody', reason: 'lunch', ref: 'x' });
    assert.equal((await sue.until<Extract<SupervisorServerMessage, { type: 'error' }>>((m) => m.type === 'error' && m.ref === 'x')).code, 'SUP_NO_SUCH_AGENT');
    sue.send({ type: 'monitor', callId: '00000000-0000-4000-8000-000000000009', mode: 'barge', ref: 'm' });
    assert.equal((await sue.until<Extract<SupervisorServerMessage, { type: 'error' }>>((m) => m.type === 'error' && m.ref === 'm')).code, 'SUP_MONITOR_UNAVAILABLE');
    sue.send({ type: 'monitor', callId: 'not-a-uuid', mode: 'barge', ref: 'b' });
    assert.equal((await sue.until<Extract<SupervisorServerMessage, { type: 'error' }>>((m) => m.type === 'error' && m.ref === 'b')).code, 'WS_BAD_MESSAGE');
    const rows = (await audit.list()).map((r) => [r.supervisor, r.action, r.agent, r.queue, r.from, r.to]);
    assert.deepEqual(rows, [
      ['sue', 'set-away', 'alice', null, 'available', 'away(lunch)'],
      ['sue', 'pause-queue', null, 'sales', 'running', 'paused'],
    ]);
  });

  it('a monitoring session is one audit row from start to end', async () => {
    const id = await audit.monitorStarted({ supervisor: 'sue', callId: '00000000-0000-4000-8000-000000000001', agent: 'alice', mode: 'whisper' }, new Date('2026-12-03T10:00:00Z'));
    await audit.monitorEnded(id, 'stopped', new Date('2026-12-03T10:02:30Z'));
    await audit.monitorEnded(id, 'again', new Date('2026-12-03T10:05:00Z'));
    const [row] = await audit.list();
    assert.deepEqual([row.action, row.mode, row.startedAt, row.endedAt, row.endReason], ['monitor', 'whisper', '2026-12-03T10:00:00.000Z', '2026-12-03T10:02:30.000Z', 'stopped']);
  });
});
