import { EventEmitter } from 'node:events';
import type { Clock } from '../clock';
import type { TrunksConfig } from '../config';
import type { HwLog } from '../log';
import { DahdiDriver } from './dahdi-driver';
import { SerialDriver } from './serial-driver';
import { Trunk, type TrunkAlarmEvent, type TrunkSnapshot } from './trunk';
import type { TrunkDriver } from './types';

export interface TrunkMonitorOptions {
  config: TrunksConfig;
  /** DAHDI status dir (CCEDGE_DAHDI_DIR, default /proc/dahdi). */
  dahdiDir: string;
  /** Whether dahdiDir exists now (auto-discovery runs only then). */
  dahdiPresent: boolean;
  clock: Clock;
  log: HwLog;
}

export interface TrunkMonitorEvents {
  alarm: [TrunkAlarmEvent];
  change: [TrunkSnapshot];
}

/**
 * Every configured E1 span, whatever the driver: one DahdiDriver for all dahdi spans, one
 * SerialDriver per serial path (a quad gateway reports several spans on one port), one Trunk
 * (state + hold-off alarms) per span.
 */
export class TrunkMonitor extends EventEmitter<TrunkMonitorEvents> {
  private readonly drivers: TrunkDriver[] = [];
  private readonly trunks = new Map<string, Trunk>();
  private readonly byDriverSpan = new Map<TrunkDriver, Map<number, Trunk>>();
  private closed = false;

  constructor(private readonly opts: TrunkMonitorOptions) {
    super();
    const c = opts.config;
    const dahdi = c.spans.filter((s) => s.driver === 'dahdi');
    if (dahdi.length || (c.dahdiAuto && opts.dahdiPresent)) {
      const driver = new DahdiDriver({
        dir: opts.dahdiDir,
        spans: dahdi.length ? dahdi.map((s) => s.span) : 'auto',
        pollMs: c.pollMs,
        backoffMinMs: c.backoffMinMs,
        backoffMaxMs: c.backoffMaxMs,
        clock: opts.clock,
        log: opts.log,
      });
      this.addDriver(driver, new Map(dahdi.map((s) => [s.span, s.name])), dahdi.length === 0);
    }
    const paths = new Map<string, Extract<TrunksConfig['spans'][number], { driver: 'serial' }>[]>();
    for (const s of c.spans) if (s.driver === 'serial') paths.set(s.path, [...(paths.get(s.path) ?? []), s]);
    for (const [path, spans] of paths) {
      const driver = new SerialDriver({
        path,
        baud: spans[0]?.baud ?? 9600,
        spans: spans.map((s) => s.span),
        pollMs: c.pollMs,
        silenceMs: c.silenceMs,
        garbageLines: c.garbageLines,
        backoffMinMs: c.backoffMinMs,
        backoffMaxMs: c.backoffMaxMs,
        clock: opts.clock,
        log: opts.log,
      });
      this.addDriver(driver, new Map(spans.map((s) => [s.span, s.name])), false);
    }
  }

  start(): void {
    for (const d of this.drivers) d.start();
  }

  /** For GET /api/v1/trunks, in configuration order (auto-discovered DAHDI spans by number). */
  snapshot(): TrunkSnapshot[] {
    return [...this.trunks.values()].map((t) => t.snapshot());
  }

  list(): Trunk[] {
    return [...this.trunks.values()];
  }

  get(name: string): Trunk | undefined {
    return this.trunks.get(name);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.drivers.map((d) => d.close()));
    for (const d of this.drivers) d.removeAllListeners();
    for (const t of this.trunks.values()) t.close();
  }

  private addDriver(driver: TrunkDriver, names: Map<number, string>, auto: boolean): void {
    this.drivers.push(driver);
    const spans = new Map<number, Trunk>();
    this.byDriverSpan.set(driver, spans);
    for (const [span, name] of names) spans.set(span, this.addTrunk(name, span, driver));
    driver.on('report', (r) => {
      let t = spans.get(r.span);
      if (!t && auto) {
        t = this.addTrunk(`span${r.span}`, r.span, driver);
        spans.set(r.span, t);
        this.opts.log.info({ trunk: t.name, device: driver.device }, 'DAHDI span found');
      }
      t?.onReport(r);
    });
    driver.on('fault', (err, which) => {
      for (const [span, t] of spans) if (!which || which.includes(span)) t.onFault(err);
    });
    driver.on('recovered', (which) => {
      for (const [span, t] of spans) if (!which || which.includes(span)) t.onRecovered();
    });
  }

  private addTrunk(name: string, span: number, driver: TrunkDriver): Trunk {
    const t = new Trunk(name, span, driver.kind, driver.device, this.opts.clock, {
      raiseMs: this.opts.config.raiseHoldOffMs,
      clearMs: this.opts.config.clearHoldOffMs,
    });
    t.on('alarm', (ev) => {
      this.opts.log[ev.state === 'raised' ? 'warn' : 'info']({ trunk: ev.trunk, alarm: ev.alarm, state: ev.state, code: ev.code }, `trunk alarm ${ev.state}`);
      this.emit('alarm', ev);
    });
    t.on('change', (s) => this.emit('change', s));
    this.trunks.set(name, t);
    return t;
  }
}
