import { randomUUID } from 'node:crypto';
import type { DeskCall } from '../calls/contract';
import type { Config } from '../config/schema';
import type { Logger } from '../logging';
import type { CallbackRecord, CallbackStore } from './callback-store';

export interface CallbackRequest {
  number: string;
  name: string | null;
  queue: string;
  /** The caller's original time in the queue (ms): the callback keeps that place. */
  queuedAt: number;
  originCallId: string | null;
}

/**
 * Owns queued callbacks: records each request, puts it into the ACD as a call with the caller's
 * original place, retries a callback that did not reach the caller, and restores every owed
 * callback after a restart.
 */
export class CallbackScheduler {
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly live = new Map<string, DeskCall>();
  private closed = false;
  readonly trunk: string | undefined;

  constructor(
    private readonly deps: {
      config: Config;
      store: CallbackStore;
      enqueue(call: DeskCall, queue: string, queuedAt: number): void;
      makeCall(record: CallbackRecord): DeskCall;
      log: Logger;
    },
  ) {
    const c = deps.config;
    this.trunk = c.callbacks.trunk ?? c.trunks.find((t) => t.outbound)?.name;
  }

  /** Callbacks need a trunk that can place outbound calls. */
  get enabled(): boolean {
    return this.trunk !== undefined;
  }

  get key(): string {
    return this.deps.config.callbacks.key;
  }

  async request(req: CallbackRequest): Promise<CallbackRecord> {
    const record: CallbackRecord = {
      id: randomUUID(),
      number: req.number,
      callerName: req.name,
      queue: req.queue,
      originCallId: req.originCallId,
      queuedAt: new Date(req.queuedAt).toISOString(),
      createdAt: new Date().toISOString(),
      state: 'pending',
      attempts: 0,
      lastError: null,
      agent: null,
      completedAt: null,
    };
    await this.deps.store.create(record);
    this.deps.log.info({ callbackId: record.id, number: record.number, queue: record.queue }, 'callback requested');
    this.schedule(record);
    return record;
  }

  /** Puts every callback still owed (e.g. before a restart) back into its queue. */
  async restore(): Promise<number> {
    const owed = await this.deps.store.outstanding();
    for (const record of owed) {
      record.state = 'pending';
      await this.deps.store.update(record.id, { state: 'pending' });
      this.schedule(record);
    }
    if (owed.length) this.deps.log.info({ callbacks: owed.length }, 'restored owed callbacks');
    return owed.length;
  }

  /** Ends live callbacks (they stay owed) and stops retries. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    await Promise.all([...this.live.values()].map((c) => c.close('shutdown')));
  }

  private schedule(record: CallbackRecord): void {
    if (this.closed) return;
    const call = this.deps.makeCall(record);
    this.live.set(record.id, call);
    call.once('closed', (cause) => {
      this.live.delete(record.id);
      void this.afterAttempt(record, cause);
    });
    this.deps.enqueue(call, record.queue, Date.parse(record.queuedAt));
  }

  private async afterAttempt(record: CallbackRecord, cause: string): Promise<void> {
    if (this.closed || cause === 'shutdown') return;
    const now = await this.deps.store.get(record.id);
    if (!now || now.state === 'done') return;
    if (now.attempts >= this.deps.config.callbacks.maxAttempts) {
      await this.deps.store.update(record.id, { state: 'failed', lastError: `gave up after ${now.attempts} attempts (${cause})` });
      this.deps.log.warn({ callbackId: record.id, attempts: now.attempts, cause }, 'callback failed for good');
      return;
    }
    await this.deps.store.update(record.id, { state: 'pending' });
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.schedule(now);
    }, this.deps.config.callbacks.retryAfterS * 1000);
    this.retryTimers.add(timer);
  }
}
