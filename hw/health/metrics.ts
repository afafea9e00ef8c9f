import { Gauge, type Registry } from 'prom-client';
import type { HealthMonitor } from './health-monitor';

/** /metrics gauges from the last health snapshot (nothing is sampled at scrape time). */
export function registerHealthMetrics(registry: Registry, health: HealthMonitor, prefix = 'ccedge_hw_'): void {
  const snap = () => health.snapshot();
  // A gauge with no labels always shows a value (0 after reset), so figures that can be unknown
  // carry a label: with no value set, the series is absent instead of a made-up 0.
  const simple = (name: string, help: string, read: () => number | null | undefined, labels?: () => Record<string, string>): void => {
    const labelNames = labels ? Object.keys(labels()) : [];
    new Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const v = read();
        if (typeof v === 'number' && Number.isFinite(v)) {
          if (labels) this.set(labels(), v);
          else this.set(v);
        }
      },
    });
  };
  const disk = (): Record<string, string> => ({ path: snap()?.disk?.path ?? '' });
  simple('cpu_load_percent', 'CPU busy percent (all cores) over the last health interval', () => snap()?.cpu.loadPct, () => ({ cpu: 'all' }));
  simple('load_average_1m', 'Load average, 1 minute', () => snap()?.cpu.load1);
  simple('memory_total_bytes', 'Physical memory', () => snap()?.memory.totalBytes);
  simple('memory_available_bytes', 'Memory available (MemAvailable)', () => snap()?.memory.availableBytes);
  simple('disk_size_bytes', 'Size of the filesystem holding the data dir', () => snap()?.disk?.totalBytes, disk);
  simple('disk_available_bytes', 'Space available (to the daemon) on the data dir filesystem', () => snap()?.disk?.availableBytes, disk);
  simple('temperature_celsius', 'CPU temperature; absent when the platform has no readable sensor', () => snap()?.temperature.cpuC, () => ({ sensor: 'cpu' }));
  simple('event_loop_delay_p99_seconds', 'Event-loop delay p99 over the last health interval', () => {
    const v = snap()?.process.eventLoopDelayMs.p99;
    return typeof v === 'number' ? v / 1000 : null;
  });
  simple('health_sample_seconds', 'Wall time of the last health sample (in the sampler worker)', () => {
    const v = snap()?.sample.durationMs;
    return typeof v === 'number' ? v / 1000 : null;
  });
  new Gauge({
    name: `${prefix}nic_up`,
    help: 'NIC link up (1) or down (0); absent when the kernel does not say',
    labelNames: ['iface'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const n of snap()?.nics ?? []) if (n.up !== null) this.set({ iface: n.iface }, n.up ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}health_alarm`,
    help: 'Health threshold alarms raised (1)',
    labelNames: ['metric'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const a of snap()?.alarms ?? []) this.set({ metric: a.metric }, 1);
    },
  });
}
