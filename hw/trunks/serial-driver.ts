import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../clock';
import { HwError } from '../errors';
import type { HwLog } from '../log';
import { SerialLink } from '../serial/serial-link';
import { MAX_LINE, parseDeviceLine } from './serial-protocol';
import type { TrunkDriver, TrunkDriverEvents } from './types';

export interface SerialDriverOptions {
  path: string;
  baud: number;
  /** Spans reported upward; SPAN lines for other spans are ignored. */
  spans: number[];
  pollMs: number;
  silenceMs: number;
  garbageLines: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  clock: Clock;
  log: HwLog;
}

/**
 * An E1 gateway/card with a serial management port speaking the ccedge E1 status protocol
 * (README.md beside this file). Asks `STATUS` every pollMs; the device also reports changes by itself.
 * Unplug, open failure, `garbageLines` unparseable lines in a row, or `silenceMs` without a valid line
 * are faults: the port is closed and reopened with backoff; the first valid line clears the fault.
 */
export class SerialDriver extends EventEmitter<TrunkDriverEvents> implements TrunkDriver {
  readonly kind = 'serial' as const;
  private readonly link: SerialLink;
  private pollTimer: TimerHandle | undefined;
  private silenceTimer: TimerHandle | undefined;
  private badLines = 0;
  private faulted: string | null = null;
  private closed = false;
  /** Counters for the snapshot/metrics: lines accepted and rejected. */
  readonly stats = { lines: 0, garbage: 0, faults: 0 };

  constructor(private readonly opts: SerialDriverOptions) {
    super();
    this.link = new SerialLink({
      path: opts.path,
      baud: opts.baud,
      clock: opts.clock,
      log: opts.log,
      lines: true,
      maxLineBytes: MAX_LINE * 2,
      backoffMinMs: opts.backoffMinMs,
      backoffMaxMs: opts.backoffMaxMs,
    });
    this.link.on('open', () => this.onOpen());
    this.link.on('line', (line) => this.onLine(line));
    this.link.on('fault', (err) => this.onLinkFault(err));
  }

  get device(): string {
    return this.opts.path;
  }

  start(): void {
    this.link.start();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopTimers();
    await this.link.close();
  }

  private onOpen(): void {
    this.badLines = 0;
    this.link.write('STATUS\r\n');
    this.armSilence();
    this.schedulePoll();
  }

  private schedulePoll(): void {
    this.pollTimer?.cancel();
    this.pollTimer = this.opts.clock.after(this.opts.pollMs, () => {
      this.pollTimer = undefined;
      if (this.closed || !this.link.isOpen) return;
      this.link.write('STATUS\r\n');
      this.schedulePoll();
    });
  }

  private armSilence(): void {
    this.silenceTimer?.cancel();
    this.silenceTimer = this.opts.clock.after(this.opts.silenceMs, () => {
      this.silenceTimer = undefined;
      if (this.closed) return;
      this.link.reopen(new HwError('HW_SERIAL_SILENT', `${this.opts.path}: no valid status line for ${this.opts.silenceMs} ms`));
    });
  }

  private onLine(line: string): void {
    if (this.closed) return;
    if (line.trim() === '') return;
    let parsed;
    try {
      parsed = parseDeviceLine(line);
    } catch (err) {
      this.stats.garbage++;
      this.badLines++;
      this.opts.log.debug({ path: this.opts.path, err: (err as Error).message }, 'unparseable line from E1 device');
      if (this.badLines >= this.opts.garbageLines) {
        this.badLines = 0;
        this.link.reopen(new HwError('HW_SERIAL_GARBAGE', `${this.opts.path}: ${this.opts.garbageLines} unparseable lines in a row (last: ${(err as Error).message})`));
      }
      return;
    }
    this.stats.lines++;
    this.badLines = 0;
    this.armSilence();
    this.link.markHealthy();
    if (this.faulted !== null) {
      this.faulted = null;
      this.opts.log.info({ path: this.opts.path }, 'E1 device reads again');
      this.emit('recovered', undefined);
    }
    if (parsed.kind === 'span') {
      if (this.opts.spans.includes(parsed.report.span)) this.emit('report', parsed.report);
    } else if (parsed.kind === 'hello') {
      this.opts.log.info({ path: this.opts.path, ...parsed.fields }, 'E1 device hello');
      this.link.write('STATUS\r\n');
    } else if (parsed.kind === 'err') {
      this.opts.log.warn({ path: this.opts.path, text: parsed.text }, 'E1 device reports an error');
    }
  }

  private onLinkFault(err: HwError): void {
    this.stopTimers();
    if (this.closed) return;
    this.stats.faults++;
    this.faulted = err.code;
    this.emit('fault', err, undefined);
  }

  private stopTimers(): void {
    this.pollTimer?.cancel();
    this.pollTimer = undefined;
    this.silenceTimer?.cancel();
    this.silenceTimer = undefined;
  }
}
