import { EventEmitter } from 'node:events';
import { AGENT_STATES } from '../agent-ui/protocol';
import { Agent, type AgentState, type AgentView } from './agent';
import { realClock, type Clock, type Timer } from './clock';
import type { QueueConfig } from './config';
import { AcdError } from './errors';
import { Queue, type QueuedCall } from './queue';

/** The part of an agent's config the ACD needs (AgentConfig and DirectoryAgent both fit). */
export interface AcdAgentConfig {
  name: string;
  displayName?: string;
  /** Queues served; absent or null = every queue. */
  queues?: readonly string[] | null;
}

export interface AcdOptions {
  queues: readonly QueueConfig[];
  agents: readonly AcdAgentConfig[];
  clock?: Clock;
}

/** A call entering a queue; queuedAt defaults to the clock's now. */
export interface NewCall {
  callId: string;
  caller: string;
  callerName: string | null;
  queuedAt?: number;
}

/** Why a ringing offer stopped without answer or timeout. */
export type RingCancelReason = 'caller-hangup' | 'agent-logout' | 'agent-away';

export type CallPhase = 'queued' | 'ringing' | 'connected';

export interface AcdEvents {
  /** A call entered a queue (enqueue only; a call put back after RONA does not repeat this). */
  queued: [call: QueuedCall];
  /** Ring `agentName` with `call`; it rings until answer(), abandon(), or `timeoutS` passes. */
  offer: [agentName: string, call: QueuedCall, timeoutS: number];
  /** The agent answered: bridge the call to the agent. */
  answered: [agentName: string, call: QueuedCall];
  /** Ring-no-answer: the call went back to the head of its queue, the agent is away/no-answer. */
  rona: [agentName: string, call: QueuedCall];
  /** The offer stopped ringing at the agent for `reason`; for agent-* the call is back at the head. */
  ringCancelled: [agentName: string, call: QueuedCall, reason: RingCancelReason];
  /** The caller left before any agent answered. */
  abandoned: [call: QueuedCall, phase: 'queued' | 'ringing'];
  /** A connected call ended; the agent is in wrap-up for wrapUpS (0: offline after a pending logout, or no wrap-up). */
  callEnded: [agentName: string, call: QueuedCall, wrapUpS: number];
  /** An agent's state changed (every change, including automatic ones such as end of wrap-up). */
  agentState: [agentName: string, state: AgentState, reason: string | null, since: number];
  /** logout() of an agent on a call: end `callId`, then call callEnded(); the agent then goes offline. */
  logoutPending: [agentName: string, callId: string];
}

export interface QueueSnapshot {
  name: string;
  /** Calls waiting in the queue, not counting those ringing at an agent. */
  waiting: number;
  /** Calls of this queue ringing at an agent. */
  offered: number;
  /** Connected calls that came from this queue. */
  connected: number;
  /** Longest wait of an unanswered caller (waiting or ringing), whole seconds. */
  longestWaitS: number;
  /** Names of the agents serving this queue, by state. */
  agents: Record<AgentState, string[]>;
}

export interface AcdSnapshot {
  at: number;
  queues: QueueSnapshot[];
  agents: AgentView[];
}

interface Offer {
  call: QueuedCall;
  agent: Agent;
  timer: Timer;
}

const MAX_REASON = 64;

/**
 * Automatic call distribution: queues of waiting calls and the agents serving them. Whenever a
 * call waits and an agent serving its queue is available, the call at the head is offered to the
 * longest-idle such agent (ties: who became available first). When several queues have waiting
 * calls, the head that has waited longest goes first.
 *
 * Plain logic, no I/O: the gateway turns events into SIP/WebRTC actions and calls back
 * answer() / abandon() / callEnded(). Events are emitted after each operation has finished
 * (state is consistent when a listener runs, and listeners may call back in); a listener that
 * throws does not stop the others, and the first such error is rethrown to the caller.
 */
export class Acd extends EventEmitter<AcdEvents> {
  private readonly clock: Clock;
  private readonly queueMap = new Map<string, Queue>();
  private readonly agentMap = new Map<string, Agent>();
  private readonly offers = new Map<string, Offer>();
  private readonly connected = new Map<string, { call: QueuedCall; agent: Agent }>();
  private readonly wrapping = new Map<Agent, { call: QueuedCall; timer: Timer }>();
  private readonly pendingLogout = new Map<Agent, string>();
  private pending: Array<() => void> = [];
  private depth = 0;
  private flushing = false;
  private closed = false;

  constructor(opts: AcdOptions) {
    super();
    this.clock = opts.clock ?? realClock;
    for (const q of opts.queues) {
      if (this.queueMap.has(q.name)) throw new RangeError(`duplicate queue "${q.name}"`);
      this.queueMap.set(q.name, new Queue(q, this.clock));
    }
    for (const a of opts.agents) {
      if (this.agentMap.has(a.name)) throw new RangeError(`duplicate agent "${a.name}"`);
      for (const q of a.queues ?? []) if (!this.queueMap.has(q)) throw new RangeError(`agent "${a.name}" names unknown queue "${q}"`);
      const agent = new Agent(a.name, a.displayName ?? a.name, a.queues ? new Set(a.queues) : null, this.clock.now());
      agent.on('state', (state, reason) => this.post('agentState', agent.name, state, reason, agent.stateSince));
      this.agentMap.set(a.name, agent);
    }
  }

  // ---- calls ----

  /** Puts a call at the tail of `queueName`; it is offered at once if an agent is available. */
  enqueue(queueName: string, call: NewCall): QueuedCall {
    return this.run(() => {
      const queue = this.queueMap.get(queueName);
      if (!queue) throw new AcdError('ACD_UNKNOWN_QUEUE', `no queue "${queueName}"`, { queue: queueName });
      if (!call.callId) throw new AcdError('ACD_UNKNOWN_CALL', 'a call needs a callId');
      if (this.locate(call.callId)) throw new AcdError('ACD_DUPLICATE_CALL', `call ${call.callId} is already in the ACD`, { callId: call.callId });
      const queued: QueuedCall = Object.freeze({
        callId: call.callId,
        caller: call.caller,
        callerName: call.callerName,
        queue: queueName,
        queuedAt: call.queuedAt ?? this.clock.now(),
      });
      queue.push(queued);
      this.post('queued', queued);
      return queued;
    });
  }

  /** The ringing agent took the call: agent on-call, event `answered`. */
  answer(agentName: string, callId: string): QueuedCall {
    return this.run(() => {
      const agent = this.agentOrThrow(agentName);
      const offer = this.offers.get(callId);
      if (!offer || offer.agent !== agent) {
        if (agent.state !== 'ringing') throw new AcdError('AGENT_BAD_TRANSITION', `agent ${agentName} is ${agent.state}, not ringing`, { agent: agentName, state: agent.state, callId });
        throw new AcdError('ACD_UNKNOWN_CALL', `call ${callId} is not ringing at agent ${agentName}`, { agent: agentName, callId });
      }
      this.clock.clearTimeout(offer.timer);
      this.offers.delete(callId);
      this.connected.set(callId, { call: offer.call, agent });
      this.post('answered', agent.name, offer.call);
      agent.transition('on-call', this.clock.now(), { callId });
      return offer.call;
    });
  }

  /**
   * The caller hung up before an agent answered. Returns where the call was, or null when the ACD
   * does not hold it unanswered (unknown, or already connected: then call callEnded()).
   * A ringing agent goes back to available keeping its idle time (and so its place in line).
   */
  abandon(callId: string): 'queued' | 'ringing' | null {
    return this.run(() => {
      const offer = this.offers.get(callId);
      if (offer) {
        this.clock.clearTimeout(offer.timer);
        this.offers.delete(callId);
        this.post('ringCancelled', offer.agent.name, offer.call, 'caller-hangup');
        this.post('abandoned', offer.call, 'ringing');
        offer.agent.transition('available', this.clock.now(), { keepIdleSince: true });
        return 'ringing';
      }
      for (const q of this.queueMap.values()) {
        const call = q.remove(callId);
        if (call) {
          this.post('abandoned', call, 'queued');
          return 'queued';
        }
      }
      return null;
    });
  }

  /**
   * A connected call ended (either side hung up): the agent goes to wrap-up for the queue's
   * wrapUpS and then to available by itself; with wrapUpS 0 straight through wrap-up to available;
   * after logout() during the call, to offline.
   */
  callEnded(agentName: string, callId: string): void {
    this.run(() => {
      const agent = this.agentOrThrow(agentName);
      const conn = this.connected.get(callId);
      if (!conn || conn.agent !== agent) {
        if (agent.state !== 'on-call') throw new AcdError('AGENT_BAD_TRANSITION', `agent ${agentName} is ${agent.state}, not on a call`, { agent: agentName, state: agent.state, callId });
        throw new AcdError('ACD_UNKNOWN_CALL', `agent ${agentName} is not on call ${callId}`, { agent: agentName, callId });
      }
      this.connected.delete(callId);
      const now = this.clock.now();
      const logoutReason = this.pendingLogout.get(agent);
      if (logoutReason !== undefined) {
        this.pendingLogout.delete(agent);
        this.post('callEnded', agent.name, conn.call, 0);
        agent.transition('offline', now, { reason: logoutReason });
        return;
      }
      const wrapUpS = this.queueMap.get(conn.call.queue)?.config.wrapUpS ?? 0;
      this.post('callEnded', agent.name, conn.call, wrapUpS);
      agent.transition('wrap-up', now, { callId });
      if (wrapUpS <= 0) {
        agent.transition('available', now);
        return;
      }
      const timer = this.clock.setTimeout(() => this.onTimer(() => this.endWrapUp(agent)), wrapUpS * 1000);
      this.wrapping.set(agent, { call: conn.call, timer });
    });
  }

  /** Where the ACD holds a call, and which agent has it once offered. */
  locate(callId: string): { phase: CallPhase; call: QueuedCall; agent: string | null } | undefined {
    const offer = this.offers.get(callId);
    if (offer) return { phase: 'ringing', call: offer.call, agent: offer.agent.name };
    const conn = this.connected.get(callId);
    if (conn) return { phase: 'connected', call: conn.call, agent: conn.agent.name };
    for (const q of this.queueMap.values()) {
      const call = q.calls().find((c) => c.callId === callId);
      if (call) return { phase: 'queued', call, agent: null };
    }
    return undefined;
  }

  // ---- agents ----

  /**
   * Agent session started: offline → away (reason `login`) by default, or available with
   * `{ ready: true }`. Logging in an agent that is not offline changes nothing.
   */
  login(agentName: string, opts: { ready?: boolean } = {}): AgentView {
    return this.run(() => {
      const agent = this.agentOrThrow(agentName);
      if (agent.state === 'offline') {
        if (opts.ready) agent.transition('available', this.clock.now());
        else agent.transition('away', this.clock.now(), { reason: 'login' });
      }
      return agent.view();
    });
  }

  /**
   * Agent session ended (logout, page gone, session expired). Ringing: like RONA without the away
   * penalty (call back to the head, next agent tried, agent offline). On a call: event
   * `logoutPending`; the gateway ends the call and calls callEnded(), and the agent goes offline.
   */
  logout(agentName: string, reason = 'logout'): AgentView {
    return this.run(() => {
      const agent = this.agentOrThrow(agentName);
      const now = this.clock.now();
      switch (agent.state) {
        case 'offline':
          break;
        case 'on-call':
          if (!this.pendingLogout.has(agent)) {
            this.pendingLogout.set(agent, reason);
            this.post('logoutPending', agent.name, agent.callId ?? '');
          }
          break;
        case 'ringing':
          this.requeueOffer(agent, 'agent-logout');
          agent.transition('offline', now, { reason });
          break;
        default:
          this.stopWrapUp(agent);
          agent.transition('offline', now, { reason });
      }
      return agent.view();
    });
  }

  /** From away or wrap-up (ending it early); already available is a no-op. */
  setAvailable(agentName: string): AgentView {
    return this.run(() => {
      const agent = this.agentOrThrow(agentName);
      if (agent.state === 'available') return agent.view();
      if (agent.state !== 'away' && agent.state !== 'wrap-up') {
        throw new AcdError('AGENT_BAD_TRANSITION', `agent ${agentName} cannot become available while ${agent.state}`, { agent: agentName, from: agent.state, to: 'available' });
      }
      this.stopWrapUp(agent);
      agent.transition('available', this.clock.now());
      return agent.view();
    });
  }

  /**
   * Not ready, with a reason (`break`, `lunch`, …): from available, wrap-up (ending it), away
   * (changing the reason) or ringing (declining: the call goes back to the head of its queue and
   * the next agent is tried, event ringCancelled 'agent-away'). Not while offline or on a call.
   */
  setAway(agentName: string, reason: string): AgentView {
    return this.run(() => {
      const agent = this.agentOrThrow(agentName);
      if (typeof reason !== 'string' || reason.length === 0 || reason.length > MAX_REASON) {
        throw new AcdError('AGENT_BAD_TRANSITION', `away needs a reason of 1-${MAX_REASON} characters`, { agent: agentName });
      }
      const now = this.clock.now();
      switch (agent.state) {
        case 'away':
          if (agent.reason !== reason) agent.transition('away', now, { reason });
          break;
        case 'available':
          agent.transition('away', now, { reason });
          break;
        case 'wrap-up':
          this.stopWrapUp(agent);
          agent.transition('away', now, { reason });
          break;
        case 'ringing':
          this.requeueOffer(agent, 'agent-away');
          agent.transition('away', now, { reason });
          break;
        default:
          throw new AcdError('AGENT_BAD_TRANSITION', `agent ${agentName} cannot go away while ${agent.state}`, { agent: agentName, from: agent.state, to: 'away' });
      }
      return agent.view();
    });
  }

  agent(agentName: string): AgentView | undefined {
    return this.agentMap.get(agentName)?.view();
  }

  // ---- views ----

  snapshot(): AcdSnapshot {
    const now = this.clock.now();
    const queues: QueueSnapshot[] = [];
    for (const q of this.queueMap.values()) {
      const agents = Object.fromEntries(AGENT_STATES.map((s) => [s, [] as string[]])) as Record<AgentState, string[]>;
      for (const a of this.agentMap.values()) if (a.serves(q.name)) agents[a.state].push(a.name);
      let oldest = Number.POSITIVE_INFINITY;
      for (const c of q.calls()) oldest = Math.min(oldest, c.queuedAt);
      let offered = 0;
      for (const o of this.offers.values()) {
        if (o.call.queue !== q.name) continue;
        offered++;
        oldest = Math.min(oldest, o.call.queuedAt);
      }
      let connected = 0;
      for (const c of this.connected.values()) if (c.call.queue === q.name) connected++;
      queues.push({
        name: q.name,
        waiting: q.size,
        offered,
        connected,
        longestWaitS: oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, Math.floor((now - oldest) / 1000)),
        agents,
      });
    }
    return { at: now, queues, agents: [...this.agentMap.values()].map((a) => a.view()) };
  }

  /** Waiting calls of a queue, head first. */
  waiting(queueName: string): QueuedCall[] {
    const q = this.queueMap.get(queueName);
    if (!q) throw new AcdError('ACD_UNKNOWN_QUEUE', `no queue "${queueName}"`, { queue: queueName });
    return q.calls();
  }

  /** Stops every timer (ring-no-answer, wrap-up); later operations throw ACD_CLOSED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const o of this.offers.values()) this.clock.clearTimeout(o.timer);
    for (const w of this.wrapping.values()) this.clock.clearTimeout(w.timer);
    this.wrapping.clear();
    this.pending = [];
  }

  // ---- internals ----

  private agentOrThrow(name: string): Agent {
    const a = this.agentMap.get(name);
    if (!a) throw new AcdError('ACD_UNKNOWN_AGENT', `no agent "${name}"`, { agent: name });
    return a;
  }

  /** Runs one operation; at the outermost level, then offers what can be offered and emits. */
  private run<T>(op: () => T): T {
    if (this.closed) throw new AcdError('ACD_CLOSED', 'the ACD is closed');
    this.depth++;
    let result: T;
    try {
      result = op();
    } finally {
      this.depth--;
    }
    if (this.depth === 0) {
      this.dispatch();
      this.flush();
    }
    return result;
  }

  private onTimer(op: () => void): void {
    if (!this.closed) this.run(op);
  }

  private post<K extends keyof AcdEvents>(event: K, ...args: AcdEvents[K]): void {
    this.pending.push(() => (this.emit as (e: K, ...a: AcdEvents[K]) => boolean)(event, ...args));
  }

  private flush(): void {
    if (this.flushing) return; // a listener called back in: the outer loop emits its events
    this.flushing = true;
    let failed = false;
    let firstError: unknown;
    try {
      while (this.pending.length > 0) {
        const emit = this.pending.shift() as () => void;
        try {
          emit();
        } catch (e) {
          if (!failed) firstError = e;
          failed = true;
        }
      }
    } finally {
      this.flushing = false;
    }
    if (failed) throw firstError;
  }

  /** Offers waiting calls to available agents until no pair is left. */
  private dispatch(): void {
    for (;;) {
      const heads = [...this.queueMap.values()]
        .filter((q) => q.size > 0)
        .sort((a, b) => (a.peek() as QueuedCall).queuedAt - (b.peek() as QueuedCall).queuedAt);
      let offered = false;
      for (const q of heads) {
        const agent = this.longestIdle(q.name);
        if (!agent) continue;
        this.offer(agent, q, q.shift() as QueuedCall);
        offered = true;
        break;
      }
      if (!offered) return;
    }
  }

  private longestIdle(queue: string): Agent | undefined {
    let best: Agent | undefined;
    for (const a of this.agentMap.values()) {
      if (a.state !== 'available' || !a.serves(queue)) continue;
      if (!best || a.compareIdle(best) < 0) best = a;
    }
    return best;
  }

  private offer(agent: Agent, queue: Queue, call: QueuedCall): void {
    const timeoutS = queue.config.ringTimeoutS;
    const timer = this.clock.setTimeout(() => this.onTimer(() => this.ringTimeout(agent, call.callId)), timeoutS * 1000);
    this.offers.set(call.callId, { call, agent, timer });
    this.post('offer', agent.name, call, timeoutS);
    agent.transition('ringing', this.clock.now(), { callId: call.callId });
  }

  private ringTimeout(agent: Agent, callId: string): void {
    const offer = this.offers.get(callId);
    if (!offer || offer.agent !== agent) return;
    this.offers.delete(callId);
    this.queueMap.get(offer.call.queue)?.pushFront(offer.call);
    this.post('rona', agent.name, offer.call);
    agent.transition('away', this.clock.now(), { reason: 'no-answer' });
  }

  /** Takes the call ringing at `agent` back to the head of its queue. */
  private requeueOffer(agent: Agent, reason: RingCancelReason): void {
    const callId = agent.callId;
    const offer = callId === null ? undefined : this.offers.get(callId);
    if (!offer || offer.agent !== agent) return;
    this.clock.clearTimeout(offer.timer);
    this.offers.delete(offer.call.callId);
    this.queueMap.get(offer.call.queue)?.pushFront(offer.call);
    this.post('ringCancelled', agent.name, offer.call, reason);
  }

  private endWrapUp(agent: Agent): void {
    if (!this.wrapping.delete(agent) || agent.state !== 'wrap-up') return;
    agent.transition('available', this.clock.now());
  }

  private stopWrapUp(agent: Agent): void {
    const w = this.wrapping.get(agent);
    if (!w) return;
    this.clock.clearTimeout(w.timer);
    this.wrapping.delete(agent);
  }
}
