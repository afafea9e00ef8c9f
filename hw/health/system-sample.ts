import os from 'node:os';
import { performance } from 'node:perf_hooks';
import si from 'systeminformation';
import { diskOf } from './proc-sample';

export interface NicSample {
  iface: string;
  /** Kernel operstate: up, down, dormant, lowerlayerdown, unknown, ... */
  operstate: string;
  /** Link up? null when the kernel does not say (operstate `unknown`, e.g. loopback, tun). */
  up: boolean | null;
  ip4: string | null;
  ip6: string | null;
  mac: string | null;
  speedMbps: number | null;
  internal: boolean;
}

/** What systeminformation and statfs tell about the machine (no process figures). */
export interface SystemSample {
  cpu: {
    /** Percent busy (all cores) since the previous sample; null on the first. */
    loadPct: number | null;
    load1: number;
    load5: number;
    load15: number;
    cores: number;
  };
  memory: { totalBytes: number; availableBytes: number; usedBytes: number; usedPct: number };
  /** null: the platform has no readable sensor (never a made-up value). */
  temperature: { cpuC: number | null; maxC: number | null };
  /** Space on the filesystem holding the data dir, as `df` shows it (avail = for unprivileged users). */
  disk: { path: string; totalBytes: number; availableBytes: number; freeBytes: number; freePct: number } | null;
  nics: NicSample[];
  /** Errors of the parts that failed (the others are still reported). */
  errors: string[];
  /** Wall time the sample took where it ran (worker or main thread). */
  durationMs: number;
}

export interface SampleRequest {
  dataDir: string;
  /** NIC names to report; default all non-internal. */
  nics?: string[];
}

const r1 = (n: number): number => Math.round(n * 10) / 10;
const r2 = (n: number): number => Math.round(n * 100) / 100;

let firstLoad = true;

/**
 * Collects one sample with systeminformation (any platform). On Linux it shells out with execSync
 * for almost everything (cpu load, temperature, ~80 processes per networkInterfaces()), so it runs
 * in the health worker thread — which still forks the daemon's process (see README for figures);
 * Linux uses ProcSampler instead.
 */
export async function collectSystemSample(req: SampleRequest): Promise<SystemSample> {
  const t0 = performance.now();
  const errors: string[] = [];
  const guard = async <T>(what: string, f: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      return fallback;
    }
  };
  const load = await guard('cpu', () => si.currentLoad(), null);
  const mem = await guard('memory', () => si.mem(), null);
  const temp = await guard('temperature', () => si.cpuTemperature(), null);
  const ifaces = await guard('network', async () => {
    const r = await si.networkInterfaces();
    return Array.isArray(r) ? r : [r];
  }, []);
  const disk = await guard('disk', () => diskOf(req.dataDir), null);
  const [load1, load5, load15] = os.loadavg() as [number, number, number];
  const loadPct = load && !firstLoad ? r1(load.currentLoad) : null;
  firstLoad = false;
  const nics = ifaces
    .filter((n) => (req.nics ? req.nics.includes(n.iface) : !n.internal))
    .map((n) => ({
      iface: n.iface,
      operstate: n.operstate || 'unknown',
      up: n.operstate === 'up' ? true : n.operstate === 'down' || n.operstate === 'lowerlayerdown' ? false : null,
      ip4: n.ip4 || null,
      ip6: n.ip6 || null,
      mac: n.mac || null,
      speedMbps: typeof n.speed === 'number' && n.speed > 0 ? n.speed : null,
      internal: n.internal,
    }));
  return {
    cpu: { loadPct, load1: r2(load1), load5: r2(load5), load15: r2(load15), cores: os.availableParallelism() },
    memory: mem
      ? { totalBytes: mem.total, availableBytes: mem.available, usedBytes: mem.total - mem.available, usedPct: r1(((mem.total - mem.available) / mem.total) * 100) }
      : { totalBytes: 0, availableBytes: 0, usedBytes: 0, usedPct: 0 },
    temperature: { cpuC: temp && typeof temp.main === 'number' ? temp.main : null, maxC: temp && typeof temp.max === 'number' ? temp.max : null },
    disk,
    nics,
    errors,
    durationMs: r1(performance.now() - t0),
  };
}
