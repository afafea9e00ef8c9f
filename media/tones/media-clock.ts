type Tick = () => void;

export interface MediaClockOptions {
  /** Frame period; 20 ms matches the ptime we answer with. */
  frameMs?: number;
  /** Frames the loop may fall behind before it resynchronises instead of catching up. */
  maxLagFrames?: number;
  /** A subscriber that throws is reported here; it must not stop the clock for every other call. */
  onError?: (err: unknown) => void;
}

/**
 * One shared ticker for every call: N timers firing 50×/s each would wake the event loop N×50
 * times a second, one timer does it 50 times. Deadlines are start + n × frame on the monotonic
 * clock, so setTimeout's lateness never accumulates into drift.
 */
export class MediaClock {
  private subscribers: Tick[] = [];
  private timer: NodeJS.Timeout | null = null;
  private nextDeadline = 0n;
  private readonly frameNs: bigint;
  private readonly maxLagNs: bigint;
  private readonly onError?: (err: unknown) => void;
  private tickCount = 0;
  private resyncCount = 0;

  constructor(opts: MediaClockOptions = {}) {
    const frameMs = opts.frameMs ?? 20;
    this.frameNs = BigInt(Math.round(frameMs * 1e6));
    this.maxLagNs = this.frameNs * BigInt(opts.maxLagFrames ?? 5);
    this.onError = opts.onError;
  }

  /** Returns the unsubscribe function; calling it twice is harmless. */
  subscribe(fn: Tick): () => void {
    // Copy-on-write: a subscriber may (un)subscribe from inside a tick without upsetting iteration.
    this.subscribers = [...this.subscribers, fn];
    if (this.timer === null) this.start();
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const i = this.subscribers.indexOf(fn);
      if (i >= 0) this.subscribers = this.subscribers.filter((_, j) => j !== i);
      if (this.subscribers.length === 0) this.stop();
    };
  }

  /** Ticks delivered since construction (each tick calls every subscriber once). */
  get ticks(): number {
    return this.tickCount;
  }

  /** Times the loop was so late that it skipped frames instead of sending a burst. */
  get resyncs(): number {
    return this.resyncCount;
  }

  get running(): boolean {
    return this.timer !== null;
  }

  private start(): void {
    this.nextDeadline = process.hrtime.bigint() + this.frameNs;
    this.schedule();
  }

  private stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    const waitNs = this.nextDeadline - process.hrtime.bigint();
    const waitMs = waitNs > 0n ? Number(waitNs) / 1e6 : 0;
    this.timer = setTimeout(this.onTimer, waitMs);
    // Live calls keep the process up through their sockets; the clock alone should not.
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    const now = process.hrtime.bigint();
    if (now - this.nextDeadline > this.maxLagNs) {
      // A long GC or blocked loop: bursting the missed frames would only overflow jitter buffers.
      this.resyncCount++;
      this.nextDeadline = now;
    }
    while (this.nextDeadline <= now && this.subscribers.length > 0) {
      this.nextDeadline += this.frameNs;
      this.tickCount++;
      const subs = this.subscribers;
      for (let i = 0; i < subs.length; i++) {
        try {
          subs[i]();
        } catch (err) {
          this.onError?.(err);
        }
      }
    }
    if (this.subscribers.length > 0) this.schedule();
    else this.timer = null;
  };
}
