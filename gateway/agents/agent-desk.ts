import type { WebSocket } from 'ws';
import { WebRtcLeg } from '../../media/webrtc/webrtc-leg';
import type { Acd } from '../acd/acd';
import { isAcdError } from '../acd/errors';
import type { QueuedCall } from '../acd/queue';
import type { CallInfo, ServerMessage } from '../agent-ui/protocol';
import type { CallEndCause } from '../calls/call';
import { PRIVATE_CALLER } from '../sip/identity';
import type { CallbackScheduler } from '../callbacks/callback-scheduler';
import type { RouteDecision } from '../routing/router';
import type { KpiRecorder } from '../kpi/kpi-recorder';
import type { RecordingService } from '../recording/recording-service';
import type { DeskCall } from './desk-call';
import type { Logger } from '../logging';
import type { AgentStore } from '../store/agent-store';
import type { AgentCommand, AgentSessions } from './agent-sessions';

export interface AgentDeskOptions {
  acd: Acd;
  sessions: AgentSessions;
  agentStore: AgentStore;
  log: Logger;
  /** Addresses and ports the WebRTC legs use (host candidates only). */
  webrtc: { interfaces: string[]; portRange: { min: number; max: number } };
  /** Seconds a page may be gone mid-call before the call ends. */
  reconnectGraceS: number;
  /** Seconds the page has to answer the WebRTC offer before the call is given up as failed. */
  mediaSetupS?: number;
  /** Records queue events for the KPIs (hold time, dispositions, callbacks). */
  kpi?: KpiRecorder;
  /** Records bridged calls into the vault per queue policy. */
  recording?: RecordingService;
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
  private readonly pendingOffers = new Map<string, { agent: string; leg: WebRtcLeg; timer: NodeJS.Timeout }>();
  private readonly log: Logger;
  private callbacks: CallbackScheduler | undefined;

  constructor(private readonly opts: AgentDeskOptions) {
    this.log = opts.log.child({ component: 'desk' });
    const { acd, sessions } = opts;
    sessions.on('login', (agent) => this.guard('login', () => acd.login(agent.name)));
    sessions.on('attached', (name, ws) => this.onAttached(name, ws));
    sessions.on('detached', (name) => this.onDetached(name));
    sessions.on('sessionEnded', (name, reason) => this.guard('logout', () => acd.logout(name, reason)));
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
    });
    acd.on('overflow', (qc, target, reason) => {
      const call = this.calls.get(qc.callId);
      if (!call) return;
      if ('queue' in target) call.record('call.overflow', { from: qc.queue, to: target.queue, reason }, { queue: target.queue });
      else void this.callbackOnOverflow(call, qc);
    });
    acd.on('logoutPending', (_agent, callId) => void this.calls.get(callId)?.close('agent-logout'));
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
    call.once('closed', (cause) => this.onCallClosed(call, cause));
    call.record(
      'call.queued',
      typeof target === 'string'
        ? { queue: queued.queue }
        : { queue: queued.queue, intent: target.intent, source: target.source, rule: target.rule, priority: target.priority, vip: target.vip },
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
    for (const t of this.graceTimers.values()) clearTimeout(t);
    for (const p of this.pendingOffers.values()) clearTimeout(p.timer);
    this.graceTimers.clear();
    this.pendingOffers.clear();
  }

  private info(call: QueuedCall): CallInfo {
    // Privacy (RFC 3323): the agent's page shows "Private"; routing, callbacks and records keep the number.
    if (this.calls.get(call.callId)?.caller.private) return { callId: call.callId, caller: PRIVATE_CALLER, callerName: null, queue: call.queue, queuedAt: new Date(call.queuedAt).toISOString() };
    return { callId: call.callId, caller: call.caller, callerName: call.callerName, queue: call.queue, queuedAt: new Date(call.queuedAt).toISOString() };
  }

  /** The call goes on without the desk (the PBX transferred it with REFER): queue and agent let go. */
  release(call: DeskCall, cause: 'transferred'): void {
    this.onCallClosed(call, cause);
  }

  private async connectAgent(agent: string, queued: QueuedCall): Promise<void> {
    const call = this.calls.get(queued.callId);
    if (!call || call.closed) return;
    const leg = WebRtcLeg.create({ codec: call.codec, interfaces: this.opts.webrtc.interfaces, portRange: this.opts.webrtc.portRange, log: call.log });
    call.once('agentConnected', () => {
      this.opts.sessions.send(agent, { v: 1, type: 'callConnected', callId: call.id });
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
        void call.close('media-failed');
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

  private onAttached(name: string, ws: WebSocket): void {
    const grace = this.graceTimers.get(name);
    if (grace) {
      clearTimeout(grace);
      this.graceTimers.delete(name);
      this.log.info({ agent: name }, 'agent page back within the grace time');
    }
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
    });
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
    const callId = this.opts.acd.agent(name)?.callId;
    const call = callId ? this.calls.get(callId) : undefined;
    if (!call || this.opts.acd.locate(call.id)?.phase !== 'connected') return;
    this.log.warn({ agent: name, callId: call.id, graceS: this.opts.reconnectGraceS }, 'agent page gone mid-call; waiting for it to come back');
    this.graceTimers.set(
      name,
      setTimeout(() => {
        this.graceTimers.delete(name);
        if (this.opts.sessions.isConnected(name)) return;
        call.log.warn({ agent: name }, 'agent page did not come back: ending the call');
        void call.close('agent-lost');
      }, this.opts.reconnectGraceS * 1000),
    );
  }

  private onCommand(agent: string, msg: AgentCommand, reply: (m: ServerMessage) => void): void {
    const { acd } = this.opts;
    try {
      switch (msg.type) {
        case 'setState':
          if (msg.state === 'available') acd.setAvailable(agent);
          else acd.setAway(agent, msg.reason ?? 'break');
          return;
        case 'answer':
          acd.answer(agent, msg.callId);
          return;
        case 'webrtcAnswer': {
          const pending = this.pendingOffers.get(msg.callId);
          if (!pending || pending.agent !== agent) {
            reply({ v: 1, type: 'error', code: 'WS_NO_SUCH_CALL', message: 'no WebRTC offer outstanding for this call' });
            return;
          }
          clearTimeout(pending.timer);
          this.pendingOffers.delete(msg.callId);
          pending.leg.acceptAnswer(msg.sdp).catch((err: unknown) => {
            reply({ v: 1, type: 'error', code: 'WEBRTC_FAILED', message: (err as Error).message });
            void this.calls.get(msg.callId)?.close('media-failed');
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
            (r) => reply(r.ok ? { v: 1, type: 'dispositionSaved', callId: r.callId, disposition: r.disposition } : { v: 1, type: 'error', code: r.code, message: r.message }),
            (err: unknown) => {
              this.log.error({ err, agent }, 'disposition write failed');
              reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'the disposition could not be saved' });
            },
          );
          return;
        }
        default: {
          const call = this.calls.get(msg.callId);
          if (!call || call.agent !== agent) {
            reply({ v: 1, type: 'error', code: 'WS_NO_SUCH_CALL', message: 'you have no such call' });
            return;
          }
          if (msg.type === 'hangup') void call.close('agent-hangup');
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
