import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../clock';
import type { PanelConfig } from '../config';
import { HwError, errorMessage } from '../errors';
import type { HwLog } from '../log';
import { SerialLink } from '../serial/serial-link';
import type { CharacterDisplay } from './display';
import { MatrixOrbitalDisplay } from './matrix-orbital';
import { renderScreens, type PanelInfo } from './pages';

export interface FrontPanelEvents {
  /** The panel cannot be written (unplugged, open failed); retried with backoff. */
  fault: [HwError];
  /** Open again and redrawn. */
  recovered: [];
  /** Screen shown changed (index, count). */
  page: [number, number];
}

export interface FrontPanelOptions {
  config: PanelConfig;
  info: () => PanelInfo | Promise<PanelInfo>;
  clock: Clock;
  log: HwLog;
  display?: CharacterDisplay;
}

/**
 * A character display on a serial port: redraws every refreshMs (only rows that changed are sent),
 * any byte received from the panel (a key) shows the next screen, and an unplugged panel is a
 * fault retried with backoff.
 */
export class FrontPanel extends EventEmitter<FrontPanelEvents> {
  readonly display: CharacterDisplay;
  private readonly link: SerialLink;
  private shown: string[] = [];
  private screen = 0;
  private screens = 1;
  private timer: TimerHandle | undefined;
  private rotateAt = 0;
  private faulted: HwError | null = null;
  private closed = false;
  private drawing = false;
  private again = false;

  constructor(private readonly opts: FrontPanelOptions) {
    super();
    const [cols, rows] = opts.config.size.split('x').map(Number) as [number, number];
    this.display = opts.display ?? new MatrixOrbitalDisplay(cols, rows);
    this.link = new SerialLink({ path: opts.config.path, baud: opts.config.baud, clock: opts.clock, log: opts.log, backoffMinMs: opts.config.backoffMinMs, backoffMaxMs: opts.config.backoffMaxMs });
    this.link.on('open', () => {
      this.shown = [];
      this.link.write(this.display.init());
      this.link.markHealthy();
      if (this.faulted) {
        this.faulted = null;
        this.opts.log.info({ path: opts.config.path }, 'front panel back');
        this.emit('recovered');
      }
      void this.draw();
    });
    this.link.on('data', (chunk) => {
      // One screen per key byte (a burst of bytes from one press counts once per chunk).
      if (chunk.length) this.next();
    });
    this.link.on('fault', (err) => {
      this.shown = [];
      const was = this.faulted;
      this.faulted = err; // the latest reason; one event per outage, not per retry
      if (!was) this.emit('fault', err);
    });
  }

  get page(): { index: number; count: number } {
    return { index: this.screen, count: this.screens };
  }

  get fault(): HwError | null {
    return this.faulted;
  }

  start(): void {
    this.link.start();
    this.tick();
  }

  /** Shows the next screen now (also what a key press does). */
  next(): void {
    this.screen = (this.screen + 1) % Math.max(1, this.screens);
    this.rotateAt = this.opts.clock.now() + this.opts.config.rotateS * 1000;
    this.emit('page', this.screen, this.screens);
    void this.draw();
  }

  /** Jumps to the first screen (summary), e.g. when an alarm is raised. */
  home(): void {
    if (this.screen === 0) return;
    this.screen = 0;
    this.emit('page', 0, this.screens);
    void this.draw();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.link.close();
    this.removeAllListeners();
  }

  private tick(): void {
    this.timer = this.opts.clock.after(this.opts.config.refreshMs, () => {
      this.timer = undefined;
      if (this.closed) return;
      if (this.opts.config.rotateS > 0 && this.opts.clock.now() >= this.rotateAt) this.next();
      else void this.draw();
      this.tick();
    });
  }

  /** Renders the current screen and writes the rows that differ from what the display shows. */
  async draw(): Promise<void> {
    if (this.closed || !this.link.isOpen) return;
    if (this.drawing) {
      this.again = true;
      return;
    }
    this.drawing = true;
    try {
      let info: PanelInfo;
      try {
        info = await this.opts.info();
      } catch (err) {
        this.opts.log.warn({ err: errorMessage(err), code: 'HW_PANEL_INFO_FAILED' }, 'front panel info callback failed');
        return;
      }
      const screens = renderScreens(info, this.display.cols, this.display.rows);
      this.screens = screens.length;
      if (this.screen >= screens.length) this.screen = 0;
      const rows = screens[this.screen] ?? [];
      const out: Buffer[] = [];
      rows.forEach((text, row) => {
        if (this.shown[row] !== text) out.push(this.display.writeRow(row, text));
      });
      if (out.length && this.link.isOpen) {
        this.link.write(Buffer.concat(out));
        this.shown = [...rows];
      }
    } finally {
      this.drawing = false;
      if (this.again) {
        this.again = false;
        void this.draw();
      }
    }
  }
}
