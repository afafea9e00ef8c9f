import type { HealthConfig } from '../config';

export type HealthMetric = keyof HealthConfig['thresholds'];

/** Direction and unit of each threshold: `max` alarms above, `min` below. */
export const METRICS: Record<HealthMetric, { dir: 'max' | 'min'; unit: string }> = {
  cpuLoadPct: { dir: 'max', unit: '%' },
  memUsedPct: { dir: 'max', unit: '%' },
  diskFreePct: { dir: 'min', unit: '%' },
  temperatureC: { dir: 'max', unit: '°C' },
  eventLoopDelayMs: { dir: 'max', unit: 'ms' },
  rssMb: { dir: 'max', unit: 'MB' },
};

export interface ThresholdChange {
  metric: HealthMetric;
  state: 'raised' | 'cleared';
  value: number;
  threshold: number;
  unit: string;
}

/**
 * Raise after `samples` consecutive samples past the threshold; clear after as many back past it by
 * the hysteresis. A null value (sensor absent, sample part failed) changes nothing.
 */
export class Thresholds {
  private readonly raised = new Map<HealthMetric, { value: number; since: number }>();
  private readonly streak = new Map<HealthMetric, number>();

  constructor(private readonly cfg: Pick<HealthConfig, 'thresholds' | 'samplesToChange' | 'hysteresisPct'>) {}

  evaluate(values: Partial<Record<HealthMetric, number | null>>, now: number): ThresholdChange[] {
    const out: ThresholdChange[] = [];
    for (const [metric, spec] of Object.entries(METRICS) as [HealthMetric, (typeof METRICS)[HealthMetric]][]) {
      const threshold = this.cfg.thresholds[metric];
      const value = values[metric];
      if (threshold === null || value === null || value === undefined) {
        this.streak.delete(metric);
        continue;
      }
      const isRaised = this.raised.has(metric);
      const h = (Math.abs(threshold) * this.cfg.hysteresisPct) / 100;
      const crossing = isRaised
        ? spec.dir === 'max' ? value < threshold - h : value > threshold + h
        : spec.dir === 'max' ? value > threshold : value < threshold;
      if (!crossing) {
        this.streak.delete(metric);
        if (isRaised) this.raised.set(metric, { value, since: this.raised.get(metric)?.since ?? now });
        continue;
      }
      const n = (this.streak.get(metric) ?? 0) + 1;
      if (n < this.cfg.samplesToChange) {
        this.streak.set(metric, n);
        continue;
      }
      this.streak.delete(metric);
      if (isRaised) this.raised.delete(metric);
      else this.raised.set(metric, { value, since: now });
      out.push({ metric, state: isRaised ? 'cleared' : 'raised', value, threshold, unit: spec.unit });
    }
    return out;
  }

  active(): { metric: HealthMetric; value: number; threshold: number; unit: string; since: number }[] {
    return [...this.raised].map(([metric, r]) => ({ metric, value: r.value, threshold: this.cfg.thresholds[metric] as number, unit: METRICS[metric].unit, since: r.since }));
  }
}
