import type { WebSocket } from 'ws';
import type { WebRtcEndpoint } from '../../media';
import { legFor, type WebRtcSite } from './webrtc-site';
import type { Acd } from '../acd/acd';
import { isAcdError } from '../acd/errors';
import type { QueuedCall } from '../acd/queue';
import type { CallContext, CallInfo, DeskSettings, QueueFigures, ServerMessage, ShiftCall } from '../agent-ui/protocol';
import { RECENT_CALLS_MAX } from '../agent-ui/caller-context';
import type { AgentState } from '../acd/agent-state';
import type { CallStore } from '../store/call-store';
import { agentDeskConfigSchema, type AgentDeskConfig } from './config';
import { Counter, type Registry } from 'prom-client';
import type { BridgedCall, CallEndCause } from '../calls/contract';
import { PRIVATE_CALLER } from '../sip/identity';
import type { CallbackScheduler } from '../callbacks/callback-scheduler';
import type { RouteDecision } from '../routing/router';
import type { KpiRecorder } from '../kpi/kpi-recorder';
import type { RecordingService } from '../recording/recording-service';
import type { DeskCall } from '../calls/contract';
import type { Logger } from '../logging';
import type { AgentStore } from '../store/agent-store';
import type { AgentCommand, AgentSessions } from './agent-sessions';
import { BlindTransfers, TransferError, type BlindOutcome } from './transfers';
import { Consults } from './consults';

export interface AgentDeskOptions {
  acd: Acd;
  sessions: AgentSessions;
  agentStore: AgentStore;
  log: Logger;
  /** Addresses and ports the WebRTC legs use (host candidates only). */
  webrtc: WebRtcSite;
  /** Seconds a page may be gone mid-call before the call ends. */
  reconnectGraceS: number;
  /** Seconds the page has to answer the WebRTC offer before the call is given up as failed. */
  mediaSetupS?: number;
  /** Records queue events for the KPIs (hold time, dispositions, callbacks). */
  kpi?: KpiRecorder;
  /** Records bridged calls into the vault per queue policy. */
  recording?: RecordingService;
  /** agentDesk: in ccedge.yaml (away reasons, screen pop, wrap-up extension); defaults from the schema. */
  desk?: AgentDeskConfig;
  /** Call records: wrap-up notes, the caller's called number and earlier calls. */
  callStore?: CallStore;
  /** Where the desk's counters are registered (the daemon's /metrics registry). */
  registry?: Registry;
  /** calls.maxParties: a consult beyond it is refused (WS_CONFERENCE_FULL). */
  maxParties?: number;
  /**
   * Told when an agent's audio connects (each agent of a transferred call): media fork, live
   * transcripts. Must not throw; each decides per call whether it already runs.
   */
  bridged?: ReadonlyArray<(b: BridgedCall) => void>;
}

/** Calls listed in "this shift" per agent, most recent first; older ones drop off. */
const SHIFT_MAX_CALLS = 200;

/** A label as agents and supervisors read it: "Away (lunch)", "On call". */
export function stateLabel(state: AgentState, reason: string | null): string {
  const base: Record<AgentState, string> = { offline: 'Offline', available: 'Available', ringing: 'Ringing', 'on-call': 'On call', 'wrap-up': 'Wrap-up', away: 'Away' };
  return state === 'away' && reason ? `Away (${reason})` : base[state];
}

/** GET /api/v1/agents rows. */
export interface AgentStatus {
  name: string;
  displayName: string;
  state: AgentState;
  reason: string | null;
  label: string;
  since: string;
  callId: string | null;
  /** A page of the agent is connected now. */
  connected: boolean;
  /** false: the page said it has no microphone (the agent cannot go Available). null: not declared. */
  microphone: boolean | null;
}

type EndedCause = Extract<ServerMessage, { type: 'callEnded' }>['cause'];

/**
 * Where calls meet agents: queues answered calls in the ACD, rings agents' pages, builds the
 * WebRTC leg when an agent answers, and turns page commands (hang up, hold, mute, DTMF) into call
 * actions. Calls own their media; the desk only wires them.
 */
export class AgentDesk {
  private readonly calls = new Map<string, DeskCall>();
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private readonly pendingOffers = new Map<string, { agent: string; leg: WebRtcEndpoint; timer: NodeJS.Timeout }>();
  private readonly log: Logger;
  private callbacks: CallbackScheduler | undefined;
  private readonly cfg: AgentDeskConfig;
  /** Agents whose page has been gone longer than reconnectGraceS: kept out of Available until it returns. */
  private readonly disconnected = new Set<string>();
  /** Microphone as each agent's page declared it (devices message); absent: not declared. */
  private readonly microphone = new Map<string, boolean>();
  /** Caller context per call, looked up when the call is queued. */
  private readonly contexts = new Map<string, CallContext>();
  /** This shift's calls per agent (since login), most recent first. */
  private readonly shift = new Map<string, ShiftCall[]>();
  /** Agents with a page attached, and the queue figures each was sent last. */
  private readonly attached = new Map<string, string>();
  private readonly figuresTimer: NodeJS.Timeout;
  private readonly sessionEnds: Counter<'reason'> | undefined;
  private readonly requeues: Counter<'reason'> | undefined;
  private readonly transfers: BlindTransfers;
  private readonly consults: Consults;

  constructor(private readonly opts: AgentDeskOptions) {
    this.log = opts.log.child({ component: 'desk' });
    this.cfg = opts.desk ?? agentDeskConfigSchema.parse({});
    if (opts.registry) {
      this.sessionEnds = new Counter({ name: 'ccedge_agent_sessions_ended_total', help: 'Agent sessions ended, by reason (logout, expired, replaced, removed, closed)', labelNames: ['reason'] as const, registers: [opts.registry] });
      this.requeues = new Counter({ name: 'ccedge_agent_requeues_total', help: 'Answered calls put back at the head of their queue because the agent could not take them, by reason', labelNames: ['reason'] as const, registers: [opts.registry] });
    }
    const { acd, sessions } = opts;
    const transfersTotal = opts.registry
      ? new Counter({ name: 'ccedge_transfers_total', help: 'Blind transfers by how (queue, agent, bridge, refer) and outcome (done, failed, refused)', labelNames: ['via', 'outcome'] as const, registers: [opts.registry] })
      : undefined;
    this.transfers = new BlindTransfers({ acd, send: (agent, m) => sessions.send(agent, m), log: this.log, counter: transfersTotal });
    this.consults = new Consults({
      acd,
      log: this.log,
      send: (agent, msg) => sessions.send(agent, msg),
      createLeg: (call) => legFor(opts.webrtc, call),
      mediaSetupS: opts.mediaSetupS ?? 20,
      maxParties: opts.maxParties ?? 6,
    });
    sessions.on('login', (agent) => {
      this.shift.set(agent.name, []);
      this.disconnected.delete(agent.name);
      this.opts.agentStore.recordSession('agent.login', agent.name, null).catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'agent login event write failed'));
      this.guard('login', () => acd.login(agent.name));
    });
    sessions.on('attached', (name, ws) => this.onAttached(name, ws));
    sessions.on('detached', (name) => this.onDetached(name));
    sessions.on('sessionEnded', (name, reason) => {
      // Offline in the ACD at once, stored (agent.state + agent.logout) and counted.
      this.sessionEnds?.inc({ reason });
      this.clearGrace(name);
      this.disconnected.delete(name);
      this.microphone.delete(name);
      this.opts.agentStore.recordSession('agent.logout', name, reason).catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'agent logout event write failed'));
      this.guard('logout', () => acd.logout(name, reason));
    });
    sessions.on('command', (name, msg, reply) => this.onCommand(name, msg, reply));
    acd.on('offer', (agent, call, timeoutS) => {
      this.opts.sessions.send(agent, { v: 1, type: 'ringing', call: this.info(call), timeoutS });
      this.calls.get(call.callId)?.record('call.agent-offered', { agent });
    });
    acd.on('rona', (agent, call) => {
      this.opts.sessions.send(agent, { v: 1, type: 'ringCancelled', callId: call.callId, reason: 'no-answer' });
      this.calls.get(call.callId)?.record('call.agent-no-answer', { agent });
    });
    acd.on('ringCancelled', (agent, call, reason) => {
      if (reason === 'caller-hangup') this.opts.sessions.send(agent, { v: 1, type: 'ringCancelled', callId: call.callId, reason: 'caller-hangup' });
    });
    acd.on('answered', (agent, call) => void this.connectAgent(agent, call));
    acd.on('agentState', (agent, state, reason, since) => {
      this.opts.sessions.send(agent, { v: 1, type: 'state', state, reason, since: new Date(since).toISOString() });
      const callId = acd.agent(agent)?.callId ?? null;
      this.opts.agentStore
        .recordState(agent, state, reason, callId, new Date(since))
        .catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'agent event write failed'));
      // A desk whose page is gone (grace over) never drifts back into Available by itself
      // (end of wrap-up, end of a call lost with the page): it goes away, reason disconnected.
      if ((state === 'available' || state === 'wrap-up') && this.disconnected.has(agent) && !sessions.isConnected(agent)) {
        this.guard('away on disconnect', () => acd.setAway(agent, 'disconnected'));
      }
    });
    acd.on('answered', (agent, call) => {
      const list = this.shift.get(agent) ?? [];
      list.unshift({ callId: call.callId, at: new Date().toISOString(), caller: call.caller, callerName: call.callerName, queue: call.queue, durationS: null, disposition: null });
      list.length = Math.min(list.length, SHIFT_MAX_CALLS);
      this.shift.set(agent, list);
      this.sendHistory(agent);
    });
    acd.on('callEnded', (agent, call) => {
      const entry = this.shift.get(agent)?.find((c) => c.callId === call.callId);
      if (entry) entry.durationS = Math.max(0, Math.round((Date.now() - Date.parse(entry.at)) / 1000));
      this.sendHistory(agent);
    });
    acd.on('requeued', (agent, call, reason) => {
      this.requeues?.inc({ reason });
      const list = this.shift.get(agent);
      if (list) this.shift.set(agent, list.filter((c) => c.callId !== call.callId));
      this.sendHistory(agent);
    });
    acd.on('wrapUp', (agent, callId, endsAt) => this.opts.sessions.send(agent, { v: 1, type: 'wrapUp', callId, endsAt: new Date(endsAt).toISOString() }));
    acd.on('overflow', (qc, target, reason) => {
      const call = this.calls.get(qc.callId);
      if (!call) return;
      if ('queue' in target) call.record('call.overflow', { from: qc.queue, to: target.queue, reason }, { queue: target.queue });
      else void this.callbackOnOverflow(call, qc);
    });
    acd.on('logoutPending', (_agent, callId) => void this.calls.get(callId)?.close('agent-logout'));
    // A live change removed the call's queue and left it nowhere to go (Acd.reconfigure()).
    acd.on('dropped', (qc) => {
      const call = this.calls.get(qc.callId);
      if (!call) return;
      this.opts.kpi?.overflowed(qc.callId);
      call.record('call.overflow', { from: qc.queue, to: null, reason: 'queue-removed' });
      void call.close('queue-removed');
    });
    this.figuresTimer = setInterval(() => this.sendFigures(), this.cfg.queueFiguresEveryS * 1000);
    this.figuresTimer.unref();
  }

  /** GET /api/v1/agents. */
  agentStatuses(): AgentStatus[] {
    return this.opts.acd.snapshot().agents.map((a) => ({
      name: a.name,
      displayName: a.displayName,
      state: a.state,
      reason: a.reason,
      label: stateLabel(a.state, a.reason),
      since: new Date(a.stateSince).toISOString(),
      callId: a.callId,
      connected: this.opts.sessions.isConnected(a.name),
      microphone: this.microphone.get(a.name) ?? null,
    }));
  }

  /** The caller withheld their number (Privacy): pages show "Private". */
  callerPrivate(callId: string): boolean {
    return this.calls.get(callId)?.caller.private === true;
  }

  /** agentDesk.awayReasons: what a page (agent or supervisor) may set. */
  get awayReasons(): readonly string[] {
    return this.cfg.awayReasons;
  }

  private settings(): DeskSettings {
    return { awayReasons: [...this.cfg.awayReasons], screenPopUrl: this.cfg.screenPopUrl ?? null, wrapUpExtendS: this.cfg.wrapUpExtendS };
  }

  private sendHistory(agent: string): void {
    this.opts.sessions.send(agent, { v: 1, type: 'history', calls: this.shift.get(agent) ?? [] });
  }

  /** Waiting callers and longest wait of each queue the agent serves; sent only when changed. */
  private figuresFor(agent: string, snap = this.opts.acd.snapshot()): QueueFigures[] {
    const out: QueueFigures[] = [];
    for (const q of snap.queues) {
      if (!Object.values(q.agents).some((names) => names.includes(agent))) continue;
      out.push({ name: q.name, waiting: q.waiting + q.offered, longestWaitS: q.longestWaitS });
    }
    return out;
  }

  private sendFigures(force?: string): void {
    if (this.attached.size === 0) return;
    const snap = this.opts.acd.snapshot();
    for (const [agent, last] of this.attached) {
      const queues = this.figuresFor(agent, snap);
      const text = JSON.stringify(queues);
      if (text === last && agent !== force) continue;
      this.attached.set(agent, text);
      this.opts.sessions.send(agent, { v: 1, type: 'queues', queues });
    }
  }

  /** Caller context for the agent's screen: looked up once, when the call is queued. */
  private async lookUpContext(call: DeskCall, r: { intent: string | null; source: string | null }): Promise<void> {
    const store = this.opts.callStore;
    const ctx: CallContext = {
      called: call.called ?? null,
      intent: r.intent,
      intentSource: r.source,
      ivrPath: [...(call.ivrResult?.path ?? [])],
      recentCalls: 0,
      callback: call.callback !== undefined,
    };
    this.contexts.set(call.id, ctx);
    if (!store) return;
    try {
      const since = new Date(Date.now() - this.cfg.recentCallsDays * 86_400_000).toISOString();
      if (call.caller.number) ctx.recentCalls = await store.countFrom(call.caller.number, since, call.id, RECENT_CALLS_MAX);
    } catch (err) {
      call.log.warn({ err }, 'caller context lookup failed; the agent sees what is known');
    }
    // The call may already ring at (or be with) an agent: that page gets the full context now.
    const agent = this.opts.acd.locate(call.id)?.agent;
    if (agent) this.opts.sessions.send(agent, { v: 1, type: 'callContext', callId: call.id, context: ctx });
  }

  /** Queued callers may press the callback key; needs a trunk that can dial out. */
  offerCallbacks(scheduler: CallbackScheduler): void {
    if (scheduler.enabled) this.callbacks = scheduler;
  }

  /**
   * An answered caller joins a queue (by name, or as the router decided) and hears the hold tone
   * until an agent is bridged. A full queue ends the call (busy); returns whether it was queued.
   */
  enqueue(call: DeskCall, target: string | RouteDecision, queuedAt?: number): boolean {
    const r = typeof target === 'string' ? { queue: target, priority: 0, intent: null as string | null } : target;
    let queued: QueuedCall;
    // Known before the ACD may offer it (synchronously): the offer needs the call (privacy).
    this.calls.set(call.id, call);
    try {
      queued = this.opts.acd.enqueue(r.queue, { callId: call.id, caller: call.caller.number, callerName: call.caller.name, queuedAt, priority: r.priority, intent: r.intent });
    } catch (e) {
      this.calls.delete(call.id);
      if (!isAcdError(e, 'ACD_QUEUE_FULL')) throw e;
      call.record('call.queue-full', { queue: r.queue });
      void call.close('queue-full');
      return false;
    }
    void this.lookUpContext(call, typeof target === 'string' ? { intent: null, source: null } : { intent: target.intent, source: target.source });
    call.once('closed', (cause) => this.onCallClosed(call, cause));
    call.on('agentMediaFailed', (agent) => this.mediaFailed(call, agent, 'ICE/DTLS did not connect'));
    call.record(
      'call.queued',
      typeof target === 'string'
        ? { queue: queued.queue }
        : {
            queue: queued.queue,
            intent: target.intent,
            source: target.source,
            rule: target.rule,
            priority: target.priority,
            vip: target.vip,
            // Source speech: the words stay in the local record; the sync policy lets only the confidence leave.
            ...(target.speech ? { confidence: target.speech.confidence, how: target.speech.how, text: target.speech.text } : {}),
          },
      { queue: queued.queue },
    );
    call.on('dtmf', (digit) => void this.onQueuedDigit(call, digit));
    return true;
  }

  private async callbackOnOverflow(call: DeskCall, qc: QueuedCall): Promise<void> {
    // The ACD no longer holds the call: it becomes a callback, or goes back if that fails.
    try {
      if (!this.callbacks) throw new Error('callbacks are not enabled');
      const cb = await this.callbacks.request({ number: call.caller.number, name: call.caller.name, queue: qc.queue, queuedAt: qc.queuedAt, originCallId: call.id });
      call.record('call.callback-requested', { callbackId: cb.id, reason: 'max-wait' });
      this.opts.kpi?.overflowed(call.id);
      await call.close('callback-requested');
    } catch (err) {
      call.log.warn({ err }, 'overflow to callback failed; back in the queue');
      this.guard('re-enqueue', () =>
        this.opts.acd.enqueue(qc.queue, { callId: qc.callId, caller: qc.caller, callerName: qc.callerName, queuedAt: qc.queuedAt, priority: qc.priority, intent: qc.intent }),
      );
    }
  }

  /** The callback key while waiting: the caller hangs up and is called back, keeping the place. */
  private async onQueuedDigit(call: DeskCall, digit: string): Promise<void> {
    if (digit !== this.callbacks?.key) return;
    await this.requestCallback(call);
  }

  /**
   * A queued caller asked to be called back (the key while waiting, or the IVR's callback choice):
   * the callback keeps the call's place and the call ends. False (the caller stays queued) when
   * callbacks are off, the call is not waiting, or the request failed.
   */
  async requestCallback(call: DeskCall): Promise<boolean> {
    const scheduler = this.callbacks;
    if (!scheduler || call.closed) return false;
    const where = this.opts.acd.locate(call.id);
    if (!where || where.phase !== 'queued') return false;
    try {
      const cb = await scheduler.request({
        number: call.caller.number,
        name: call.caller.name,
        queue: where.call.queue,
        queuedAt: where.call.queuedAt,
        originCallId: call.id,
      });
      call.record('call.callback-requested', { callbackId: cb.id });
      this.opts.kpi?.overflowed(call.id);
      await call.close('callback-requested');
      return true;
    } catch (err) {
      call.log.error({ err }, 'callback request failed; the caller stays in the queue');
      return false;
    }
  }

  close(): void {
    clearInterval(this.figuresTimer);
    for (const t of this.graceTimers.values()) clearTimeout(t);
    for (const p of this.pendingOffers.values()) clearTimeout(p.timer);
    this.graceTimers.clear();
    this.pendingOffers.clear();
  }

  private info(call: QueuedCall): CallInfo {
    const context = this.contexts.get(call.callId);
    // Privacy (RFC 3323): the agent's page shows "Private"; routing, callbacks and records keep the number.
    const hidden = this.calls.get(call.callId)?.caller.private === true;
    return {
      callId: call.callId,
      caller: hidden ? PRIVATE_CALLER : call.caller,
      callerName: hidden ? null : call.callerName,
      queue: call.queue,
      queuedAt: new Date(call.queuedAt).toISOString(),
      ...(context ? { context } : {}),
    };
  }

  /**
   * The agent's media never connected: the caller goes back to the head of the queue (hold tone
   * on), the agent goes away (media-failed) so the next call is not offered to a broken desk.
   * Calls that cannot be taken back (bridged already, callbacks) end as before.
   */
  private mediaFailed(call: DeskCall, agent: string, why: string): void {
    const pending = this.pendingOffers.get(call.id);
    if (pending) clearTimeout(pending.timer);
    this.pendingOffers.delete(call.id);
    const where = this.opts.acd.locate(call.id);
    if (call.closed || where?.phase !== 'connected' || where.agent !== agent || !call.detachAgent?.()) {
      void call.close('media-failed');
      return;
    }
    call.log.warn({ agent, code: 'WEBRTC_FAILED', detail: why }, "agent's audio did not connect: the caller goes back to the head of the queue");
    call.record('call.agent-media-failed', { agent, reason: why });
    this.opts.sessions.send(agent, { v: 1, type: 'callEnded', callId: call.id, cause: 'requeued' });
    this.guard('requeue', () => this.opts.acd.requeue(agent, call.id, 'media-failed'));
  }

  /** The call goes on without the desk (the PBX transferred it with REFER): queue and agent let go. */
  release(call: DeskCall, cause: 'transferred'): void {
    this.onCallClosed(call, cause);
  }

  private async connectAgent(agent: string, queued: QueuedCall): Promise<void> {
    const call = this.calls.get(queued.callId);
    if (!call || call.closed) return;
    // A consulted agent the call was handed over to is on it already.
    if (this.consults.hasLeg(agent, call)) return;
    const leg = legFor(this.opts.webrtc, call);
    call.once('agentConnected', () => {
      this.opts.sessions.send(agent, { v: 1, type: 'callConnected', callId: call.id });
      for (const listener of this.opts.bridged ?? []) {
        try {
          listener({ call, queue: queued.queue, agent, intent: queued.intent });
        } catch (err) {
          call.log.error({ err }, 'a bridged-call listener failed; the call goes on');
        }
      }
      // A transferred call is one recording: the next agent joins the one already running.
      if (call.recordingState?.active) {
        this.opts.sessions.send(agent, { v: 1, type: 'recording', callId: call.id, ...call.recordingState });
        return;
      }
      this.opts.recording
        ?.maybeRecord(call, queued.queue, agent, queued.intent)
        .then(() => {
          const state = call.recordingState;
          if (state?.active && !call.closed) this.opts.sessions.send(agent, { v: 1, type: 'recording', callId: call.id, ...state });
        })
        .catch((err: unknown) => call.log.error({ err, code: 'VAULT_WRITE_FAILED' }, 'recording could not start; the call goes on'));
    });
    call.attachAgent(agent, leg);
    call.record('call.agent-answered', { agent }, { agent });
    try {
      const sdp = await leg.createOffer();
      if (call.closed) return;
      const timer = setTimeout(() => {
        this.pendingOffers.delete(call.id);
        call.log.warn({ agent, code: 'WEBRTC_FAILED' }, 'the agent page did not answer the WebRTC offer');
        this.mediaFailed(call, agent, 'no WebRTC answer from the page');
      }, (this.opts.mediaSetupS ?? 20) * 1000);
      this.pendingOffers.set(call.id, { agent, leg, timer });
      this.opts.sessions.send(agent, { v: 1, type: 'webrtcOffer', callId: call.id, sdp });
    } catch (err) {
      call.log.error({ err, agent, code: 'WEBRTC_FAILED' }, 'cannot create the WebRTC offer');
      void call.close('media-failed');
    }
  }

  private onCallClosed(call: DeskCall, cause: CallEndCause | 'transferred'): void {
    this.calls.delete(call.id);
    this.contexts.delete(call.id);
    const pending = this.pendingOffers.get(call.id);
    if (pending) clearTimeout(pending.timer);
    this.pendingOffers.delete(call.id);
    const where = this.opts.acd.locate(call.id);
    if (!where) return;
    this.guard('call end', () => {
      if (where.phase === 'connected' && where.agent) {
        this.opts.sessions.send(where.agent, { v: 1, type: 'callEnded', callId: call.id, cause: endedCause(cause) });
        this.opts.acd.callEnded(where.agent, call.id);
      } else {
        this.opts.acd.abandon(call.id);
      }
    });
  }

  private clearGrace(name: string): boolean {
    const grace = this.graceTimers.get(name);
    if (!grace) return false;
    clearTimeout(grace);
    this.graceTimers.delete(name);
    return true;
  }

  private onAttached(name: string, ws: WebSocket): void {
    if (this.clearGrace(name)) this.log.info({ agent: name }, 'agent page back within the grace time');
    // Back after the grace: the agent stays away (disconnected) until they choose Available.
    this.disconnected.delete(name);
    const { acd, sessions } = this.opts;
    const view = acd.agent(name);
    let call: Extract<ServerMessage, { type: 'welcome' }>['call'] = null;
    if (view?.callId) {
      const where = acd.locate(view.callId);
      if (where && where.phase !== 'queued') call = { ...this.info(where.call), phase: where.phase === 'ringing' ? 'ringing' : 'connected' };
    }
    sessions.sendTo(ws, {
      v: 1,
      type: 'welcome',
      agent: { name, displayName: view?.displayName ?? name },
      state: view?.state ?? 'offline',
      reason: view?.reason ?? null,
      call,
      desk: this.settings(),
      wrapUp: ((w) => (w ? { callId: w.callId, endsAt: new Date(w.endsAt).toISOString() } : null))(acd.wrapUpEndsAt(name)),
    });
    sessions.sendTo(ws, { v: 1, type: 'history', calls: this.shift.get(name) ?? [] });
    this.attached.set(name, '');
    sessions.sendTo(ws, { v: 1, type: 'queues', queues: this.figuresFor(name) });
    const pending = view?.callId ? this.pendingOffers.get(view.callId) : undefined;
    // A page that reloaded while its offer was outstanding gets it again.
    if (pending && view?.callId && pending.leg.state === 'new') {
      pending.leg
        .createOffer()
        .then((sdp) => sessions.sendTo(ws, { v: 1, type: 'webrtcOffer', callId: view.callId as string, sdp }))
        .catch(() => undefined);
    }
  }

  private onDetached(name: string): void {
    this.attached.delete(name);
    const callId = this.opts.acd.agent(name)?.callId;
    const call = callId ? this.calls.get(callId) : undefined;
    const graceS = this.opts.reconnectGraceS;
    this.clearGrace(name);
    if (call && this.opts.acd.locate(call.id)?.phase === 'connected') {
      this.log.warn({ agent: name, callId: call.id, graceS }, 'agent page gone mid-call; waiting for it to come back');
      this.graceTimers.set(
        name,
        setTimeout(() => {
          this.graceTimers.delete(name);
          if (this.opts.sessions.isConnected(name)) return;
          call.log.warn({ agent: name }, 'agent page did not come back: ending the call');
          this.disconnected.add(name);
          void call.close('agent-lost');
        }, graceS * 1000),
      );
      return;
    }
    // No call: a closed tab must not leave a ghost Available agent that callers ring for nothing.
    this.graceTimers.set(
      name,
      setTimeout(() => {
        this.graceTimers.delete(name);
        if (this.opts.sessions.isConnected(name)) return;
        this.disconnected.add(name);
        const state = this.opts.acd.agent(name)?.state;
        if (state === 'available' || state === 'ringing' || state === 'wrap-up') {
          this.log.warn({ agent: name, graceS }, 'agent page gone: away (disconnected)');
          this.guard('away on disconnect', () => this.opts.acd.setAway(name, 'disconnected'));
        }
      }, graceS * 1000),
    );
  }

  private onCommand(agent: string, msg: AgentCommand, reply: (m: ServerMessage) => void): void {
    const { acd } = this.opts;
    try {
      switch (msg.type) {
        case 'setState':
          if (msg.state === 'available') {
            if (this.microphone.get(agent) === false) {
              reply({ v: 1, type: 'error', code: 'WS_NO_MICROPHONE', message: 'this page has no microphone: callers would not hear you, so you cannot go Available' });
              return;
            }
            acd.setAvailable(agent);
          } else {
            const reason = msg.reason ?? this.cfg.awayReasons[0];
            if (!this.cfg.awayReasons.includes(reason)) {
              reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: `away reasons are: ${this.cfg.awayReasons.join(', ')}` });
              return;
            }
            acd.setAway(agent, reason);
          }
          return;
        case 'devices': {
          this.microphone.set(agent, msg.microphone);
          const st = acd.agent(agent)?.state;
          if (!msg.microphone) {
            this.log.warn({ agent, detail: msg.detail }, 'agent page has no microphone');
            // Already Available (or ringing) without a microphone: out of the line at once.
            if (st === 'available' || st === 'ringing') acd.setAway(agent, 'no-microphone');
          }
          return;
        }
        case 'extendWrapUp':
          acd.extendWrapUp(agent, this.cfg.wrapUpExtendS, this.cfg.maxWrapUpS);
          return;
        case 'notes':
          void this.saveNotes(agent, msg.callId, msg.text, reply);
          return;
        case 'answer': {
          const consulted = this.calls.get(msg.callId);
          if (consulted && this.consults.answer(agent, consulted)) return;
          acd.answer(agent, msg.callId);
          return;
        }
        case 'webrtcAnswer': {
          const pending = this.pendingOffers.get(msg.callId);
          if ((!pending || pending.agent !== agent) && this.consults.webrtcAnswer(agent, msg.callId, msg.sdp, reply)) return;
          if (!pending || pending.agent !== agent) {
            reply({ v: 1, type: 'error', code: 'WS_NO_SUCH_CALL', message: 'no WebRTC offer outstanding for this call' });
            return;
          }
          clearTimeout(pending.timer);
          this.pendingOffers.delete(msg.callId);
          pending.leg.acceptAnswer(msg.sdp).catch((err: unknown) => {
            reply({ v: 1, type: 'error', code: 'WEBRTC_FAILED', message: (err as Error).message });
            const failed = this.calls.get(msg.callId);
            if (failed) this.mediaFailed(failed, agent, `WebRTC answer refused: ${(err as Error).message}`);
          });
          return;
        }
        case 'disposition': {
          const rec = this.opts.kpi;
          if (!rec) {
            reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'dispositions are not recorded' });
            return;
          }
          void rec.disposition(agent, msg.callId, msg.disposition).then(
            (r) => {
              if (r.ok) {
                const entry = this.shift.get(agent)?.find((c) => c.callId === r.callId);
                if (entry) entry.disposition = r.disposition;
                this.sendHistory(agent);
              }
              reply(r.ok ? { v: 1, type: 'dispositionSaved', callId: r.callId, disposition: r.disposition } : { v: 1, type: 'error', code: r.code, message: r.message });
            },
            (err: unknown) => {
              this.log.error({ err, agent }, 'disposition write failed');
              reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'the disposition could not be saved' });
            },
          );
          return;
        }
        case 'transfer': {
          if (msg.mode === 'blind') {
            this.transfers.blind(agent, this.calls.get(msg.callId), msg.target).catch((err: unknown) => this.transferFailed(agent, msg.callId, err, reply));
            return;
          }
          const call = this.agentCall(agent, msg.callId, reply);
          if (call) this.consults.start(agent, call, msg.target, reply);
          return;
        }
        case 'completeTransfer':
        case 'conference':
        case 'cancelConsult': {
          const call = this.agentCall(agent, msg.callId, reply);
          if (!call) return;
          if (msg.type === 'completeTransfer') this.consults.complete(agent, call, reply);
          else if (msg.type === 'conference') this.consults.conference(agent, call, reply);
          else this.consults.cancel(agent, call, reply);
          return;
        }
        default: {
          const call = this.calls.get(msg.callId);
          // A consulted agent (not the call's agent): hanging up takes only its leg off the call.
          if (msg.type === 'hangup' && this.consults.targetHangup(agent, msg.callId)) return;
          if (!call || call.agent !== agent) {
            reply({ v: 1, type: 'error', code: 'WS_NO_SUCH_CALL', message: 'you have no such call' });
            return;
          }
          if (msg.type === 'hangup') {
            if (!this.consults.hangup(agent, call)) void call.close('agent-hangup');
          }
          else if (msg.type === 'hold') {
            call.setHold(msg.on);
            this.opts.kpi?.hold(call.id, call.isHeld);
            reply({ v: 1, type: 'held', callId: call.id, on: call.isHeld });
          } else if (msg.type === 'mute') {
            call.setMute(msg.on);
            reply({ v: 1, type: 'muted', callId: call.id, on: call.isMuted });
          } else if (msg.type === 'recordingPause') {
            if (!call.setRecordingPaused?.(msg.on, agent, msg.reason ?? 'agent')) {
              reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'this call is not being recorded' });
              return;
            }
            reply({ v: 1, type: 'recording', callId: call.id, ...(call.recordingState ?? { active: false, paused: false }) });
          } else if (msg.type === 'dtmf') {
            if (!call.sendDtmf(msg.digits)) reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'the caller side did not negotiate DTMF (RFC 4733)' });
          }
        }
      }
    } catch (e) {
      if (isAcdError(e)) {
        reply({ v: 1, type: 'error', code: e.code === 'ACD_UNKNOWN_CALL' ? 'WS_NO_SUCH_CALL' : 'WS_NOT_ALLOWED', message: e.message });
        return;
      }
      this.log.error({ err: e, agent, type: msg.type }, 'agent command failed');
      reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'internal error' });
    }
  }

  /** The live call `agent` is connected to (the page's callId), or an error reply. */
  private agentCall(agent: string, callId: string, reply: (m: ServerMessage) => void): DeskCall | undefined {
    const call = this.calls.get(callId);
    if (call && call.agent === agent && this.opts.acd.locate(callId)?.phase === 'connected') return call;
    reply({ v: 1, type: 'error', code: 'WS_NO_SUCH_CALL', message: 'you have no such call' });
    return undefined;
  }

  /** Notes of a call this agent took (this shift, or live): stored on site with the call record. */
  private async saveNotes(agent: string, callId: string, text: string, reply: (m: ServerMessage) => void): Promise<void> {
    const store = this.opts.callStore;
    const live = this.calls.get(callId);
    const mine = live?.agent === agent || (this.shift.get(agent)?.some((c) => c.callId === callId) ?? false);
    if (!store || !mine) {
      reply({ v: 1, type: 'error', code: 'WS_NO_SUCH_CALL', message: 'notes are for calls you took this shift' });
      return;
    }
    try {
      await store.setNotes(callId, agent, text);
      reply({ v: 1, type: 'notesSaved', callId, at: new Date().toISOString() });
    } catch (err) {
      this.log.error({ err, agent, callId, code: 'DB_FAILED' }, 'notes write failed');
      reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'the notes could not be saved' });
    }
  }

  /** Blind transfers (agents/transfers.ts), for the admin API: the call's agent hands it on. */
  transferCall(callId: string, target: string): Promise<{ agent: string; outcome: BlindOutcome }> {
    return this.transfers.blindByCall(callId, this.calls.get(callId), target);
  }

  /** A blind transfer refused or failed: the agent reads why (the call goes on unless it ended). */
  private transferFailed(agent: string, callId: string, err: unknown, reply: (m: ServerMessage) => void): void {
    if (err instanceof TransferError) {
      reply({ v: 1, type: 'error', code: err.wsCode, message: err.message });
      return;
    }
    this.log.error({ err, agent, callId }, 'transfer failed');
    reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'internal error' });
  }

  /** ACD calls made on behalf of events: a refusal is logged, never thrown into an emitter. */
  private guard(what: string, op: () => unknown): void {
    try {
      op();
    } catch (err) {
      this.log.warn({ err, what }, 'ACD refused an operation');
    }
  }
}

function endedCause(cause: CallEndCause | 'transferred'): EndedCause {
  switch (cause) {
    case 'transferred':
      return 'transferred';
    case 'agent-hangup':
    case 'agent-lost':
    case 'media-failed':
    case 'shutdown':
      return cause;
    case 'agent-logout':
      return 'agent-hangup';
    default:
      return 'caller-hangup';
  }
}
