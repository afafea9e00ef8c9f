export interface FailureGuardOptions {
  /** Failures allowed within `windowMs` before the key is blocked. */
  maxFailures: number;
  windowMs: number;
  /** First block; each further block of the same key doubles it, up to `maxBlockMs`. */
  blockMs: number;
  maxBlockMs: number;
  /** Keys tracked at once. When full, the oldest entry is dropped (LRU by Map order). */
  maxKeys?: number;
  now?: () => number;
}

interface Entry {
  windowStart: number;
  failures: number;
  blockedUntil: number;
  /** Blocks so far: the next one lasts blockMs × 2^strikes. */
  strikes: number;
}

/**
 * Failure counting with growing temporary blocks, per key (a source address, an agent name, a
 * trunk). The caller asks `blockedFor(key)` before doing any costly work (hashing a password,
 * checking a digest), and reports the outcome with `fail` or `succeed`: an attempt is counted
 * before anything expensive runs, so parallel guesses cannot all slip through one check.
 *
 * Pure bookkeeping with an injected clock; it logs nothing and holds no timer.
 */
export class FailureGuard {
  private readonly entries = new Map<string, Entry>();
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(private readonly opts: FailureGuardOptions) {
    this.maxKeys = opts.maxKeys ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Milliseconds the key stays blocked (0 when it may try). */
  blockedFor(key: string): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    const left = e.blockedUntil - this.now();
    return left > 0 ? left : 0;
  }

  /**
   * Counts one failed (or not yet judged) attempt. Returns the block that now applies, in ms:
   * 0 while the key is still under its allowance.
   */
  fail(key: string): number {
    const now = this.now();
    let e = this.entries.get(key);
    if (e) {
      this.entries.delete(key); // re-insert: Map order is the LRU order
    } else {
      if (this.entries.size >= this.maxKeys) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
      e = { windowStart: now, failures: 0, blockedUntil: 0, strikes: 0 };
    }
    this.entries.set(key, e);
    if (now - e.windowStart >= this.opts.windowMs) {
      e.windowStart = now;
      e.failures = 0;
    }
    e.failures++;
    if (e.failures >= this.opts.maxFailures) {
      const block = Math.min(this.opts.maxBlockMs, this.opts.blockMs * 2 ** e.strikes);
      e.blockedUntil = now + block;
      e.strikes = Math.min(e.strikes + 1, 30);
      e.failures = 0;
      e.windowStart = now;
      return block;
    }
    return e.blockedUntil > now ? e.blockedUntil - now : 0;
  }

  /** Takes back one attempt counted by `fail` before the outcome was known. */
  refund(key: string): void {
    const e = this.entries.get(key);
    if (e && e.failures > 0) e.failures--;
  }

  /** A success clears the key's failures and strikes. */
  succeed(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
