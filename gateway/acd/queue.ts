import type { Clock } from './clock';
import type { QueueConfig } from './config';

/** A caller waiting in (or offered from) a queue. */
export interface QueuedCall {
  readonly callId: string;
  /** Caller number (From user) and display name as the PBX sent them. */
  readonly caller: string;
  readonly callerName: string | null;
  readonly queue: string;
  /** ms epoch when the caller entered the queue; kept when a call comes back after RONA. */
  readonly queuedAt: number;
}

/** Waiting calls of one queue, FIFO; pushFront puts a call back at the head (after RONA). */
export class Queue {
  private items: QueuedCall[] = [];

  constructor(
    readonly config: Readonly<QueueConfig>,
    private readonly clock: Pick<Clock, 'now'>,
  ) {}

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
    for (const c of this.items) if (c.queuedAt < oldest) oldest = c.queuedAt;
    return Math.max(0, Math.floor((this.clock.now() - oldest) / 1000));
  }

  push(call: QueuedCall): void {
    this.items.push(call);
  }

  pushFront(call: QueuedCall): void {
    this.items.unshift(call);
  }

  peek(): QueuedCall | undefined {
    return this.items[0];
  }

  shift(): QueuedCall | undefined {
    return this.items.shift();
  }

  has(callId: string): boolean {
    return this.items.some((c) => c.callId === callId);
  }

  remove(callId: string): QueuedCall | undefined {
    const i = this.items.findIndex((c) => c.callId === callId);
    if (i < 0) return undefined;
    return this.items.splice(i, 1)[0];
  }

  /** Waiting calls, head first (a copy). */
  calls(): QueuedCall[] {
    return [...this.items];
  }
}
