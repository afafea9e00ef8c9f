import { EventEmitter } from 'node:events';
import { constants as fsc, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Clock, TimerHandle } from '../clock';
import type { WatchdogConfig } from '../config';
import { HwError, errorMessage } from '../errors';
import type { HwLog } from '../log';
import { SystemdNotifier } from './systemd-notify';

/** A liveness check: resolve true/undefined when healthy; false, a rejection or a timeout is not. */
export type HealthCheck = () => Promise<boolean | void> | boolean | void;

export interface WatchdogEvents {
  /** Feeding stopped (a check failed) — the box will be reset if it does not recover in time. */
  starving: [{ failed: { check: string; reason: string }[] }];
  /** Checks pass again; feeding resumed. */
  fed: [];
  fault: [HwError];
}

export interface WatchdogOptions {
  config: WatchdogConfig;
  /** Named checks, e.g. { sip: () => sip.listening, db: () => db.get('select 1') }. */
  checks?: Record<string, HealthCheck>;
  clock: Clock;
  log: HwLog;
  env?: NodeJS.ProcessEnv;
}

/**
 * Feeds the kernel watchdog device and/or systemd's WatchdogSec, but only while every check passes
 * (the event loop runs on time, plus the checks the gateway passes: SIP listener, database).
 * A failing check stops feeding and says why, once; close() disarms the device with the magic 'V'.
 */
export class Watchdog extends EventEmitter<WatchdogEvents> {
  private readonly notifier: SystemdNotifier;
  private readonly intervalMs: number | null;
  private readonly systemdMs: number | null;
  private device: FileHandle | undefined;
  private timer: TimerHandle | undefined;
  private lastTick = 0;
  private lastSystemd = 0;
  private starving = false;
  private closed = false;
  private ticking: Promise<void> = Promise.resolve();
  readonly stats = { deviceKeepalives: 0, systemdKeepalives: 0, skipped: 0 };

  constructor(private readonly opts: WatchdogOptions) {
    super();
    this.notifier = new SystemdNotifier(opts.config.notifyCommand, opts.env ?? process.env);
    this.systemdMs = opts.config.systemd === 'auto' ? this.notifier.watchdogIntervalMs() : null;
    const periods = [opts.config.device ? opts.config.deviceIntervalMs : null, this.systemdMs].filter((x): x is number => x !== null);
    this.intervalMs = periods.length ? Math.min(...periods) : null;
  }

  /** Something to feed: a device path or systemd's watchdog. */
  get enabled(): boolean {
    return this.intervalMs !== null;
  }

  get systemdIntervalMs(): number | null {
    return this.systemdMs;
  }

  async start(): Promise<void> {
    if (!this.enabled || this.closed) return;
    const dev = this.opts.config.device;
    if (dev) {
      try {
        // O_WRONLY without O_CREAT/O_TRUNC: never create a regular file in /dev when the driver is missing.
        this.device = await fsp.open(dev, fsc.O_WRONLY | fsc.O_NOCTTY);
        this.opts.log.info({ device: dev, intervalMs: this.opts.config.deviceIntervalMs }, 'watchdog device armed');
      } catch (err) {
        const e = new HwError('HW_WATCHDOG_OPEN_FAILED', `cannot open ${dev}: ${errorMessage(err)}`);
        this.opts.log.error({ device: dev, err: e.message }, 'watchdog device not armed');
        this.emit('fault', e);
      }
    }
    if (this.closed) {
      await this.disarm();
      return;
    }
    if (this.systemdMs) this.opts.log.info({ intervalMs: this.systemdMs }, 'systemd watchdog keepalive on');
    this.lastTick = this.opts.clock.now();
    this.schedule();
  }

  /** Tells systemd the daemon is up (Type=notify). Harmless without NOTIFY_SOCKET. */
  ready(status?: string): Promise<void> {
    return this.notifier.notify('READY=1', ...(status ? [`STATUS=${status}`] : [])).catch((err: unknown) => {
      this.opts.log.warn({ err: errorMessage(err) }, 'systemd READY=1 failed');
    });
  }

  /** Clean shutdown: stop feeding, magic-close the device (it will not reset the box), STOPPING=1. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.ticking;
    await this.disarm();
    if (this.systemdMs) await this.notifier.notify('STOPPING=1').catch(() => undefined);
    this.removeAllListeners();
  }

  private schedule(): void {
    this.timer = this.opts.clock.after(this.intervalMs ?? 1000, () => {
      this.timer = undefined;
      this.ticking = this.tick().finally(() => {
        if (!this.closed) this.schedule();
      });
    });
  }

  /** One round: run the checks, then feed (or not). Exposed for tests through the clock. */
  private async tick(): Promise<void> {
    const now = this.opts.clock.now();
    const lag = now - this.lastTick - (this.intervalMs ?? 0);
    this.lastTick = now;
    const failed: { check: string; reason: string }[] = [];
    if (lag > this.opts.config.maxEventLoopLagMs) failed.push({ check: 'eventLoop', reason: `timer ran ${lag} ms late` });
    await Promise.all(
      Object.entries(this.opts.checks ?? {}).map(async ([name, check]) => {
        const reason = await runCheck(check, this.opts.config.checkTimeoutMs);
        if (reason) failed.push({ check: name, reason });
      }),
    );
    if (this.closed) return;
    if (failed.length) {
      this.stats.skipped++;
      if (!this.starving) {
        this.starving = true;
        this.opts.log.error({ failed, code: 'HW_WATCHDOG_CHECK_FAILED' }, 'watchdog not fed: health check failed');
        this.emit('starving', { failed });
      }
      return;
    }
    if (this.starving) {
      this.starving = false;
      this.opts.log.warn({}, 'watchdog checks pass again; feeding resumed');
      this.emit('fed');
    }
    if (this.device) {
      try {
        await this.device.write(Buffer.from('\0'));
        this.stats.deviceKeepalives++;
      } catch (err) {
        this.emit('fault', new HwError('HW_WATCHDOG_WRITE_FAILED', `watchdog keepalive failed: ${errorMessage(err)}`));
      }
    }
    // Notify when waiting one more round would overrun systemd's period.
    if (this.systemdMs && now - this.lastSystemd + (this.intervalMs ?? 0) > this.systemdMs) {
      this.lastSystemd = now;
      try {
        await this.notifier.notify('WATCHDOG=1');
        this.stats.systemdKeepalives++;
      } catch (err) {
        this.opts.log.warn({ err: errorMessage(err) }, 'systemd WATCHDOG=1 failed');
        this.emit('fault', err instanceof HwError ? err : new HwError('HW_NOTIFY_FAILED', errorMessage(err)));
      }
    }
  }

  private async disarm(): Promise<void> {
    const d = this.device;
    this.device = undefined;
    if (!d) return;
    try {
      await d.write(Buffer.from('V'));
      this.opts.log.info({ device: this.opts.config.device }, 'watchdog device disarmed (magic close)');
    } catch (err) {
      this.opts.log.error({ err: errorMessage(err) }, 'watchdog magic close failed: the box may reset');
    }
    await d.close().catch(() => undefined);
  }
}

async function runCheck(check: HealthCheck, timeoutMs: number): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      Promise.resolve().then(check),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      }),
    ]);
    if (r === 'timeout') return `no answer in ${timeoutMs} ms`;
    if (r === false) return 'reported unhealthy';
    return null;
  } catch (err) {
    return errorMessage(err);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
