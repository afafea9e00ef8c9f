import { EventEmitter } from 'node:events';
import { AGENT_STATES } from './agent-state';
import { Agent, type AgentState, type AgentView } from './agent';
import { realClock, type Clock, type Timer } from './clock';
import { overflowEdges, queueGraphIssues, type QueueConfig, type QueueStrategy } from './config';
import { AcdError } from './errors';
import { Queue, type QueuedCall } from './queue';

/** The part of an agent's config the ACD needs (AgentConfig and DirectoryAgent both fit). */
export interface AcdAgentConfig {
  name: string;
  displayName?: string;
  /** Queues served; absent or null = every queue. */
  queues?: readonly string[] | null;
  /** Skill levels by skill name, for requiredSkills and skills-best-match. */
  skills?: Readonly<Record<string, number>>;
  /** Supervisors are left out: they take no calls and appear in no queue's agents. */
  role?: 'agent' | 'supervisor';
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
  /** Base priority (intent priority + VIP boost); default 0. Higher is served first. */
  priority?: number;
  /** The intent that chose the queue, carried for the agent's screen and records. */
  intent?: string | null;
}

/** Where an overflowing call goes: another queue, or a callback offer the gateway makes. */
export type OverflowTarget = { queue: string } | { callback: true };

/**
 * Why a call overflowed: it waited maxWaitS, its queue was full (whenFull.overflowQueue) when it
 * arrived, or its queue was removed by a live change (reconfigure()).
 */
export type OverflowReason = 'max-wait' | 'full' | 'queue-removed';

/**
 * Where an agent hands a connected call on: a queue (the caller keeps queuedAt, so their wait and
 * place by age), or one named agent (rung alone; unanswered, the call goes to the head of its queue).
 */
export type TransferTarget = { queue: string } | { agent: string };

/** Why a ringing offer stopped without answer or timeout. */
export type RingCancelReason = 'caller-hangup' | 'agent-logout' | 'agent-away';

export type CallPhase = 'queued' | 'ringing' | 'connected';

export interface AcdEvents {
  /** A call entered a queue (enqueue only; a call put back after RONA or moved by overflow does not repeat this). */
  queued: [call: QueuedCall];
  /**
   * `call` (as it was, in its old queue `call.queue`) left that queue: for `{ queue }` it now
   * waits there (same callId and queuedAt; for reason `full` it never waited in call.queue); for
   * `{ callback: true }` the ACD no longer holds it and the gateway offers the caller a callback.
   */
  overflow: [call: QueuedCall, target: OverflowTarget, reason: OverflowReason];
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
  /** A queue was paused (its calls wait, none is offered) or resumed. */
  queuePaused: [queue: string, paused: boolean, reason: string | null];
  /**
   * requeue(): the answered call is back at the head of its queue (the agent's media never
   * connected); the agent is away with `reason`. The next eligible agent is offered it at once.
   */
  requeued: [agentName: string, call: QueuedCall, reason: string];
  /** The agent's wrap-up now ends at `endsAt` (ms epoch): at its start and after each extension. */
  wrapUp: [agentName: string, callId: string, endsAt: number];
  /**
   * reconfigure() removed the agent: at once (`now`; it was not on a call) or when its call ended
   * (`after-call`). It is offline and gone from the ACD; its session should end now.
   */
  agentRemoved: [agentName: string, when: 'now' | 'after-call'];
  /**
   * reconfigure() removed the call's queue and there was nowhere to move it (no overflow queue of
   * its own, no fallback queue): the ACD no longer holds it and the gateway ends it.
   */
  dropped: [call: QueuedCall, reason: 'queue-removed'];
  /**
   * transfer(): `agentName` handed the call on (its `callEnded` comes first: the call counts as
   * handled by them). `call` is the call as it now is — waiting in `target.queue`, or ringing at
   * `target.agent` (an `offer` event follows) with `call.queue` unchanged; `fromQueue` is the queue
   * it was answered from.
   */
  transferred: [agentName: string, call: QueuedCall, target: TransferTarget, fromQueue: string];
}

/** What reconfigure() did, for the log and the API's answer. */
export interface ReconfigureResult {
  queuesAdded: string[];
  queuesRemoved: string[];
  agentsAdded: string[];
  agentsRemoved: string[];
  /** Removed agents on a call: they stay until it ends (event agentRemoved 'after-call'). */
  agentsRetiring: string[];
  /** Waiting calls of removed queues, by where they went (a queue name, or null: dropped). */
  callsMoved: Array<{ callId: string; from: string; to: string | null }>;
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
  /** Paused: calls wait and none is offered to agents. */
  paused: boolean;
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
  /** When the call entered its queue: kept if it goes back there (maxWaitS counts from it). */
  enteredAt: number;
}


const MAX_REASON = 64;

/**
 * Automatic call distribution: queues of waiting calls and the agents serving them. An agent is
 * eligible for a queue when available, serving it (`queues`) and having every requiredSkills
 * skill at its minimum level. Whenever a call waits and an agent is eligible for its queue, the
 * queue's next call (highest effective priority = priority + agingPerMinute × minutes waited,
 * then longest waiting) is offered to the agent the queue's strategy picks:
 * - `longest-idle` (default): idle longest (ties: who became available first);
 * - `skills-best-match`: highest sum of the agent's levels in the queue's requiredSkills (in its
 *   primarySkill, default the queue's name, when requiredSkills is empty), then longest idle;
 * - `round-robin`: the next eligible agent after the one last offered a call of this queue, in
 *   configured agent order.
 * When several queues have a call and an eligible agent, the call with the highest effective
 * priority goes first (each by its own queue's aging), then the longest waiting.
 *
 * Overflow: a call waiting maxWaitS in a queue moves to `overflow.queue` (keeping queuedAt) or
 * leaves the ACD with a callback offer (event `overflow`). A queue at maxSize refuses new calls
 * (ACD_QUEUE_FULL) or sends them to `whenFull.overflowQueue`; calls moved by max-wait overflow
 * are always accepted (they have already waited).
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
  private readonly connected = new Map<string, { call: QueuedCall; agent: Agent; enteredAt: number }>();
  private readonly wrapping = new Map<Agent, { call: QueuedCall; timer: Timer; endsAt: number; startedAt: number }>();
  private readonly pendingLogout = new Map<Agent, string>();
  /** Agents ringing for (or talking in) a consult on another agent's call. */
  private readonly consulted = new Map<Agent, { call: QueuedCall; timer: Timer; talking: boolean }>();
  /** Max-wait timers of waiting calls, by callId. */
  private readonly overflowTimers = new Map<string, Timer>();
  /** Round-robin: the agent last offered a call of each queue. */
  private readonly rrLast = new Map<string, string>();
  /** Removed by reconfigure() while on a call: offered nothing, removed when the call ends. */
  private readonly retiring = new Set<Agent>();
  /** Names removed by reconfigure(): a late logout() of one is a no-op, not an error. */
  private readonly removedNames = new Set<string>();
  /** Where calls of removed queues go when they come back unanswered (queue name, or null: dropped). */
  private readonly removedQueueHome = new Map<string, string | null>();
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
    const graph = queueGraphIssues(opts.queues);
    if (graph.length > 0) throw new RangeError(graph.map((i) => i.message).join('; '));
    for (const a of opts.agents) {
      if (a.role === 'supervisor') continue;
      if (this.agentMap.has(a.name)) throw new RangeError(`duplicate agent "${a.name}"`);
      for (const q of a.queues ?? []) if (!this.queueMap.has(q)) throw new RangeError(`agent "${a.name}" names unknown queue "${q}"`);
      this.addAgent(a);
    }
  }

  private addAgent(a: AcdAgentConfig): Agent {
    const agent = new Agent(a.name, a.displayName ?? a.name, a.queues ? new Set(a.queues) : null, this.clock.now(), Object.freeze({ ...(a.skills ?? {}) }));
    agent.on('state', (state, reason) => this.post('agentState', agent.name, state, reason, agent.stateSince));
    this.agentMap.set(a.name, agent);
    this.removedNames.delete(a.name);
    return agent;
  }

  // ---- calls ----

  /**
   * Puts a call in `queueName` (behind calls of equal or higher priority); it is offered at once if
   * an agent is eligible. A full queue (maxSize) sends it on to whenFull.overflowQueue (events
   * `overflow` reason `full`; the returned call's `queue` says where it landed) or, with
   * whenFull `busy`, throws ACD_QUEUE_FULL (the gateway answers 486 / plays busy) and changes nothing.
   */
  enqueue(queueName: string, call: NewCall): QueuedCall {
    return this.run(() => {
      const queue = this.queueMap.get(queueName);
      if (!queue) throw new AcdError('ACD_UNKNOWN_QUEUE', `no queue "${queueName}"`, { queue: queueName });
      if (!call.callId) throw new AcdError('ACD_UNKNOWN_CALL', 'a call needs a callId');
      if (this.locate(call.callId)) throw new AcdError('ACD_DUPLICATE_CALL', `call ${call.callId} is already in the ACD`, { callId: call.callId });
      const priority = call.priority ?? 0;
      if (!Number.isFinite(priority)) throw new RangeError('priority must be a finite number');
      const path = this.placementPath(queueName);
      const target = path.at(-1) as Queue;
      if (!target.hasRoom) {
        throw new AcdError('ACD_QUEUE_FULL', `queue "${queueName}" is full`, { queue: queueName, tried: path.map((q) => q.name) });
      }
      const base = {
        callId: call.callId,
        caller: call.caller,
        callerName: call.callerName,
        queuedAt: call.queuedAt ?? this.clock.now(),
        priority,
        intent: call.intent ?? null,
      };
      for (let i = 0; i + 1 < path.length; i++) {
        this.post('overflow', Object.freeze({ ...base, queue: path[i].name }), { queue: path[i + 1].name }, 'full');
      }
      const queued: QueuedCall = Object.freeze({ ...base, queue: target.name });
      this.addWaiting(target, queued, this.clock.now(), false);
      this.post('queued', queued);
      return queued;
    });
  }

  /**
   * Where a new call for `queueName` would wait now (following whenFull.overflowQueue from full
   * queues), or null when it would get ACD_QUEUE_FULL. For the gateway to answer 486 before
   * answering the call; enqueue() decides again when it is called.
   */
  placement(queueName: string): string | null {
    if (!this.queueMap.has(queueName)) throw new AcdError('ACD_UNKNOWN_QUEUE', `no queue "${queueName}"`, { queue: queueName });
    const target = this.placementPath(queueName).at(-1) as Queue;
    return target.hasRoom ? target.name : null;
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
      this.connected.set(callId, { call: offer.call, agent, enteredAt: offer.enteredAt });
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
        const call = this.takeWaiting(q, callId);
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
      this.finishCall(agent, conn.call);
    });
  }

  /**
   * The connected agent hands the call on. The agent's part ends as with callEnded() (event
   * `callEnded`, wrap-up or a pending logout): the call counts as handled by them. Then, by target:
   * - `{ queue }`: the call waits there with its original queuedAt (the caller keeps their wait
   *   and their place by age); accepted above maxSize (the caller has waited already); maxWaitS
   *   of that queue counts from now.
   * - `{ agent }`: offered to that agent alone (event `offer`), for the ringTimeoutS of the call's
   *   queue; unanswered (or declined, or the agent logs out) the call goes to the head of its
   *   queue and is offered as usual — RONA, with the same away/no-answer as any ring-no-answer.
   *   The agent must be logged in and available (ACD_AGENT_UNAVAILABLE otherwise); serving the
   *   queue is not required.
   * Errors change nothing. Event `transferred` after `callEnded`.
   */
  transfer(agentName: string, callId: string, target: TransferTarget): QueuedCall {
    return this.run(() => {
      const agent = this.agentOrThrow(agentName);
      const conn = this.connected.get(callId);
      if (!conn || conn.agent !== agent) {
        if (agent.state !== 'on-call') throw new AcdError('AGENT_BAD_TRANSITION', `agent ${agentName} is ${agent.state}, not on a call`, { agent: agentName, state: agent.state, callId });
        throw new AcdError('ACD_UNKNOWN_CALL', `agent ${agentName} is not on call ${callId}`, { agent: agentName, callId });
      }
      let queue: Queue;
      let to: Agent | null = null;
      if ('queue' in target && typeof target.queue === 'string') {
        const q = this.queueMap.get(target.queue);
        if (!q) throw new AcdError('ACD_UNKNOWN_QUEUE', `no queue "${target.queue}"`, { queue: target.queue });
        queue = q;
      } else if ('agent' in target && typeof target.agent === 'string') {
        to = this.agentOrThrow(target.agent);
        if (to === agent) throw new AcdError('ACD_AGENT_UNAVAILABLE', `agent ${agentName} cannot transfer a call to themselves`, { agent: agentName, callId });
        if (to.state !== 'available') {
          const why = to.state === 'away' && to.reason ? `away (${to.reason})` : to.state;
          throw new AcdError('ACD_AGENT_UNAVAILABLE', `agent ${to.name} is ${why}, not available`, { agent: to.name, state: to.state, callId });
        }
        const q = this.queueMap.get(conn.call.queue);
        if (!q) throw new AcdError('ACD_UNKNOWN_QUEUE', `call ${callId} has no queue to fall back to`, { queue: conn.call.queue, callId });
        queue = q;
      } else {
        throw new RangeError('a transfer target is { queue } or { agent }');
      }
      const now = this.clock.now();
      this.connected.delete(callId);
      this.finishCall(agent, conn.call);
      const call: QueuedCall = Object.freeze({ ...conn.call, queue: queue.name });
      this.post('transferred', agent.name, call, to ? { agent: to.name } : { queue: queue.name }, conn.call.queue);
      if (to) this.offer(to, queue, call, now, true);
      else this.addWaiting(queue, call, now, false);
      return call;
    });
  }

  /**
   * A consult: `targetName` (available) rings for `callId`, which stays connected to `agentName`,
   * outside the queues (event `offer`, ringTimeoutS of the call's queue; unanswered: `rona`, the
   * target away no-answer). consultAnswered() puts the target on the call, consultEnded() lets it
   * go, consultHandOver() makes it the call's agent. ACD_AGENT_UNAVAILABLE unless available.
   */
  consultRing(agentName: string, callId: string, targetName: string): QueuedCall {
    return this.run(() => {
      const agent = this.agentOrThrow(agentName);
      const conn = this.connected.get(callId);
      if (!conn || conn.agent !== agent) throw new AcdError('ACD_UNKNOWN_CALL', `agent ${agentName} is not on call ${callId}`, { agent: agentName, callId });
      const to = this.agentOrThrow(targetName);
      if (to === agent || to.state !== 'available') {
        const why = to === agent ? 'the agent on the call' : to.state === 'away' && to.reason ? `away (${to.reason})` : to.state;
        throw new AcdError('ACD_AGENT_UNAVAILABLE', `agent ${to.name} is ${why}, not available`, { agent: to.name, state: to.state, callId });
      }
      const timeoutS = this.queueMap.get(conn.call.queue)?.config.ringTimeoutS ?? 20;
      const timer = this.clock.setTimeout(
        () =>
          this.onTimer(() => {
            const c = this.consulted.get(to);
            if (!c || c.call.callId !== callId || c.talking) return;
            this.consulted.delete(to);
            this.post('rona', to.name, c.call);
            to.transition('away', this.clock.now(), { reason: 'no-answer' });
          }),
        timeoutS * 1000,
      );
      this.consulted.set(to, { call: conn.call, timer, talking: false });
      this.post('offer', to.name, conn.call, timeoutS);
      to.transition('ringing', this.clock.now(), { callId });
      return conn.call;
    });
  }

  /** The consulted agent answered: on-call (the call stays the first agent's). */
  consultAnswered(targetName: string, callId: string): void {
    this.run(() => {
      const to = this.agentOrThrow(targetName);
      const c = this.consulted.get(to);
      if (!c || c.call.callId !== callId || c.talking) throw new AcdError('ACD_UNKNOWN_CALL', `call ${callId} is not ringing at agent ${targetName} for a consult`, { agent: targetName, callId });
      this.clock.clearTimeout(c.timer);
      c.talking = true;
      to.transition('on-call', this.clock.now(), { callId });
    });
  }

  /** The consulted agent's part is over: ringing → available (keeping its place), talking → wrap-up. */
  consultEnded(targetName: string, callId: string): void {
    this.run(() => {
      const to = this.agentMap.get(targetName);
      const c = to && this.consulted.get(to);
      if (!to || !c || c.call.callId !== callId) return;
      this.clock.clearTimeout(c.timer);
      this.consulted.delete(to);
      if (!c.talking) to.transition('available', this.clock.now(), { keepIdleSince: true });
      else this.finishCall(to, c.call);
    });
  }

  /**
   * The first agent leaves a consulted call to the target (complete transfer, or hang-up in a
   * conference): as transfer() to the agent — the first agent's `callEnded` (handled by them),
   * `transferred` — then the target holds the connected call (`answered`: offered to and answered
   * by the target in the KPIs).
   */
  consultHandOver(agentName: string, targetName: string, callId: string): void {
    this.run(() => {
      const agent = this.agentOrThrow(agentName);
      const to = this.agentOrThrow(targetName);
      const conn = this.connected.get(callId);
      const c = this.consulted.get(to);
      if (!conn || conn.agent !== agent || !c || c.call.callId !== callId || !c.talking) throw new AcdError('ACD_UNKNOWN_CALL', `no consult of ${targetName} on call ${callId} of ${agentName}`, { agent: agentName, callId });
      this.consulted.delete(to);
      this.connected.delete(callId);
      this.finishCall(agent, conn.call);
      this.post('transferred', agent.name, conn.call, { agent: to.name }, conn.call.queue);
      this.connected.set(callId, { call: conn.call, agent: to, enteredAt: conn.enteredAt });
      this.post('answered', to.name, conn.call);
    });
  }

  /** The agent's part of a connected call is over: wrap-up, or offline after a pending logout. */
  private finishCall(agent: Agent, call: QueuedCall): void {
    const now = this.clock.now();
    if (this.retiring.has(agent)) {
      // Removed by reconfigure() during the call: gone now, no wrap-up.
      this.pendingLogout.delete(agent);
      this.post('callEnded', agent.name, call, 0);
      this.retire(agent, 'after-call');
      return;
    }
    const logoutReason = this.pendingLogout.get(agent);
    if (logoutReason !== undefined) {
      this.pendingLogout.delete(agent);
      this.post('callEnded', agent.name, call, 0);
      agent.transition('offline', now, { reason: logoutReason });
      return;
    }
    const wrapUpS = this.queueMap.get(call.queue)?.config.wrapUpS ?? 0;
    this.post('callEnded', agent.name, call, wrapUpS);
    agent.transition('wrap-up', now, { callId: call.callId });
    if (wrapUpS <= 0) {
      agent.transition('available', now);
      return;
    }
    const endsAt = now + wrapUpS * 1000;
    const timer = this.clock.setTimeout(() => this.onTimer(() => this.endWrapUp(agent)), wrapUpS * 1000);
    this.wrapping.set(agent, { call, timer, endsAt, startedAt: now });
    this.post('wrapUp', agent.name, call.callId, endsAt);
  }

  /**
   * The agent's media never connected (ICE/DTLS timeout, no WebRTC answer): the call goes back
   * to the head of its queue keeping its place (queuedAt, and enteredAt for maxWaitS), the agent
   * goes away with `reason` (not to wrap-up: nothing was handled, and a broken desk must not be
   * offered the next call), and the next eligible agent is offered it. Event `requeued`.
   * A pending logout wins over the away: the agent goes offline.
   */
  requeue(agentName: string, callId: string, reason = 'media-failed'): QueuedCall {
    return this.run(() => {
      const agent = this.agentOrThrow(agentName);
      const conn = this.connected.get(callId);
      if (!conn || conn.agent !== agent) throw new AcdError('ACD_UNKNOWN_CALL', `agent ${agentName} is not on call ${callId}`, { agent: agentName, callId });
      if (typeof reason !== 'string' || reason.length === 0 || reason.length > MAX_REASON) throw new RangeError(`reason must be 1-${MAX_REASON} characters`);
      this.connected.delete(callId);
      this.putBackCall(conn.call, conn.enteredAt);
      this.post('requeued', agent.name, conn.call, reason);
      if (this.retiring.has(agent)) {
        this.pendingLogout.delete(agent);
        this.retire(agent, 'after-call');
        return conn.call;
      }
      const logoutReason = this.pendingLogout.get(agent);
      this.pendingLogout.delete(agent);
      if (logoutReason !== undefined) agent.transition('offline', this.clock.now(), { reason: logoutReason });
      else agent.transition('away', this.clock.now(), { reason });
      return conn.call;
    });
  }

  /**
   * More wrap-up time: the running wrap-up now ends `seconds` later than it would have, but never
   * more than `maxTotalS` after it started. Returns the new end (ms epoch); event `wrapUp`.
   */
  extendWrapUp(agentName: string, seconds: number, maxTotalS: number): number {
    return this.run(() => {
      const agent = this.agentOrThrow(agentName);
      const w = this.wrapping.get(agent);
      if (!w || agent.state !== 'wrap-up') throw new AcdError('AGENT_BAD_TRANSITION', `agent ${agentName} is not in a timed wrap-up`, { agent: agentName, state: agent.state });
      if (!(seconds > 0) || !(maxTotalS > 0)) throw new RangeError('seconds and maxTotalS must be positive');
      const now = this.clock.now();
      const endsAt = Math.min(w.endsAt + seconds * 1000, w.startedAt + maxTotalS * 1000);
      if (endsAt <= w.endsAt) throw new AcdError('AGENT_BAD_TRANSITION', `wrap-up cannot be longer than ${maxTotalS} s`, { agent: agentName });
      this.clock.clearTimeout(w.timer);
      w.timer = this.clock.setTimeout(() => this.onTimer(() => this.endWrapUp(agent)), Math.max(0, endsAt - now));
      w.endsAt = endsAt;
      this.post('wrapUp', agent.name, w.call.callId, endsAt);
      return endsAt;
    });
  }

  /** When the agent's running wrap-up ends (ms epoch), or null when not in a timed wrap-up. */
  wrapUpEndsAt(agentName: string): { callId: string; endsAt: number } | null {
    const a = this.agentMap.get(agentName);
    const w = a ? this.wrapping.get(a) : undefined;
    return w && a?.state === 'wrap-up' ? { callId: w.call.callId, endsAt: w.endsAt } : null;
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
      if (!this.agentMap.has(agentName) && this.removedNames.has(agentName)) {
        // Its session ends after reconfigure() removed it: nothing left to do.
        return { name: agentName, displayName: agentName, state: 'offline', reason: 'removed', callId: null, stateSince: this.clock.now(), idleSince: null };
      }
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

  // ---- queues ----

  /**
   * Pauses a queue: its callers keep waiting (max-wait overflow still applies) and no call of it is
   * offered to an agent until it is resumed. Ringing offers continue. Idempotent.
   */
  setQueuePaused(queueName: string, paused: boolean, reason = 'paused'): QueueSnapshot {
    return this.run(() => {
      const q = this.queueMap.get(queueName);
      if (!q) throw new AcdError('ACD_UNKNOWN_QUEUE', `no queue "${queueName}"`, { queue: queueName });
      if (paused !== (q.paused !== null)) {
        q.paused = paused ? { reason: reason.slice(0, MAX_REASON), since: this.clock.now() } : null;
        this.post('queuePaused', q.name, paused, paused ? reason.slice(0, MAX_REASON) : null);
      }
      return this.snapshot().queues.find((x) => x.name === queueName) as QueueSnapshot;
    });
  }

  /**
   * Replaces the queue set (config push): existing queues take their new settings and keep their
   * waiting calls (and pause state), new queues are added, queues left out are removed — refused
   * (ACD_RECONFIGURE_REFUSED, nothing changed) while such a queue still has a call waiting,
   * ringing or connected, or while an agent is configured to serve it. Calls already queued keep
   * their max-wait timers; the new settings apply to what happens next.
   */
  reconfigureQueues(queues: readonly QueueConfig[]): void {
    this.run(() => {
      const names = new Set<string>();
      for (const q of queues) {
        if (names.has(q.name)) throw new AcdError('ACD_RECONFIGURE_REFUSED', `duplicate queue "${q.name}"`);
        names.add(q.name);
      }
      const graph = queueGraphIssues(queues);
      if (graph.length > 0) throw new AcdError('ACD_RECONFIGURE_REFUSED', graph.map((i) => i.message).join('; '));
      for (const q of this.queueMap.values()) {
        if (names.has(q.name)) continue;
        const busy = q.size + [...this.offers.values(), ...this.connected.values()].filter((o) => o.call.queue === q.name).length;
        if (busy > 0) throw new AcdError('ACD_RECONFIGURE_REFUSED', `queue "${q.name}" still has ${busy} call(s); remove it when it is empty`, { queue: q.name });
      }
      for (const a of this.agentMap.values()) {
        for (const q of a.queues ?? []) {
          if (!names.has(q)) throw new AcdError('ACD_RECONFIGURE_REFUSED', `agent "${a.name}" serves queue "${q}", which the new config removes`, { agent: a.name, queue: q });
        }
      }
      for (const cfg of queues) {
        const existing = this.queueMap.get(cfg.name);
        if (existing) existing.reconfigure(cfg);
        else this.queueMap.set(cfg.name, new Queue(cfg, this.clock));
      }
      for (const name of [...this.queueMap.keys()]) if (!names.has(name)) this.queueMap.delete(name);
    });
  }

  /**
   * Replaces queues and agents together (people and queues changed live: admin API, CLI, cloud),
   * validated first and applied in one step, while calls run:
   * - queues: kept ones take their new settings (waiting calls, pause state kept), new ones are
   *   added. A removed queue's waiting callers move to its own overflow queue, else its whenFull
   *   queue, else `fallbackQueue` (each only if it is still configured), keeping their place in
   *   time (event overflow 'queue-removed'); with none, they are dropped (event `dropped`) and
   *   the gateway ends them. Its calls ringing or connected carry on; one coming back unanswered
   *   goes the same way.
   * - agents: new ones are added offline (they log in as usual), kept ones take their new
   *   queues/skills for the next offer (a call ringing now keeps ringing). A removed agent on a
   *   call stays until that call ends and is offered nothing meanwhile; one not on a call is
   *   removed at once (a ringing offer goes back to the head of its queue). Event agentRemoved.
   * Refused (ACD_RECONFIGURE_REFUSED, nothing changed): duplicate names, an overflow graph that
   * is not sound, an agent naming a queue not in the new set.
   */
  reconfigure(queues: readonly QueueConfig[], agents: readonly AcdAgentConfig[], opts: { fallbackQueue?: string } = {}): ReconfigureResult {
    return this.run(() => {
      const qNames = new Set<string>();
      for (const q of queues) {
        if (qNames.has(q.name)) throw new AcdError('ACD_RECONFIGURE_REFUSED', `duplicate queue "${q.name}"`);
        qNames.add(q.name);
      }
      const graph = queueGraphIssues(queues);
      if (graph.length > 0) throw new AcdError('ACD_RECONFIGURE_REFUSED', graph.map((i) => i.message).join('; '));
      const takers = agents.filter((a) => a.role !== 'supervisor');
      const aNames = new Set<string>();
      for (const a of takers) {
        if (aNames.has(a.name)) throw new AcdError('ACD_RECONFIGURE_REFUSED', `duplicate agent "${a.name}"`);
        aNames.add(a.name);
        for (const q of a.queues ?? []) if (!qNames.has(q)) throw new AcdError('ACD_RECONFIGURE_REFUSED', `agent "${a.name}" names unknown queue "${q}"`, { agent: a.name, queue: q });
      }
      const result: ReconfigureResult = { queuesAdded: [], queuesRemoved: [], agentsAdded: [], agentsRemoved: [], agentsRetiring: [], callsMoved: [] };
      // Queues first: agents' new lists name them, and calls of removed queues need their new home.
      for (const cfg of queues) {
        const existing = this.queueMap.get(cfg.name);
        if (existing) existing.reconfigure(cfg);
        else {
          this.queueMap.set(cfg.name, new Queue(cfg, this.clock));
          this.removedQueueHome.delete(cfg.name);
          result.queuesAdded.push(cfg.name);
        }
      }
      const now = this.clock.now();
      for (const [name, q] of [...this.queueMap]) {
        if (qNames.has(name)) continue;
        const candidates = [...overflowEdges(q.config).map((e) => e.to), opts.fallbackQueue];
        const home = candidates.find((c): c is string => c !== undefined && c !== name && qNames.has(c)) ?? null;
        this.removedQueueHome.set(name, home);
        const target = home === null ? undefined : (this.queueMap.get(home) as Queue);
        for (const call of q.calls()) {
          this.takeWaiting(q, call.callId);
          result.callsMoved.push({ callId: call.callId, from: name, to: home });
          if (target) {
            // Their wait so far counts (queuedAt kept); maxWaitS of the new queue counts from now.
            this.addWaiting(target, Object.freeze({ ...call, queue: target.name }), now, false);
            this.post('overflow', call, { queue: target.name }, 'queue-removed');
          } else this.post('dropped', call, 'queue-removed');
        }
        this.queueMap.delete(name);
        this.rrLast.delete(name);
        result.queuesRemoved.push(name);
      }
      for (const a of takers) {
        const existing = this.agentMap.get(a.name);
        const queuesServed = a.queues ? new Set(a.queues) : null;
        if (existing) {
          existing.update(a.displayName ?? a.name, queuesServed, Object.freeze({ ...(a.skills ?? {}) }));
          this.retiring.delete(existing);
        } else {
          this.addAgent(a);
          result.agentsAdded.push(a.name);
        }
      }
      for (const agent of [...this.agentMap.values()]) {
        if (aNames.has(agent.name)) continue;
        if (agent.state === 'on-call') {
          if (!this.retiring.has(agent)) result.agentsRetiring.push(agent.name);
          this.retiring.add(agent);
        } else {
          this.retire(agent, 'now');
          result.agentsRemoved.push(agent.name);
        }
      }
      return result;
    });
  }

  /** Agents removed by reconfigure() who are still on their call. */
  retiringAgents(): string[] {
    return [...this.retiring].map((a) => a.name);
  }

  // ---- views ----

  snapshot(): AcdSnapshot {
    const now = this.clock.now();
    const queues: QueueSnapshot[] = [];
    for (const q of this.queueMap.values()) {
      const agents = Object.fromEntries(AGENT_STATES.map((s) => [s, [] as string[]])) as Record<AgentState, string[]>;
      for (const a of this.agentMap.values()) if (this.qualifies(a, q)) agents[a.state].push(a.name);
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
        paused: q.paused !== null,
      });
    }
    return { at: now, queues, agents: [...this.agentMap.values()].map((a) => a.view()) };
  }

  /** Waiting calls of a queue in the order they would be offered now. */
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
    for (const t of this.overflowTimers.values()) this.clock.clearTimeout(t);
    for (const c of this.consulted.values()) this.clock.clearTimeout(c.timer);
    this.consulted.clear();
    this.wrapping.clear();
    this.overflowTimers.clear();
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

  /** Moves overdue calls (maxWaitS), then offers waiting calls to eligible agents until no pair is left. */
  private dispatch(): void {
    this.overflowDue();
    for (;;) {
      const now = this.clock.now();
      const heads = [...this.queueMap.values()]
        .filter((q) => q.size > 0 && q.paused === null)
        .map((q) => ({ q, call: q.peek() as QueuedCall, p: q.effectivePriority(q.peek() as QueuedCall, now) }))
        .sort((a, b) => b.p - a.p || a.call.queuedAt - b.call.queuedAt);
      let offered = false;
      for (const { q } of heads) {
        const agent = this.pickAgent(q);
        if (!agent) continue;
        const call = q.peek() as QueuedCall;
        const enteredAt = q.enteredAt(call.callId) ?? now;
        this.takeWaiting(q, call.callId);
        this.offer(agent, q, call, enteredAt);
        offered = true;
        break;
      }
      if (!offered) return;
    }
  }

  /** Serves the queue and meets its requiredSkills (any state). */
  private qualifies(a: Agent, q: Queue): boolean {
    return a.serves(q.name) && a.meets(q.config.requiredSkills);
  }

  private pickAgent(q: Queue): Agent | undefined {
    const strategy: QueueStrategy = q.config.strategy ?? 'longest-idle';
    const eligible = [...this.agentMap.values()].filter((a) => a.state === 'available' && !this.retiring.has(a) && this.qualifies(a, q));
    if (eligible.length === 0) return undefined;
    switch (strategy) {
      case 'round-robin': {
        const order = [...this.agentMap.keys()];
        const last = this.rrLast.get(q.name);
        const start = last === undefined ? 0 : order.indexOf(last) + 1;
        for (let k = 0; k < order.length; k++) {
          const a = eligible.find((e) => e.name === order[(start + k) % order.length]);
          if (a) return a;
        }
        return undefined;
      }
      case 'skills-best-match': {
        const required = Object.keys(q.config.requiredSkills ?? {});
        const skills = required.length > 0 ? required : [q.config.primarySkill ?? q.name];
        let best: Agent | undefined;
        let bestScore = Number.NEGATIVE_INFINITY;
        for (const a of eligible) {
          const score = a.skillScore(skills);
          if (score > bestScore || (score === bestScore && best && a.compareIdle(best) < 0)) {
            best = a;
            bestScore = score;
          }
        }
        return best;
      }
      default: {
        let best: Agent | undefined;
        for (const a of eligible) if (!best || a.compareIdle(best) < 0) best = a;
        return best;
      }
    }
  }

  /**
   * The queues a new call for `queueName` would pass through: itself, then while full, its
   * whenFull.overflowQueue (stopping at a queue already visited, a queue with room or busy).
   */
  private placementPath(queueName: string): Queue[] {
    const path = [this.queueMap.get(queueName) as Queue];
    for (;;) {
      const q = path.at(-1) as Queue;
      if (q.hasRoom) return path;
      const wf = q.config.whenFull;
      const next = wf && typeof wf === 'object' ? this.queueMap.get(wf.overflowQueue) : undefined;
      if (!next || path.includes(next)) return path;
      path.push(next);
    }
  }

  /** Puts a call in a queue's waiting list and arms its max-wait timer. */
  private addWaiting(q: Queue, call: QueuedCall, enteredAt: number, front: boolean): void {
    if (front) q.pushFront(call, enteredAt);
    else q.push(call, enteredAt);
    this.armOverflow(q, call, enteredAt);
  }

  private armOverflow(q: Queue, call: QueuedCall, enteredAt: number): void {
    const maxWaitS = q.config.maxWaitS;
    if (maxWaitS === undefined || !q.config.overflow) return;
    const due = Math.max(0, enteredAt + maxWaitS * 1000 - this.clock.now());
    // The timer only wakes the ACD; dispatch() moves whatever is overdue.
    const timer = this.clock.setTimeout(() => {
      this.overflowTimers.delete(call.callId);
      this.onTimer(() => undefined);
      // Node may fire a timer a millisecond before Date.now() reaches its deadline; a call that
      // was not overdue yet would otherwise wait in its queue forever (seen in routing.test).
      const entered = q.enteredAt(call.callId);
      if (!this.closed && entered !== undefined && !this.overflowTimers.has(call.callId)) this.armOverflow(q, call, entered);
    }, due);
    this.overflowTimers.set(call.callId, timer);
  }

  /** Takes a call out of a queue's waiting list and disarms its max-wait timer. */
  private takeWaiting(q: Queue, callId: string): QueuedCall | undefined {
    const call = q.remove(callId);
    if (!call) return undefined;
    const t = this.overflowTimers.get(callId);
    if (t !== undefined) this.clock.clearTimeout(t);
    this.overflowTimers.delete(callId);
    return call;
  }

  /** Calls that have waited maxWaitS in their queue go to its overflow target. */
  private overflowDue(): void {
    const now = this.clock.now();
    for (const q of this.queueMap.values()) {
      const target = q.config.overflow;
      if (!target) continue;
      for (const call of q.overdue(now)) {
        this.takeWaiting(q, call.callId);
        if ('queue' in target) {
          const next = this.queueMap.get(target.queue) as Queue;
          // Already waited: accepted even above maxSize; queuedAt kept; maxWaitS of `next` counts from now.
          this.addWaiting(next, Object.freeze({ ...call, queue: next.name }), now, false);
          this.post('overflow', call, { queue: next.name }, 'max-wait');
        } else {
          this.post('overflow', call, { callback: true }, 'max-wait');
        }
      }
    }
  }

  /** `directed`: a transfer to this agent by name, outside the queue's strategy (round-robin order untouched). */
  private offer(agent: Agent, queue: Queue, call: QueuedCall, enteredAt: number, directed = false): void {
    const timeoutS = queue.config.ringTimeoutS;
    const timer = this.clock.setTimeout(() => this.onTimer(() => this.ringTimeout(agent, call.callId)), timeoutS * 1000);
    this.offers.set(call.callId, { call, agent, timer, enteredAt });
    if (!directed && (queue.config.strategy ?? 'longest-idle') === 'round-robin') this.rrLast.set(queue.name, agent.name);
    this.post('offer', agent.name, call, timeoutS);
    agent.transition('ringing', this.clock.now(), { callId: call.callId });
  }

  private ringTimeout(agent: Agent, callId: string): void {
    const offer = this.offers.get(callId);
    if (!offer || offer.agent !== agent) return;
    this.offers.delete(callId);
    this.putBack(offer);
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
    this.putBack(offer);
    this.post('ringCancelled', agent.name, offer.call, reason);
  }

  /** An offer that was not answered: the call goes back ahead of its equals in its queue. */
  private putBack(offer: Offer): void {
    this.putBackCall(offer.call, offer.enteredAt);
  }

  /**
   * A call back from an agent goes to the head of its queue; when reconfigure() removed that
   * queue meanwhile, to the queue chosen then (event overflow 'queue-removed'), else it is dropped.
   */
  private putBackCall(call: QueuedCall, enteredAt: number): void {
    const q = this.queueMap.get(call.queue);
    if (q) {
      this.addWaiting(q, call, enteredAt, true);
      return;
    }
    const home = this.removedQueueHome.get(call.queue);
    const target = home ? this.queueMap.get(home) : undefined;
    if (target) {
      this.addWaiting(target, Object.freeze({ ...call, queue: target.name }), this.clock.now(), true);
      this.post('overflow', call, { queue: target.name }, 'queue-removed');
    } else this.post('dropped', call, 'queue-removed');
  }

  /** A removed agent leaves: offline (reason `removed`), out of every list, event agentRemoved. */
  private retire(agent: Agent, when: 'now' | 'after-call'): void {
    this.retiring.delete(agent);
    this.pendingLogout.delete(agent);
    this.stopWrapUp(agent);
    if (agent.state === 'ringing') this.requeueOffer(agent, 'agent-logout');
    // Rung for a consult: that ring stops (the call stays with the first agent).
    const consult = this.consulted.get(agent);
    if (consult) {
      this.clock.clearTimeout(consult.timer);
      this.consulted.delete(agent);
    }
    if (agent.state !== 'offline') agent.transition('offline', this.clock.now(), { reason: 'removed' });
    agent.removeAllListeners('state');
    this.agentMap.delete(agent.name);
    this.removedNames.add(agent.name);
    for (const [q, last] of this.rrLast) if (last === agent.name) this.rrLast.delete(q);
    this.post('agentRemoved', agent.name, when);
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
