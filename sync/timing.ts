/** Reconnect backoff: capped exponential with jitter. */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  factor: number;
  /** 0: no jitter; 1: full jitter (delay anywhere in [0, cap]). */
  jitter: number;
  /** A connection that stayed up this long resets the attempt count; a kick sooner keeps escalating. */
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 1000, maxMs: 60_000, factor: 2, jitter: 0.5, stableMs: 30_000 };

export function backoffDelay(attempt: number, o: BackoffOptions, rand: () => number = Math.random): number {
  const cap = Math.min(o.maxMs, o.minMs * o.factor ** Math.min(Math.max(attempt, 0), 64));
  return Math.round(cap * (1 - o.jitter) + cap * o.jitter * rand());
}

/** Token bucket pacing the backlog drain; `now` in milliseconds. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerS: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.ratePerS) / 1000);
    this.last = t;
  }

  /** Takes up to `max` whole tokens and returns how many it took. */
  take(max: number): number {
    this.refill();
    const n = Math.max(0, Math.min(max, Math.floor(this.tokens)));
    this.tokens -= n;
    return n;
  }

  /** Milliseconds until one whole token is available. */
  msUntilNext(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.ratePerS);
  }
}
