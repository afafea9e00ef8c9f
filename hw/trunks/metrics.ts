import { Gauge, type Registry } from 'prom-client';
import type { TrunkMonitor } from './trunk-monitor';
import { COUNTER_NAMES, TRUNK_STATES } from './types';

/** /metrics gauges of every trunk, read from the monitor at scrape time. */
export function registerTrunkMetrics(registry: Registry, monitor: TrunkMonitor, prefix = 'ccedge_hw_'): void {
  new Gauge({
    name: `${prefix}trunk_state`,
    help: 'E1 span line state (1 for the current state; NOT_OPEN while the monitor cannot read it)',
    labelNames: ['trunk', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const t of monitor.list()) for (const s of TRUNK_STATES) this.set({ trunk: t.name, state: s }, t.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}trunk_alarm`,
    help: 'E1 span alarms raised after hold-off (RED, YELLOW, BLUE, LOOPBACK, NOT_OPEN, DCHAN_DOWN, DEVICE)',
    labelNames: ['trunk', 'alarm', 'severity'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const t of monitor.list()) for (const a of t.alarms()) this.set({ trunk: t.name, alarm: a.alarm, severity: a.severity }, 1);
    },
  });
  new Gauge({
    name: `${prefix}trunk_dchannel_up`,
    help: 'E1 D-channel up (1) or down (0); absent when the driver cannot tell',
    labelNames: ['trunk'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const t of monitor.list()) {
        const d = t.snapshot().dchannel;
        if (d !== null) this.set({ trunk: t.name }, d === 'up' ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: `${prefix}trunk_errors`,
    help: 'E1 span error counters as the card reports them (cumulative; may reset with the card)',
    labelNames: ['trunk', 'counter'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const t of monitor.list()) {
        const s = t.snapshot();
        for (const c of COUNTER_NAMES) this.set({ trunk: t.name, counter: c }, s.counters[c]);
      }
    },
  });
  new Gauge({
    name: `${prefix}trunk_device_fault`,
    help: 'The monitor cannot read this span (device unplugged, silent, garbage, DAHDI missing)',
    labelNames: ['trunk'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const t of monitor.list()) this.set({ trunk: t.name }, t.snapshot().fault ? 1 : 0);
    },
  });
}
