export interface SemaphoreOptions {
  /** Jobs running at once. */
  concurrency: number;
  /** Jobs waiting for a slot; `tryRun` refuses when this many already wait. `run` is not bounded by it. */
  maxQueue: number;
}

/** `tryRun` found every slot taken and the wait queue full: the caller should answer "busy" at once. */
export class SemaphoreFullError extends Error {
  constructor() {
    super('semaphore queue full');
    this.name = 'SemaphoreFullError';
  }
}

/**
 * Bounded concurrency for costly work that shares a scarce resource. Password hashing (scrypt,
 * 16 MiB, ~50 ms) runs on libuv's thread pool, which sqlite3 uses too: unbounded, a burst of logins
 * takes every pool thread and the database (and with it SIP call setup) waits behind it. Through a
 * semaphore with concurrency 1, at most one pool thread hashes and at most `maxQueue` hashes wait;
 * anything beyond is refused at once (`tryRun`) instead of piling up in memory and latency.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** Highest number of jobs seen running at once (tests and metrics). */
  maxActiveSeen = 0;
  /** Jobs started so far. */
  started = 0;

  constructor(private readonly opts: SemaphoreOptions) {
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new RangeError('concurrency must be a whole number ≥ 1');
    if (!Number.isInteger(opts.maxQueue) || opts.maxQueue < 0) throw new RangeError('maxQueue must be a whole number ≥ 0');
  }

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `job` when a slot is free; rejects with SemaphoreFullError (without running it) when the queue is full. */
  tryRun<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.opts.concurrency && this.waiting.length >= this.opts.maxQueue) return Promise.reject(new SemaphoreFullError());
    return this.run(job);
  }

  /** Runs `job` when a slot is free, waiting as long as it takes: for trusted work (config reloads), never for requests. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.opts.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    // A slot is ours here: either taken above or handed over by release() without decrementing.
    this.started++;
    if (this.active > this.maxActiveSeen) this.maxActiveSeen = this.active;
    try {
      return await job();
    } finally {
      this.release();
    }
  }

  private release(): void {
    const next = this.waiting.shift();
    // Hand the slot straight to the next waiter: `active` stays the same, nobody can jump the queue.
    if (next) next();
    else this.active--;
  }
}
