import { EventEmitter } from 'node:events';
import type { AcdEvents, OverflowReason, OverflowTarget } from '../acd/acd';
import type { Clock } from '../acd/clock';
import type { QueuedCall } from '../acd/queue';
import type { AgentState } from '../acd/agent-state';
import type { Logger } from '../logging';
import type { KpiStore } from './kpi-store';
import type { Disposition, QueueEvent, QueueEventType } from './kpi';

/** The part of the Acd the recorder listens to (Acd itself fits). */
export interface AcdEventSource {
  on<K extends keyof AcdEvents>(event: K, listener: (...args: AcdEvents[K]) => void): unknown;
}

export interface KpiRecorderOptions {
  store: KpiStore;
  acd: AcdEventSource;
  clock?: Pick<Clock, 'now'>;
  /** The intent of a call when the ACD's QueuedCall does not carry one (`intent`). */
  intentOf?: (callId: string) => string | null | undefined;
  log?: Logger;
  /** How long after the call ended its agent may still give (or change) the disposition. Default 1 h. */
  dispositionWindowMs?: number;
}

export interface KpiRecorderEvents {
  /** A row was written (or is being written) to queue_events. */
  event: [event: QueueEvent];
  /** `agent`'s wrap-up after `callId` is over: their `ended` row of it now has wrapMs. */
  wrapped: [callId: string, wrapMs: number, agent: string];
  /** An agent's state changed (as the ACD reported it), for occupancy. */
  agentState: [agent: string, state: AgentState, at: number];
}

export type DispositionResult =
  | { ok: true; callId: string; disposition: Disposition }
  | { ok: false; code: 'WS_NO_SUCH_CALL' | 'WS_NOT_ALLOWED'; message: string };

interface OpenCall {
  queue: string;
  intent: string | null;
  /** When the call entered its current queue. */
  since: number;
  answeredAt: number | null;
  agent: string | null;
  holdMs: number;
  holdSince: number | null;
}

interface LastCall {
  callId: string;
  queue: string;
  intent: string | null;
  endedAt: number;
  /** Still in the wrap-up after this call. */
  wrapping: boolean;
}

/**
 * Turns ACD events (and the desk's hold/disposition calls) into `queue_events` rows. Writes are
 * queued on the database's write chain in event order and never block or throw into the ACD; a
 * failed write is logged. Every row is also emitted (`event`) for the live KPI service.
 */
export class KpiRecorder extends EventEmitter<KpiRecorderEvents> {
  private readonly clock: Pick<Clock, 'now'>;
  private readonly open = new Map<string, OpenCall>();
  private readonly last = new Map<string, LastCall>();
  private writes: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: KpiRecorderOptions) {
    super();
    this.clock = opts.clock ?? { now: () => Date.now() };
    const { acd } = opts;
    acd.on('queued', (call) => this.onQueued(call));
    acd.on('answered', (agent, call) => this.onAnswered(agent, call));
    acd.on('overflow', (call, target, reason) => this.onOverflow(call, target, reason));
    acd.on('abandoned', (call) => this.onAbandoned(call));
    acd.on('callEnded', (agent, call) => this.onCallEnded(agent, call));
    acd.on('transferred', (agent, call) => this.onTransferred(agent, call));
    acd.on('agentState', (agent, state, _reason, since) => this.onAgentState(agent, state, since));
  }

  /** Agent hold on or off (the desk calls this after Call.setHold). */
  hold(callId: string, on: boolean): void {
    const c = this.open.get(callId);
    if (!c || c.answeredAt === null) return;
    const now = this.clock.now();
    if (on && c.holdSince === null) c.holdSince = now;
    else if (!on && c.holdSince !== null) {
      c.holdMs += now - c.holdSince;
      c.holdSince = null;
    }
  }

  /** The intent of a call, when it is known only after the call was queued. */
  setIntent(callId: string, intent: string | null): void {
    const c = this.open.get(callId);
    if (c) c.intent = intent;
  }

  /**
   * The call left its queue unanswered (`overflowed` row): for `toQueue`, it waits there now (its
   * `offered` row there is written too); without, it left the ACD (e.g. the caller chose a
   * callback: call this before closing the call, so that is not counted as an abandon).
   * The ACD's `overflow` event is handled already.
   */
  overflowed(callId: string, toQueue?: string): void {
    const c = this.open.get(callId);
    if (!c || c.answeredAt !== null || c.queue === toQueue) return;
    const now = this.clock.now();
    void this.write({ type: 'overflowed', ts: now, callId, queue: c.queue, intent: c.intent, waitMs: now - c.since });
    if (toQueue === undefined) {
      this.open.delete(callId);
      return;
    }
    c.queue = toQueue;
    c.since = now;
    void this.write({ type: 'offered', ts: now, callId, queue: toQueue, intent: c.intent });
  }

  /**
   * The agent's disposition of a call it finished: accepted for the agent's latest ended call
   * within dispositionWindowMs (after a restart, looked up in the store). A second one replaces
   * the first (the latest row wins).
   */
  async disposition(agent: string, callId: string, disposition: Disposition): Promise<DispositionResult> {
    const now = this.clock.now();
    const windowMs = this.opts.dispositionWindowMs ?? 3_600_000;
    let last: Pick<LastCall, 'callId' | 'queue' | 'intent' | 'endedAt'> | undefined = this.last.get(agent);
    if (!last) {
      await this.flush();
      const row = await this.opts.store.lastEnded(agent);
      if (row) last = { callId: row.callId, queue: row.queue, intent: row.intent, endedAt: row.ts };
    }
    if (!last || last.callId !== callId) {
      if (this.open.get(callId)?.agent === agent) return { ok: false, code: 'WS_NOT_ALLOWED', message: 'give the disposition after the call has ended' };
      return { ok: false, code: 'WS_NO_SUCH_CALL', message: 'a disposition is for the last call you finished' };
    }
    if (now - last.endedAt > windowMs) return { ok: false, code: 'WS_NOT_ALLOWED', message: 'too late to give a disposition for this call' };
    await this.write({ type: 'disposition', ts: now, callId, queue: last.queue, intent: last.intent, agent, disposition });
    return { ok: true, callId, disposition };
  }

  /** Resolves when every write queued so far has finished. */
  async flush(): Promise<void> {
    await this.writes;
  }

  // ---- ACD events ----

  private intent(call: QueuedCall): string | null {
    return call.intent ?? this.opts.intentOf?.(call.callId) ?? null;
  }

  /**
   * max-wait: the call moved on from call.queue (to target.queue, or out of the ACD for a
   * callback). full: call.queue refused it on arrival; it was offered there and overflowed at once
   * (the `queued` event for the queue it landed in follows).
   */
  private onOverflow(call: QueuedCall, target: OverflowTarget, reason: OverflowReason): void {
    const toQueue = 'queue' in target ? target.queue : undefined;
    if (reason === 'full' && !this.open.has(call.callId)) {
      const now = this.clock.now();
      const intent = this.intent(call);
      void this.write({ type: 'offered', ts: now, callId: call.callId, queue: call.queue, intent });
      void this.write({ type: 'overflowed', ts: now, callId: call.callId, queue: call.queue, intent, waitMs: 0 });
      return;
    }
    this.overflowed(call.callId, toQueue);
  }

  private onQueued(call: QueuedCall): void {
    const now = this.clock.now();
    const prev = this.open.get(call.callId);
    if (prev && prev.answeredAt === null && prev.queue !== call.queue) {
      // Moved to another queue without an explicit overflowed(): it overflowed.
      void this.write({ type: 'overflowed', ts: now, callId: call.callId, queue: prev.queue, intent: prev.intent, waitMs: now - prev.since });
    } else if (prev && prev.queue === call.queue) {
      return; // overflowed(callId, toQueue) already wrote the offered row
    }
    const intent = this.intent(call) ?? prev?.intent ?? null;
    const since = prev ? now : Math.min(call.queuedAt, now);
    this.open.set(call.callId, { queue: call.queue, intent, since, answeredAt: null, agent: null, holdMs: 0, holdSince: null });
    void this.write({ type: 'offered', ts: since, callId: call.callId, queue: call.queue, intent });
  }

  private onAnswered(agent: string, call: QueuedCall): void {
    const c = this.open.get(call.callId);
    if (!c) return;
    const now = this.clock.now();
    c.answeredAt = now;
    c.agent = agent;
    void this.write({ type: 'answered', ts: now, callId: call.callId, queue: c.queue, intent: c.intent, agent, waitMs: now - c.since });
  }

  private onAbandoned(call: QueuedCall): void {
    const c = this.open.get(call.callId);
    if (!c) return;
    this.open.delete(call.callId);
    const now = this.clock.now();
    void this.write({ type: 'abandoned', ts: now, callId: call.callId, queue: c.queue, intent: c.intent, waitMs: now - c.since });
  }

  private onCallEnded(agent: string, call: QueuedCall): void {
    const c = this.open.get(call.callId);
    if (!c || c.answeredAt === null) return;
    this.open.delete(call.callId);
    const now = this.clock.now();
    if (c.holdSince !== null) c.holdMs += now - c.holdSince;
    const holdMs = c.holdMs;
    const talkMs = Math.max(0, now - c.answeredAt - holdMs);
    this.last.set(agent, { callId: call.callId, queue: c.queue, intent: c.intent, endedAt: now, wrapping: true });
    void this.write({ type: 'ended', ts: now, callId: call.callId, queue: c.queue, intent: c.intent, agent, talkMs, holdMs, wrapMs: null });
  }

  /**
   * The transferring agent's `callEnded` came first (their `ended` row: handled by them). The call
   * is offered anew where it went — the target queue, or for a named agent its own queue — as a new
   * segment whose wait counts from now: the target's answer time is their own, not the caller's
   * whole wait (which queuedAt keeps for the ACD's ordering).
   */
  private onTransferred(agent: string, call: QueuedCall): void {
    const now = this.clock.now();
    const prev = this.open.get(call.callId);
    if (prev) return; // not ended by the first agent: cannot happen with the ACD, nothing to re-offer
    const ended = this.last.get(agent);
    const intent = this.intent(call) ?? (ended?.callId === call.callId ? ended.intent : null);
    this.open.set(call.callId, { queue: call.queue, intent, since: now, answeredAt: null, agent: null, holdMs: 0, holdSince: null });
    void this.write({ type: 'offered', ts: now, callId: call.callId, queue: call.queue, intent });
  }

  private onAgentState(agent: string, state: AgentState, at: number): void {
    try {
      this.emit('agentState', agent, state, at);
    } catch (err) {
      this.opts.log?.error({ err }, 'an agent state listener failed');
    }
    const last = this.last.get(agent);
    if (!last?.wrapping || state === 'wrap-up') return;
    last.wrapping = false;
    const wrapMs = Math.max(0, at - last.endedAt);
    try {
      this.emit('wrapped', last.callId, wrapMs, agent);
    } catch (err) {
      this.opts.log?.error({ err }, 'a wrap-up listener failed');
    }
    void this.chain(() => this.opts.store.setWrap(last.callId, wrapMs, agent));
  }

  private write(e: Partial<QueueEvent> & { type: QueueEventType; ts: number; callId: string; queue: string; intent: string | null }): Promise<void> {
    const event: QueueEvent = { agent: null, waitMs: null, talkMs: null, holdMs: null, wrapMs: null, disposition: null, ...e };
    try {
      this.emit('event', event);
    } catch (err) {
      this.opts.log?.error({ err }, 'a queue event listener failed');
    }
    return this.chain(() => this.opts.store.insert(event));
  }

  /**
   * Queues a write after every earlier one. The returned promise rejects if this write fails (for
   * callers that report it); the chain itself logs the failure and goes on.
   */
  private chain(op: () => Promise<void>): Promise<void> {
    const run = this.writes.then(op);
    this.writes = run.catch((err: unknown) => this.opts.log?.error({ err, code: 'DB_FAILED' }, 'queue event write failed'));
    run.catch(() => undefined); // fire-and-forget callers: logged above, not an unhandled rejection
    return run;
  }
}
