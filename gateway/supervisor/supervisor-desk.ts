import type { WebSocket } from 'ws';
import { maskNumber } from '../../sync/policy';
import type { Acd } from '../acd/acd';
import type { AgentView } from '../acd/agent';
import { isAcdError } from '../acd/errors';
import type { QueuedCall } from '../acd/queue';
import { AGENT_STATES, type AgentState } from '../acd/agent-state';
import type { HubCommand, SessionHub } from '../agents/agent-sessions';
import { isCcedgeError } from '../errors';
import type { Logger } from '../logging';
import { PRIVATE_CALLER } from '../sip/identity';
import type { SupervisorAuditStore } from '../store/supervisor-audit-store';
import type { SupervisorConfig } from './config';
import type { Monitoring, MonitorMode } from './monitoring';
import type { SupervisorAgentRow, SupervisorCaller, SupervisorClientMessage, SupervisorQueueRow, SupervisorServerMessage } from './protocol';

export type SupervisorHub = SessionHub<SupervisorClientMessage, SupervisorServerMessage>;
type Command = HubCommand<SupervisorClientMessage>;
type Reply = (m: SupervisorServerMessage) => void;

export interface SupervisorDeskOptions {
  acd: Acd;
  /** Supervisors' sessions (/supervisor/ws). */
  hub: SupervisorHub;
  /** Agents' sessions: who has a page open, and ending a session (Log out). */
  agents: { isConnected(name: string): boolean; endSessions(name: string): number; on(event: 'attached' | 'detached', l: (name: string) => void): unknown };
  /** The caller asked for privacy: shown as "Private" instead of a masked number. */
  callerPrivate: (callId: string) => boolean;
  /** agentDesk.awayReasons. */
  awayReasons: readonly string[];
  audit: SupervisorAuditStore;
  config: SupervisorConfig;
  log: Logger;
  /** Listen / Whisper / Barge; absent: `monitor` is answered SUP_MONITOR_UNAVAILABLE. */
  monitoring?: Monitoring;
  /** Display names of supervisors (the directory's). */
  displayName?: (name: string) => string | undefined;
  /** Digits of a waiting caller's number a supervisor sees (default 4). */
  callerDigitsShown?: number;
}

interface MonitorSession {
  auditId: Promise<number>;
  mode: MonitorMode;
}

const ACD_EVENTS = ['queued', 'overflow', 'offer', 'answered', 'rona', 'ringCancelled', 'abandoned', 'callEnded', 'agentState', 'queuePaused', 'requeued'] as const;

/**
 * The supervisor page's server side: a live board of every agent and queue (with waiting
 * callers, masked) pushed as a snapshot on hello and then as changed rows, coalesced to one
 * message per `updateEveryMs` whatever the event rate; and the supervisor's actions (Away, Log
 * out, pause a queue, monitor a call), each written to the audit trail with its cloud event.
 */
export class SupervisorDesk {
  private readonly log: Logger;
  private lastAgents = new Map<string, string>();
  private lastQueues = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private lastFlush = 0;
  private closed = false;
  /** Monitoring sessions by supervisor + call. */
  private readonly monitors = new Map<string, MonitorSession>();
  private readonly onAcdEvent = (): void => this.schedule();

  constructor(private readonly opts: SupervisorDeskOptions) {
    this.log = opts.log.child({ component: 'supervisor' });
    for (const e of ACD_EVENTS) opts.acd.on(e, this.onAcdEvent);
    opts.agents.on('attached', this.onAcdEvent);
    opts.agents.on('detached', this.onAcdEvent);
    opts.hub.on('attached', (name, ws) => this.onAttached(name, ws));
    opts.hub.on('command', (name, msg, reply) => this.onCommand(name, msg, reply));
    // No page, nobody listening: the supervisor's monitoring legs go.
    opts.hub.on('detached', (name) => this.stopMonitorsOf(name, 'supervisor-gone'));
    opts.hub.on('sessionEnded', (name) => this.stopMonitorsOf(name, 'supervisor-logout'));
    opts.monitoring?.on('ended', (supervisor, callId, reason) => this.monitorEnded(supervisor, callId, reason));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const e of ACD_EVENTS) this.opts.acd.off(e, this.onAcdEvent);
    for (const key of [...this.monitors.keys()]) {
      const [supervisor, callId] = key.split('\n');
      this.opts.monitoring?.stop(supervisor, callId);
    }
  }

  /** The board now (tests, the admin API). */
  board(): { agents: SupervisorAgentRow[]; queues: SupervisorQueueRow[] } {
    const snap = this.opts.acd.snapshot();
    return { agents: snap.agents.map((a) => this.agentRow(a)), queues: this.queueRows(snap) };
  }

  // ---- the board ----

  private agentRow(a: AgentView): SupervisorAgentRow {
    const where = a.callId ? this.opts.acd.locate(a.callId) : undefined;
    return {
      name: a.name,
      displayName: a.displayName,
      state: a.state,
      reason: a.reason,
      since: new Date(a.stateSince).toISOString(),
      callId: a.callId,
      queue: where?.call.queue ?? null,
      talkingSince: a.state === 'on-call' ? new Date(a.stateSince).toISOString() : null,
      connected: this.opts.agents.isConnected(a.name),
    };
  }

  private queueRows(snap: ReturnType<Acd['snapshot']>): SupervisorQueueRow[] {
    const ringing = new Map<string, SupervisorCaller[]>();
    for (const a of snap.agents) {
      if (a.state !== 'ringing' || !a.callId) continue;
      const where = this.opts.acd.locate(a.callId);
      if (where?.phase !== 'ringing') continue;
      const list = ringing.get(where.call.queue) ?? [];
      list.push(this.caller(where.call, 'ringing', a.name));
      ringing.set(where.call.queue, list);
    }
    const shown = this.opts.config.callersShown;
    return snap.queues.map((q) => {
      const callers = [...(ringing.get(q.name) ?? []), ...this.opts.acd.waiting(q.name).map((c) => this.caller(c, 'waiting', null))];
      let oldest: string | null = null;
      for (const c of callers) if (oldest === null || c.queuedAt < oldest) oldest = c.queuedAt;
      const agents = Object.fromEntries(AGENT_STATES.map((s) => [s, q.agents[s].length])) as Record<AgentState, number>;
      return { name: q.name, paused: q.paused, waiting: q.waiting + q.offered, oldestSince: oldest, agents, callers: callers.slice(0, shown) };
    });
  }

  private caller(c: QueuedCall, phase: SupervisorCaller['phase'], agent: string | null): SupervisorCaller {
    const shown = this.opts.callerPrivate(c.callId) ? PRIVATE_CALLER : maskNumber(c.caller, this.opts.callerDigitsShown ?? 4);
    return { callId: c.callId, caller: shown, queuedAt: new Date(c.queuedAt).toISOString(), priority: c.priority, phase, agent };
  }

  private schedule(): void {
    if (this.timer !== null || this.closed) return;
    const wait = Math.max(0, this.lastFlush + this.opts.config.updateEveryMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, wait);
    this.timer.unref();
  }

  /** Sends the rows that changed since the last flush to every supervisor page. */
  private flush(): void {
    if (this.closed) return;
    this.lastFlush = Date.now();
    const watchers = this.opts.hub.connectedNames();
    if (watchers.length === 0) {
      // Nobody to tell: the next page starts from a full board anyway.
      this.lastAgents.clear();
      this.lastQueues.clear();
      return;
    }
    let board: ReturnType<SupervisorDesk['board']>;
    try {
      board = this.board();
    } catch (err) {
      this.log.error({ err }, 'supervisor board failed');
      return;
    }
    const agents = changed(board.agents, this.lastAgents);
    const queues = changed(board.queues, this.lastQueues);
    if (agents.rows.length + queues.rows.length + agents.removed.length + queues.removed.length === 0) return;
    const msg: SupervisorServerMessage = { v: 1, type: 'changes', at: new Date().toISOString(), agents: agents.rows, queues: queues.rows, removedAgents: agents.removed, removedQueues: queues.removed };
    for (const name of watchers) this.opts.hub.send(name, msg);
  }

  private onAttached(name: string, ws: WebSocket): void {
    const { hub } = this.opts;
    // Others get what is pending first, so that this page's board and the next changes agree.
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.flush();
    }
    hub.sendTo(ws, { v: 1, type: 'welcome', supervisor: { name, displayName: this.opts.displayName?.(name) ?? name }, awayReasons: [...this.opts.awayReasons], monitoring: this.opts.monitoring !== undefined });
    try {
      const board = this.board();
      if (this.lastAgents.size === 0 && this.lastQueues.size === 0) {
        changed(board.agents, this.lastAgents);
        changed(board.queues, this.lastQueues);
      }
      hub.sendTo(ws, { v: 1, type: 'board', at: new Date().toISOString(), ...board });
    } catch (err) {
      this.log.error({ err }, 'supervisor board failed');
    }
  }

  // ---- actions ----

  private onCommand(supervisor: string, msg: Command, reply: Reply): void {
    const done = (): void => reply({ v: 1, type: 'done', action: msg.type, ref: msg.ref });
    const { acd, audit } = this.opts;
    const written = (p: Promise<unknown>): void => {
      p.then(done, (err: unknown) => {
        // The action happened; only its trail is missing: say so loudly, but do not undo it.
        this.log.error({ err, code: 'DB_FAILED', supervisor, action: msg.type }, 'supervisor audit write failed');
        done();
      });
    };
    try {
      switch (msg.type) {
        case 'setAgentAway': {
          if (!this.opts.awayReasons.includes(msg.reason)) {
            reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: `away reasons are: ${this.opts.awayReasons.join(', ')}` });
            return;
          }
          const before = this.agentOrReply(msg.agent, reply);
          if (!before) return;
          const after = acd.setAway(msg.agent, msg.reason);
          this.log.info({ supervisor, agent: msg.agent, from: before.state, reason: msg.reason }, 'supervisor set an agent away');
          written(audit.action({ supervisor, action: 'set-away', agent: msg.agent, from: stateText(before), to: stateText(after) }));
          return;
        }
        case 'logoutAgent': {
          const before = this.agentOrReply(msg.agent, reply);
          if (!before) return;
          const ended = this.opts.agents.endSessions(msg.agent);
          if (ended === 0) {
            if (before.state === 'offline') {
              reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: `${msg.agent} is not logged in` });
              return;
            }
            acd.logout(msg.agent, 'logout');
          }
          this.log.info({ supervisor, agent: msg.agent, from: before.state, sessions: ended }, 'supervisor logged an agent out');
          written(audit.action({ supervisor, action: 'logout-agent', agent: msg.agent, from: stateText(before), to: 'offline' }));
          return;
        }
        case 'pauseQueue': {
          const was = acd.snapshot().queues.find((q) => q.name === msg.queue);
          if (!was) {
            reply({ v: 1, type: 'error', code: 'SUP_NO_SUCH_QUEUE', message: `no queue "${msg.queue}"` });
            return;
          }
          acd.setQueuePaused(msg.queue, msg.paused, `supervisor ${supervisor}`);
          this.log.info({ supervisor, queue: msg.queue, paused: msg.paused }, msg.paused ? 'supervisor paused a queue' : 'supervisor resumed a queue');
          written(
            audit.action({ supervisor, action: msg.paused ? 'pause-queue' : 'resume-queue', queue: msg.queue, from: was.paused ? 'paused' : 'running', to: msg.paused ? 'paused' : 'running' }),
          );
          return;
        }
        case 'monitor':
          void this.monitor(supervisor, msg.callId, msg.mode, msg.ref, reply);
          return;
        case 'stopMonitor': {
          if (!this.monitors.has(key(supervisor, msg.callId))) {
            reply({ v: 1, type: 'error', code: 'WS_NO_SUCH_CALL', message: 'you are not monitoring this call' });
            return;
          }
          this.opts.monitoring?.stop(supervisor, msg.callId);
          done();
          return;
        }
        case 'webrtcAnswer': {
          const monitoring = this.opts.monitoring;
          if (!monitoring || !this.monitors.has(key(supervisor, msg.callId))) {
            reply({ v: 1, type: 'error', code: 'WS_NO_SUCH_CALL', message: 'no monitoring offer outstanding for this call' });
            return;
          }
          monitoring.accept(supervisor, msg.callId, msg.sdp).then(done, (err: unknown) => {
            reply({ v: 1, type: 'error', code: 'WEBRTC_FAILED', message: (err as Error).message });
            monitoring.stop(supervisor, msg.callId);
          });
          return;
        }
      }
    } catch (e) {
      if (isAcdError(e)) {
        reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: e.message });
        return;
      }
      this.log.error({ err: e, supervisor, type: msg.type }, 'supervisor command failed');
      reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'internal error' });
    }
  }

  private agentOrReply(name: string, reply: Reply): AgentView | undefined {
    const view = this.opts.acd.agent(name);
    if (!view) reply({ v: 1, type: 'error', code: 'SUP_NO_SUCH_AGENT', message: `no agent "${name}"` });
    return view;
  }

  private async monitor(supervisor: string, callId: string, mode: MonitorMode, ref: string | undefined, reply: Reply): Promise<void> {
    const monitoring = this.opts.monitoring;
    if (!monitoring) {
      reply({ v: 1, type: 'error', code: 'SUP_MONITOR_UNAVAILABLE', message: 'listening in is not available on this appliance yet', ref });
      return;
    }
    const where = this.opts.acd.locate(callId);
    if (where?.phase !== 'connected') {
      reply({ v: 1, type: 'error', code: 'WS_NO_SUCH_CALL', message: 'only a call an agent is talking on can be monitored', ref });
      return;
    }
    const k = key(supervisor, callId);
    const before = this.monitors.get(k);
    if (before?.mode === mode) {
      reply({ v: 1, type: 'monitoring', callId, mode });
      return;
    }
    try {
      const offer = await monitoring.start(supervisor, callId, mode);
      const at = new Date();
      // A mode change is a new span in the audit: who listened when, who whispered when.
      if (before) void this.endAudit(before, 'mode-change', at);
      this.monitors.set(k, { mode, auditId: this.opts.audit.monitorStarted({ supervisor, callId, agent: where.agent, mode }, at) });
      this.log.info({ supervisor, callId, agent: where.agent, mode }, 'supervisor monitoring a call');
      if (offer) reply({ v: 1, type: 'monitorOffer', callId, mode, sdp: offer.sdp });
      else reply({ v: 1, type: 'monitoring', callId, mode });
    } catch (err) {
      const message = isCcedgeError(err) ? err.message : 'the call cannot be monitored';
      if (!isCcedgeError(err)) this.log.error({ err, supervisor, callId }, 'monitoring failed to start');
      reply({ v: 1, type: 'error', code: 'SUP_MONITOR_UNAVAILABLE', message, ref });
    }
  }

  private monitorEnded(supervisor: string, callId: string, reason: string): void {
    const k = key(supervisor, callId);
    const session = this.monitors.get(k);
    if (!session) return;
    this.monitors.delete(k);
    void this.endAudit(session, reason, new Date());
    this.opts.hub.send(supervisor, { v: 1, type: 'monitorEnded', callId, reason });
  }

  private async endAudit(session: MonitorSession, reason: string, at: Date): Promise<void> {
    try {
      await this.opts.audit.monitorEnded(await session.auditId, reason, at);
    } catch (err) {
      this.log.error({ err, code: 'DB_FAILED' }, 'supervisor audit write failed');
    }
  }

  private stopMonitorsOf(supervisor: string, reason: string): void {
    for (const k of [...this.monitors.keys()]) {
      const [sup, callId] = k.split('\n');
      if (sup !== supervisor) continue;
      // The trail gets this reason (not the `stopped` that stop() reports), and a Monitoring that
      // ends without telling still leaves a complete trail.
      this.monitorEnded(sup, callId, reason);
      this.opts.monitoring?.stop(sup, callId);
    }
  }
}

function key(supervisor: string, callId: string): string {
  return `${supervisor}\n${callId}`;
}

/** "away(lunch)", "on-call": the from/to of the audit trail. */
function stateText(v: AgentView): string {
  return v.reason ? `${v.state}(${v.reason})` : v.state;
}

/** Rows whose JSON differs from `last` (updated in place), and the keys gone since. */
function changed<T extends { name: string }>(rows: readonly T[], last: Map<string, string>): { rows: T[]; removed: string[] } {
  const out: T[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    seen.add(r.name);
    const text = JSON.stringify(r);
    if (last.get(r.name) === text) continue;
    last.set(r.name, text);
    out.push(r);
  }
  const removed: string[] = [];
  for (const k of [...last.keys()]) {
    if (seen.has(k)) continue;
    last.delete(k);
    removed.push(k);
  }
  return { rows: out, removed };
}
