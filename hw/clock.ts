/**
 * Time source for everything in hw/ that waits: alarm hold-offs, polling, backoff, page refresh.
 * Production uses SYSTEM_CLOCK; tests pass a ManualClock and move time themselves.
 */
export interface TimerHandle {
  /** Cancels the timer; calling it twice is harmless. */
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** One-shot timer. Real timers are unref'd: hw/ never keeps the process alive by itself. */
  after(ms: number, fn: () => void): TimerHandle;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** A clock that moves only when told to (tests). Timers fire in due order inside advance(). */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { cancel: () => void this.timers.delete(id) };
  }

  /** Moves time forward by ms, firing every timer that falls due (including ones those timers set). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }

  /** Timers still pending (tests assert 0 after close()). */
  get pending(): number {
    return this.timers.size;
  }
}
