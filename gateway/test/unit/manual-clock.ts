import type { Clock, Timer } from '../../acd/clock';

/** A clock for tests: time moves only when advance() is called, firing due timers in order. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Array<{ at: number; seq: number; fn: () => void; handle: Timer }> = [];

  constructor(start = Date.UTC(2025, 0, 1, 9, 0, 0)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const handle = { id: ++this.seq };
    this.timers.push({ at: this.t + Math.max(0, ms), seq: handle.id, fn, handle });
    return handle;
  }

  clearTimeout(t: Timer): void {
    this.timers = this.timers.filter((x) => x.handle !== t);
  }

  /** Timers not yet fired or cleared. */
  get pending(): number {
    return this.timers.length;
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}
