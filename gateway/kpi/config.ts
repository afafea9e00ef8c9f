/**
 * Config section `kpi:` for the gateway's config schema to include (`kpi: kpiConfigSchema.prefault({})`).
 *
 * ```yaml
 * kpi:
 *   window: today            # today (since local midnight) | 1h … 168h (rolling)
 *   serviceLevelS: 20        # T: answered within T seconds counts for the service level
 *   abandons: exclude-short  # fail | exclude | exclude-short (see gateway/kpi/kpi.ts)
 *   shortAbandonS: 5         # abandons under this are "short"
 *   targets: { serviceLevel: 0.8, fcr: 0.7 }   # the routing report flags intents below these
 * ```
 */
import { z } from 'zod';
import { DEFAULT_KPI_OPTIONS, type KpiOptions } from './kpi';

export const KPI_WINDOW_PATTERN = /^(today|([1-9]\d{0,2})h)$/;

export const kpiConfigSchema = z
  .object({
    window: z
      .string()
      .regex(KPI_WINDOW_PATTERN, 'today, or a number of hours such as 8h (1h-168h)')
      .refine((w) => w === 'today' || Number(w.slice(0, -1)) <= 168, 'at most 168h')
      .default('today'),
    serviceLevelS: z.number().int().min(1).max(3600).default(DEFAULT_KPI_OPTIONS.serviceLevelS),
    abandons: z.enum(['fail', 'exclude', 'exclude-short']).default(DEFAULT_KPI_OPTIONS.abandons),
    shortAbandonS: z.number().int().min(0).max(600).default(DEFAULT_KPI_OPTIONS.shortAbandonS),
    targets: z
      .object({ serviceLevel: z.number().min(0).max(1).default(0.8), fcr: z.number().min(0).max(1).default(0.7) })
      .strict()
      .prefault({}),
  })
  .strict();

export type KpiConfig = z.infer<typeof kpiConfigSchema>;

export function kpiOptions(c: Pick<KpiConfig, 'serviceLevelS' | 'abandons' | 'shortAbandonS'>): KpiOptions {
  return { serviceLevelS: c.serviceLevelS, abandons: c.abandons, shortAbandonS: c.shortAbandonS };
}

/** Start of the KPI window ending at `now`: local midnight for 'today', else now minus N hours. */
export function windowStart(window: string, now: number): number {
  if (window === 'today') {
    const d = new Date(now);
    d.setHours(0, 0, 0, 0);
    return d.getTime();
  }
  const m = KPI_WINDOW_PATTERN.exec(window);
  if (!m?.[2]) throw new RangeError(`bad KPI window "${window}"`);
  return now - Number(m[2]) * 3_600_000;
}
