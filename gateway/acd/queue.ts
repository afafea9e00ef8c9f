import type { Clock } from './clock';
import type { QueueConfig } from './config';

/** A caller waiting in (or offered from) a queue. */
export interface QueuedCall {
  readonly callId: string;
  /** Caller number (From user) and display name as the PBX sent them. */
  readonly caller: string;
  readonly callerName: string | null;
  readonly queue: string;
  /**
   * ms epoch when the caller entered the ACD; kept when a call comes back after RONA and when it
   * overflows to another queue (service level and aging count from here).
   */
  readonly queuedAt: number;
  /** Base priority (intent priority + VIP boost; 0 by default). Higher is served first. */
  readonly priority: number;
  /** The intent that routed the call here, when routing knows it. */
  readonly intent: string | null;
}

interface Entry {
  call: QueuedCall;
  /** ms epoch when the call entered this queue (maxWaitS counts from here, not from queuedAt). */
  enteredAt: number;
  /** Insertion order: the last tie-break; pushFront uses decreasing negative numbers. */
  seq: number;
}

/**
 * Waiting calls of one queue. The next call is the one with the highest effective priority —
 * `priority + agingPerMinute × minutes waited since queuedAt` — then the longest waiting (earliest
 * queuedAt), then the earliest put in (pushFront puts a call ahead of its equals: after RONA).
 * With every priority equal and no aging this is FIFO.
 */
export class Queue {
  private items: Entry[] = [];
  private seqBack = 0;
  private seqFront = 0;

  /** A paused queue keeps its callers waiting (and overflowing) but offers none to agents. */
  paused: { reason: string; since: number } | null = null;

  constructor(
    private current: Readonly<QueueConfig>,
    private readonly clock: Pick<Clock, 'now'>,
  ) {}

  get config(): Readonly<QueueConfig> {
    return this.current;
  }

  /** New settings from a config push; waiting calls stay, in their order. */
  reconfigure(config: Readonly<QueueConfig>): void {
    if (config.name !== this.current.name) throw new RangeError(`queue "${this.current.name}" cannot be renamed`);
    this.current = config;
  }

  get name(): string {
    return this.config.name;
  }

  get size(): number {
    return this.items.length;
  }

  /** Whole seconds the longest-waiting caller has waited; 0 when empty. */
  get longestWaitS(): number {
    if (this.items.length === 0) return 0;
    let oldest = Number.POSITIVE_INFINITY;
    for (const e of this.items) if (e.call.queuedAt < oldest) oldest = e.call.queuedAt;
    return Math.max(0, Math.floor((this.clock.now() - oldest) / 1000));
  }

  /** True when a new call may join (maxSize counts waiting calls only). */
  get hasRoom(): boolean {
    return this.config.maxSize === undefined || this.items.length < this.config.maxSize;
  }

  /** `priority + agingPerMinute × minutes since queuedAt` at `now` (default: the clock's now). */
  effectivePriority(call: QueuedCall, now = this.clock.now()): number {
    const aging = this.config.agingPerMinute ?? 0;
    return call.priority + (aging > 0 ? (aging * Math.max(0, now - call.queuedAt)) / 60_000 : 0);
  }

  push(call: QueuedCall, enteredAt = this.clock.now()): void {
    this.items.push({ call, enteredAt, seq: ++this.seqBack });
  }

  /** Puts a call back ahead of its equals (after RONA / a declined offer); keeps `enteredAt` if given. */
  pushFront(call: QueuedCall, enteredAt = this.clock.now()): void {
    this.items.push({ call, enteredAt, seq: --this.seqFront });
  }

  /** The next call to offer. */
  peek(): QueuedCall | undefined {
    return this.best()?.call;
  }

  /** Takes the next call to offer. */
  shift(): QueuedCall | undefined {
    const e = this.best();
    if (!e) return undefined;
    this.items.splice(this.items.indexOf(e), 1);
    return e.call;
  }

  has(callId: string): boolean {
    return this.items.some((e) => e.call.callId === callId);
  }

  remove(callId: string): QueuedCall | undefined {
    const i = this.items.findIndex((e) => e.call.callId === callId);
    if (i < 0) return undefined;
    return this.items.splice(i, 1)[0].call;
  }

  /** When the call entered this queue (ms epoch), or undefined if it is not waiting here. */
  enteredAt(callId: string): number | undefined {
    return this.items.find((e) => e.call.callId === callId)?.enteredAt;
  }

  /** Waiting calls whose time in this queue has reached maxWaitS at `now`, longest waiting first. */
  overdue(now = this.clock.now()): QueuedCall[] {
    const maxWaitS = this.config.maxWaitS;
    if (maxWaitS === undefined || !this.config.overflow) return [];
    return this.items
      .filter((e) => now - e.enteredAt >= maxWaitS * 1000)
      .sort((a, b) => a.enteredAt - b.enteredAt || a.seq - b.seq)
      .map((e) => e.call);
  }

  /** Waiting calls in the order they would be offered now (a copy). */
  calls(): QueuedCall[] {
    const now = this.clock.now();
    return [...this.items].sort((a, b) => this.compare(a, b, now)).map((e) => e.call);
  }

  private best(): Entry | undefined {
    const now = this.clock.now();
    let best: Entry | undefined;
    for (const e of this.items) if (!best || this.compare(e, best, now) < 0) best = e;
    return best;
  }

  /** Negative when `a` goes before `b`. */
  private compare(a: Entry, b: Entry, now: number): number {
    const pa = this.effectivePriority(a.call, now);
    const pb = this.effectivePriority(b.call, now);
    if (pa !== pb) return pb - pa;
    if (a.call.queuedAt !== b.call.queuedAt) return a.call.queuedAt - b.call.queuedAt;
    return a.seq - b.seq;
  }
}
