import type { Logger } from './logging';

export interface LogLimiterOptions {
  /** Lines logged in full per key and interval before the rest are only counted. */
  burst: number;
  /** Length of an interval; at its end one summary line reports what was suppressed. */
  intervalMs: number;
  /** Distinct keys tracked at once; further keys share one overflow bucket (an attacker picks keys). */
  maxKeys?: number;
  now?: () => number;
}

interface Bucket {
  windowStart: number;
  logged: number;
  suppressed: number;
  /** The last suppressed line's fields, so the summary says what kind of thing was dropped. */
  sample: Record<string, unknown> | undefined;
}

const OVERFLOW_KEY = '\u0000overflow';

/**
 * Logging under attack: the first `burst` lines per key and interval go out as they are, the rest
 * are counted and reported as one summary line when the key's interval ends. A flood of rejected
 * packets therefore costs a counter increment, not a JSON line each. Metrics count everything;
 * this only decides what reaches the log.
 *
 * Summaries are emitted lazily (on the next line for that key) and by `flush()`, which the owner
 * calls from a timer it already has or on close; the limiter itself holds no timer.
 */
export class LogLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(
    private readonly log: Logger,
    private readonly opts: LogLimiterOptions,
  ) {
    this.maxKeys = opts.maxKeys ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    this.write('warn', key, fields, msg);
  }

  info(key: string, fields: Record<string, unknown>, msg: string): void {
    this.write('info', key, fields, msg);
  }

  /** Writes the summary of every bucket whose interval has ended, and forgets idle keys. */
  flush(force = false): void {
    const now = this.now();
    for (const [key, b] of this.buckets) {
      if (!force && now - b.windowStart < this.opts.intervalMs) continue;
      this.summarise(key, b);
      this.buckets.delete(key);
    }
  }

  private write(level: 'warn' | 'info', key: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.now();
    let k = key;
    let b = this.buckets.get(k);
    if (!b && this.buckets.size >= this.maxKeys) {
      k = OVERFLOW_KEY;
      b = this.buckets.get(k);
    }
    if (b && now - b.windowStart >= this.opts.intervalMs) {
      this.summarise(k, b);
      b = undefined;
    }
    if (!b) {
      b = { windowStart: now, logged: 0, suppressed: 0, sample: undefined };
      this.buckets.set(k, b);
    }
    if (b.logged < this.opts.burst) {
      b.logged++;
      this.log[level](fields, msg);
      return;
    }
    b.suppressed++;
    b.sample = fields;
  }

  private summarise(key: string, b: Bucket): void {
    if (b.suppressed === 0) return;
    this.log.warn(
      { ...b.sample, suppressed: b.suppressed, intervalMs: this.now() - b.windowStart, limiterKey: key === OVERFLOW_KEY ? 'overflow' : key },
      `${b.suppressed} similar log lines suppressed`,
    );
  }
}
