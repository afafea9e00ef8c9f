import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Clock, TimerHandle } from '../clock';
import { HwError, errorMessage } from '../errors';
import type { HwLog } from '../log';
import { parseDahdiSpan } from './dahdi-parser';
import type { TrunkDriver, TrunkDriverEvents } from './types';

export interface DahdiDriverOptions {
  /** /proc/dahdi or CCEDGE_DAHDI_DIR. */
  dir: string;
  /** Span numbers to read, or 'auto': every numeric file in dir. */
  spans: number[] | 'auto';
  pollMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  clock: Clock;
  log: HwLog;
}

/**
 * Polls DAHDI span status files (`<dir>/<span>`) with async reads, one poll at a time. A missing
 * dir (modules not loaded yet) is a fault for every span, retried with backoff; a missing or
 * unparseable span file is a fault for that span.
 */
export class DahdiDriver extends EventEmitter<TrunkDriverEvents> implements TrunkDriver {
  readonly kind = 'dahdi' as const;
  private timer: TimerHandle | undefined;
  private closed = false;
  private polling: Promise<void> = Promise.resolve();
  private backoff: number;
  /** Fault code per span (and -1: the whole dir). A span clears only when it reads again. */
  private readonly faults = new Map<number, string>();
  private readonly seen = new Set<number>();

  constructor(private readonly opts: DahdiDriverOptions) {
    super();
    this.backoff = opts.backoffMinMs;
  }

  get device(): string {
    return this.opts.dir;
  }

  start(): void {
    if (this.closed || this.timer) return;
    this.schedule(0);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.polling;
  }

  /** One poll now (tests with a ManualClock call this through the clock). */
  private schedule(ms: number): void {
    this.timer = this.opts.clock.after(ms, () => {
      this.timer = undefined;
      this.polling = this.poll().then(
        (next) => {
          if (!this.closed) this.schedule(next);
        },
        (err: unknown) => {
          this.opts.log.error({ err: errorMessage(err) }, 'dahdi poll failed');
          if (!this.closed) this.schedule(this.opts.pollMs);
        },
      );
    });
  }

  private async poll(): Promise<number> {
    let spans: number[];
    try {
      const entries = await fsp.readdir(this.opts.dir);
      spans = this.opts.spans === 'auto' ? entries.filter((e) => /^\d+$/.test(e)).map(Number).sort((a, b) => a - b) : this.opts.spans;
    } catch (err) {
      if (this.closed) return this.opts.pollMs;
      const delay = this.backoff;
      this.backoff = Math.min(this.opts.backoffMaxMs, this.backoff * 2);
      if (this.faults.get(-1) !== 'HW_DAHDI_UNAVAILABLE') {
        this.faults.set(-1, 'HW_DAHDI_UNAVAILABLE');
        for (const s of this.opts.spans === 'auto' ? this.seen : this.opts.spans) this.faults.set(s, 'HW_DAHDI_UNAVAILABLE');
        const e = new HwError('HW_DAHDI_UNAVAILABLE', `DAHDI status dir ${this.opts.dir} unreadable: ${errorMessage(err)}`);
        this.opts.log.warn({ dir: this.opts.dir, err: e.message, retryInMs: delay }, 'DAHDI unavailable');
        this.emit('fault', e, undefined);
      }
      return delay;
    }
    this.backoff = this.opts.backoffMinMs;
    this.faults.delete(-1);
    for (const span of spans) {
      if (this.closed) break;
      let text: string;
      try {
        text = await fsp.readFile(path.join(this.opts.dir, String(span)), 'latin1');
      } catch (err) {
        this.spanFault(span, new HwError('HW_DAHDI_SPAN_MISSING', `DAHDI span ${span} status unreadable: ${errorMessage(err)}`));
        continue;
      }
      try {
        const report = parseDahdiSpan(text, span);
        this.seen.add(span);
        if (this.faults.delete(span)) this.emit('recovered', [span]);
        this.emit('report', report);
      } catch (err) {
        this.spanFault(span, err instanceof HwError ? err : new HwError('HW_DAHDI_PARSE', errorMessage(err)));
      }
    }
    return this.opts.pollMs;
  }

  private spanFault(span: number, err: HwError): void {
    if (this.closed || this.faults.get(span) === err.code) return;
    this.faults.set(span, err.code);
    this.opts.log.warn({ span, code: err.code, err: err.message }, 'DAHDI span fault');
    this.emit('fault', err, [span]);
  }
}
