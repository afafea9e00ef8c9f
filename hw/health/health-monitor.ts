import { EventEmitter } from 'node:events';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../clock';
import type { HealthConfig } from '../config';
import { errorMessage } from '../errors';
import type { HwLog } from '../log';
import { ProcSampler } from './proc-sample';
import { InlineSampler, WorkerSampler, type Sampler, type SamplerMode } from './sampler';
import type { SystemSample } from './system-sample';
import { Thresholds, type ThresholdChange } from './thresholds';

export interface HealthSnapshot extends Omit<SystemSample, 'durationMs' | 'errors'> {
  sampledAt: string;
  /** Wall time of the last sample where it ran, and where that was. */
  sample: { durationMs: number; mode: SamplerMode; errors: string[]; seq: number };
  process: {
    pid: number;
    rssBytes: number;
    heapUsedBytes: number;
    uptimeS: number;
    /** Event-loop delay since the previous sample (perf_hooks.monitorEventLoopDelay), ms. */
    eventLoopDelayMs: { mean: number; p50: number; p99: number; max: number };
  };
  alarms: { metric: string; value: number; threshold: number; unit: string; since: string }[];
}

export interface HealthAlarmEvent extends ThresholdChange {
  [k: string]: unknown;
}

export interface HealthMonitorEvents {
  sample: [HealthSnapshot];
  alarm: [HealthAlarmEvent];
}

export interface HealthMonitorOptions {
  config: HealthConfig;
  dataDir: string;
  clock: Clock;
  log: HwLog;
}

const ms = (ns: number): number => Math.round(ns / 1e4) / 100;

/**
 * Samples the box every intervalS (never two at once), keeps the last snapshot for
 * GET /api/v1/health and the gauges, and raises/clears threshold alarms.
 */
export class HealthMonitor extends EventEmitter<HealthMonitorEvents> {
  private readonly sampler: Sampler;
  private readonly eld: IntervalHistogram;
  private readonly thresholds: Thresholds;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private last: HealthSnapshot | undefined;
  private seq = 0;
  private closed = false;

  constructor(private readonly opts: HealthMonitorOptions) {
    super();
    this.sampler = pickSampler(opts.config.source, opts.log);
    this.eld = monitorEventLoopDelay({ resolution: 10 });
    this.thresholds = new Thresholds(opts.config);
  }

  get mode(): SamplerMode {
    return this.sampler.mode;
  }

  start(): void {
    if (this.closed || this.timer || this.running) return;
    this.schedule(0);
  }

  /** The last snapshot, or null before the first sample finished. */
  snapshot(): HealthSnapshot | null {
    return this.last ?? null;
  }

  /** Takes a sample now (also what the interval does); resolves with the snapshot. */
  async sampleNow(): Promise<HealthSnapshot | null> {
    if (this.closed) return this.last ?? null;
    this.eld.enable(); // idempotent; measures from the first sample on
    if (!this.running) this.running = this.run().finally(() => (this.running = undefined));
    await this.running;
    return this.last ?? null;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.eld.disable();
    await this.sampler.close();
    await this.running?.catch(() => undefined);
  }

  private schedule(delay: number): void {
    this.timer = this.opts.clock.after(delay, () => {
      this.timer = undefined;
      void this.sampleNow().finally(() => {
        if (!this.closed) this.schedule(this.opts.config.intervalS * 1000);
      });
    });
  }

  private async run(): Promise<void> {
    let sys: SystemSample;
    try {
      sys = await this.sampler.sample({ dataDir: this.opts.dataDir, nics: this.opts.config.nics });
    } catch (err) {
      if (!this.closed) this.opts.log.error({ err: errorMessage(err) }, 'health sample failed');
      return;
    }
    if (this.closed) return;
    const t0 = performance.now();
    const mem = process.memoryUsage();
    const eld = { mean: ms(this.eld.mean), p50: ms(this.eld.percentile(50)), p99: ms(this.eld.percentile(99)), max: ms(this.eld.max) };
    this.eld.reset();
    const now = this.opts.clock.now();
    const changes = this.thresholds.evaluate(
      {
        cpuLoadPct: sys.cpu.loadPct,
        memUsedPct: sys.memory.totalBytes ? sys.memory.usedPct : null,
        diskFreePct: sys.disk?.freePct ?? null,
        temperatureC: sys.temperature.cpuC,
        eventLoopDelayMs: Number.isFinite(eld.p99) && eld.p99 > 0 ? eld.p99 : null,
        rssMb: Math.round(mem.rss / 1048576),
      },
      now,
    );
    const { durationMs, errors, ...rest } = sys;
    this.last = {
      sampledAt: new Date(now).toISOString(),
      sample: { durationMs, mode: this.sampler.mode, errors, seq: ++this.seq },
      ...rest,
      process: { pid: process.pid, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, uptimeS: Math.round(process.uptime()), eventLoopDelayMs: eld },
      alarms: this.thresholds.active().map((a) => ({ ...a, since: new Date(a.since).toISOString() })),
    };
    if (errors.length) this.opts.log.warn({ errors }, 'health sample incomplete');
    for (const c of changes) {
      this.opts.log[c.state === 'raised' ? 'warn' : 'info']({ ...c }, `health alarm ${c.state}`);
      this.emit('alarm', { ...c });
    }
    this.emit('sample', this.last);
    if (performance.now() - t0 > 50) this.opts.log.debug({ ms: performance.now() - t0 }, 'health sample post-processing slow');
  }
}

function pickSampler(source: HealthConfig['source'], log: HwLog): Sampler {
  if (source === 'proc' || (source === 'auto' && ProcSampler.available())) return new ProcSampler();
  if (source === 'systeminformation-inline') return new InlineSampler();
  if (WorkerSampler.available()) return new WorkerSampler(log);
  log.warn({ script: WorkerSampler.SCRIPT }, 'health worker script missing; systeminformation samples on the main thread');
  return new InlineSampler();
}
