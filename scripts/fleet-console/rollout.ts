/**
 * Staged rollout of an update bundle across the fleet (the cloud side of cmd/update.apply):
 *   - the cohort is a stable `percent` of the eligible devices (online, not already on the target
 *     version), chosen by a hash of version/site/device: raising --percent later extends the same
 *     cohort instead of picking a new one;
 *   - devices are updated `batch` at a time: cmd/update.apply {url, version, sha256, size}, then
 *     the device's retained `update/status` must report the version committed (the device
 *     restarted into it and passed its health window) within `confirmTimeoutMs`;
 *   - a command error, a rollback (reason reported by the device) or a timeout is a failure; after
 *     each batch the rollout aborts when failures / attempted exceeds `maxFailureRate`, and no
 *     further device is touched.
 */
import { createHash } from 'node:crypto';
import type { DeviceInfo, FleetConsole } from './fleet-console';

export interface RolloutOptions {
  url: string;
  version: string;
  sha256?: string;
  size?: number;
  percent: number;
  maxFailureRate: number;
  batch: number;
  applyTimeoutMs: number;
  confirmTimeoutMs: number;
}

export interface RolloutPlan {
  cohort: DeviceInfo[];
  upToDate: DeviceInfo[];
  offline: DeviceInfo[];
  /** Eligible but outside the percentage this time. */
  later: DeviceInfo[];
}

export type DeviceOutcome = { site: string; device: string; ok: boolean; outcome: 'committed' | 'rolled-back' | 'refused' | 'timeout'; reason?: string; message?: string };

export interface RolloutReport {
  plan: { cohort: number; upToDate: number; offline: number; later: number };
  results: DeviceOutcome[];
  attempted: number;
  failed: number;
  aborted: boolean;
  notAttempted: string[];
}

function rank(version: string, d: DeviceInfo): string {
  return createHash('sha256').update(`${version}/${d.site}/${d.device}`).digest('hex');
}

export function planRollout(devices: DeviceInfo[], version: string, percent: number): RolloutPlan {
  if (!(percent > 0 && percent <= 100)) throw new Error('--percent must be more than 0 and at most 100');
  const upToDate = devices.filter((d) => d.version === version);
  const offline = devices.filter((d) => d.version !== version && !d.online);
  const eligible = devices.filter((d) => d.version !== version && d.online).sort((a, b) => (rank(version, a) < rank(version, b) ? -1 : 1));
  const n = Math.ceil((eligible.length * percent) / 100);
  return { cohort: eligible.slice(0, n), later: eligible.slice(n), upToDate, offline };
}

/** Decides after each batch whether to go on. */
export class FailureBudget {
  attempted = 0;
  failed = 0;
  constructor(private readonly maxFailureRate: number) {}
  record(ok: boolean): void {
    this.attempted++;
    if (!ok) this.failed++;
  }
  exceeded(): boolean {
    return this.attempted > 0 && this.failed / this.attempted > this.maxFailureRate;
  }
}

export async function runRollout(fc: FleetConsole, plan: RolloutPlan, o: RolloutOptions, onResult: (r: DeviceOutcome) => void = () => undefined): Promise<RolloutReport> {
  const budget = new FailureBudget(o.maxFailureRate);
  const results: DeviceOutcome[] = [];
  let aborted = false;
  let next = 0;
  while (next < plan.cohort.length) {
    const batch = plan.cohort.slice(next, next + o.batch);
    next += batch.length;
    const outcomes = await Promise.all(batch.map((d) => updateOne(fc, d, o)));
    for (const r of outcomes) {
      budget.record(r.ok);
      results.push(r);
      onResult(r);
    }
    if (budget.exceeded()) {
      aborted = true;
      break;
    }
  }
  return {
    plan: { cohort: plan.cohort.length, upToDate: plan.upToDate.length, offline: plan.offline.length, later: plan.later.length },
    results,
    attempted: budget.attempted,
    failed: budget.failed,
    aborted,
    notAttempted: plan.cohort.slice(next).map((d) => `${d.site}/${d.device}`),
  };
}

async function updateOne(fc: FleetConsole, d: DeviceInfo, o: RolloutOptions): Promise<DeviceOutcome> {
  const base = { site: d.site, device: d.device };
  const r = await fc.commandAt(d.site, d.device, 'update.apply', { url: o.url, version: o.version, sha256: o.sha256, size: o.size }, o.applyTimeoutMs).catch((e: Error) => ({ ok: false, error: e.message, code: 'TIMEOUT' }));
  if (!r.ok) return { ...base, ok: false, outcome: r.code === 'TIMEOUT' ? 'timeout' : 'refused', reason: r.code, message: r.error };
  try {
    const s = await fc.waitFor(
      d.site,
      d.device,
      'update/status',
      (b) => {
        const last = b.last as { version?: string; outcome?: string } | null | undefined;
        return last?.version === o.version && (last.outcome === 'committed' || last.outcome === 'rolled-back');
      },
      o.confirmTimeoutMs,
    );
    const last = s.last as { outcome: string; reason?: string; message?: string };
    return last.outcome === 'committed' ? { ...base, ok: true, outcome: 'committed' } : { ...base, ok: false, outcome: 'rolled-back', reason: last.reason, message: last.message };
  } catch (e) {
    return { ...base, ok: false, outcome: 'timeout', reason: 'TIMEOUT', message: (e as Error).message };
  }
}
