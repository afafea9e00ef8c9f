import { EventEmitter } from 'node:events';
import { SerialPort, ReadlineParser } from 'serialport';
import type { Clock, TimerHandle } from '../clock';
import { HwError, errorMessage } from '../errors';
import type { HwLog } from '../log';

export interface SerialLinkOptions {
  path: string;
  baud: number;
  clock: Clock;
  log: HwLog;
  /** Emit 'line' events (LF-terminated, a trailing CR dropped) as well as 'data'. */
  lines?: boolean;
  /** Bytes without a line end that count as garbage (lines mode). */
  maxLineBytes?: number;
  backoffMinMs: number;
  backoffMaxMs: number;
}

export interface SerialLinkEvents {
  open: [];
  data: [Buffer];
  line: [string];
  /** Something went wrong; the link has closed the port (if open) and retries in retryInMs. */
  fault: [HwError, number];
}

/**
 * One serial device, kept open: opens a path directly (SerialPort.list() needs udev, which an
 * appliance may lack), reopens with exponential backoff after an open failure, an unplug
 * (read error / EOF: the port closes with `disconnected`) or when the user calls reopen()
 * (garbage, silence). It never throws into the caller and never crashes the process: every
 * port error ends up as a 'fault' event.
 */
export class SerialLink extends EventEmitter<SerialLinkEvents> {
  private port: SerialPort | undefined;
  private retry: TimerHandle | undefined;
  private backoff: number;
  private pendingBytes = 0;
  private closed = false;
  private attempts = 0;
  /** Settles when an open() in flight has finished (close() waits for it, so no port outlives close()). */
  private opening: Promise<void> = Promise.resolve();

  constructor(private readonly opts: SerialLinkOptions) {
    super();
    this.backoff = opts.backoffMinMs;
  }

  get isOpen(): boolean {
    return !!this.port?.isOpen;
  }

  get path(): string {
    return this.opts.path;
  }

  start(): void {
    if (!this.closed && !this.port && !this.retry) this.open();
  }

  /** The device behaves: the next fault starts again at the shortest backoff. */
  markHealthy(): void {
    this.backoff = this.opts.backoffMinMs;
    this.attempts = 0;
  }

  write(data: Buffer | string): void {
    const port = this.port;
    if (!port?.isOpen) return;
    port.write(data, (err) => {
      if (err && port === this.port) this.fail(new HwError('HW_SERIAL_WRITE_FAILED', `write to ${this.opts.path} failed: ${errorMessage(err)}`));
    });
  }

  /** Drops the port and opens it again after the backoff (garbage, silence, protocol errors). */
  reopen(reason: HwError): void {
    this.fail(reason);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.retry?.cancel();
    this.retry = undefined;
    await this.dropPort();
    await this.opening;
  }

  private open(): void {
    this.retry = undefined;
    this.attempts++;
    const port = new SerialPort({ path: this.opts.path, baudRate: this.opts.baud, autoOpen: false });
    this.port = port;
    this.pendingBytes = 0;
    // Errors after open arrive as 'error' (write) or 'close' with a DisconnectedError (read/EOF).
    port.on('error', (err) => {
      if (port === this.port) this.fail(new HwError('HW_SERIAL_DISCONNECTED', `${this.opts.path}: ${errorMessage(err)}`));
    });
    port.on('close', (err: (Error & { disconnected?: boolean }) | null) => {
      if (port !== this.port) return;
      this.fail(new HwError('HW_SERIAL_DISCONNECTED', `${this.opts.path} closed${err ? `: ${err.message}` : ''}`, { disconnected: !!err?.disconnected }));
    });
    port.on('end', () => {
      if (port === this.port) this.fail(new HwError('HW_SERIAL_DISCONNECTED', `${this.opts.path}: end of stream`));
    });
    let opened!: () => void;
    this.opening = new Promise((resolve) => (opened = resolve));
    port.open((err) => {
      if (port !== this.port) {
        if (!err) port.close(() => opened());
        else opened();
        return;
      }
      opened();
      if (err) {
        this.fail(new HwError('HW_SERIAL_OPEN_FAILED', `cannot open ${this.opts.path}: ${errorMessage(err)}`, { attempts: this.attempts }));
        return;
      }
      if (this.closed) {
        void this.dropPort();
        return;
      }
      port.on('data', (chunk: Buffer) => {
        if (port !== this.port) return;
        this.emit('data', chunk);
        if (!this.opts.lines) return;
        const nl = chunk.lastIndexOf(0x0a);
        this.pendingBytes = nl < 0 ? this.pendingBytes + chunk.length : chunk.length - nl - 1;
        const max = this.opts.maxLineBytes ?? 512;
        if (this.pendingBytes > max) this.fail(new HwError('HW_SERIAL_GARBAGE', `${this.opts.path}: more than ${max} bytes without a line end`));
      });
      if (this.opts.lines) {
        const parser = port.pipe(new ReadlineParser({ delimiter: '\n', encoding: 'latin1' }));
        parser.on('data', (line: string) => {
          if (port === this.port) this.emit('line', line.endsWith('\r') ? line.slice(0, -1) : line);
        });
      }
      this.opts.log.info({ path: this.opts.path, baud: this.opts.baud }, 'serial device open');
      this.emit('open');
    });
  }

  private fail(err: HwError): void {
    if (this.closed) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.opts.backoffMaxMs, this.backoff * 2);
    void this.dropPort();
    this.retry?.cancel();
    this.retry = this.opts.clock.after(delay, () => this.open());
    this.opts.log.warn({ path: this.opts.path, code: err.code, err: err.message, retryInMs: delay }, 'serial device fault');
    this.emit('fault', err, delay);
  }

  private dropPort(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    if (!port) return Promise.resolve();
    port.removeAllListeners('data');
    port.unpipe();
    return new Promise((resolve) => {
      if (!port.isOpen) {
        // An open still in flight resolves in open()'s callback, which closes it (port !== this.port).
        resolve();
        return;
      }
      port.close(() => resolve());
    });
  }
}
