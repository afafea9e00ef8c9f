import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NicSample, SampleRequest, SystemSample } from './system-sample';

const r1 = (n: number): number => Math.round(n * 10) / 10;
const r2 = (n: number): number => Math.round(n * 100) / 100;

/** Reads a small sysfs/procfs file; null when absent or unreadable (EINVAL: `speed` of a down link). */
async function read(file: string): Promise<string | null> {
  try {
    return (await fsp.readFile(file, 'utf8')).trim();
  } catch {
    return null;
  }
}

/** Label preference for "the CPU temperature" among hwmon sensors. */
const CPU_LABEL = /^(package id \d+|tctl|tdie|tccd\d*|cpu|core \d+)$/i;
const CPU_CHIP = /^(coretemp|k10temp|zenpower|cpu_thermal|cpu-thermal|soc_thermal|x86_pkg_temp|acpitz)$/i;

/**
 * Linux health sample straight from /proc and /sys with async reads: no child process, no
 * blocking call. (systeminformation reads the same files through `sh -c "cat ... | grep"` with
 * execSync — ~80 processes per networkInterfaces() — which stalls the daemon, see README.)
 */
export class ProcSampler {
  readonly mode = 'proc' as const;
  private prevCpu: { busy: number; total: number } | undefined;

  constructor(
    private readonly root = { proc: '/proc', sys: '/sys' },
  ) {}

  static available(): boolean {
    return process.platform === 'linux';
  }

  async sample(req: SampleRequest): Promise<SystemSample> {
    const t0 = performance.now();
    const errors: string[] = [];
    const [cpu, memory, temperature, nics, disk] = await Promise.all([
      this.cpu().catch((e: unknown) => (errors.push(`cpu: ${String(e)}`), null)),
      this.memory().catch((e: unknown) => (errors.push(`memory: ${String(e)}`), null)),
      this.temperature().catch((e: unknown) => (errors.push(`temperature: ${String(e)}`), { cpuC: null, maxC: null })),
      this.nics(req.nics).catch((e: unknown) => (errors.push(`network: ${String(e)}`), [] as NicSample[])),
      diskOf(req.dataDir).catch((e: unknown) => (errors.push(`disk: ${String(e)}`), null)),
    ]);
    const [load1, load5, load15] = os.loadavg() as [number, number, number];
    return {
      cpu: { loadPct: cpu, load1: r2(load1), load5: r2(load5), load15: r2(load15), cores: os.availableParallelism() },
      memory: memory ?? { totalBytes: 0, availableBytes: 0, usedBytes: 0, usedPct: 0 },
      temperature,
      disk,
      nics,
      errors,
      durationMs: r1(performance.now() - t0),
    };
  }

  async close(): Promise<void> {}

  private async cpu(): Promise<number | null> {
    const stat = await fsp.readFile(path.join(this.root.proc, 'stat'), 'utf8');
    const f = (stat.split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    if (f.length < 4 || f.some((n) => !Number.isFinite(n))) throw new Error('unexpected /proc/stat');
    // user nice system idle iowait irq softirq steal (guest time is already in user/nice)
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const cur = { busy: total - idle, total };
    const prev = this.prevCpu;
    this.prevCpu = cur;
    if (!prev || cur.total <= prev.total) return null;
    // iowait may step backwards on Linux (proc(5)): keep the figure within 0-100.
    return r1(Math.min(100, Math.max(0, ((cur.busy - prev.busy) / (cur.total - prev.total)) * 100)));
  }

  private async memory(): Promise<SystemSample['memory']> {
    const text = await fsp.readFile(path.join(this.root.proc, 'meminfo'), 'utf8');
    const kb = (key: string): number | undefined => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    const total = kb('MemTotal');
    const available = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
    if (!total) throw new Error('no MemTotal in meminfo');
    return { totalBytes: total, availableBytes: available, usedBytes: total - available, usedPct: r1(((total - available) / total) * 100) };
  }

  private async temperature(): Promise<SystemSample['temperature']> {
    const found: { chip: string; label: string; c: number }[] = [];
    const hwmon = path.join(this.root.sys, 'class/hwmon');
    for (const mon of await fsp.readdir(hwmon).catch(() => [] as string[])) {
      const dir = path.join(hwmon, mon);
      const chip = (await read(path.join(dir, 'name'))) ?? mon;
      const files = await fsp.readdir(dir).catch(() => [] as string[]);
      for (const f of files) {
        const m = /^temp(\d+)_input$/.exec(f);
        if (!m) continue;
        const v = Number(await read(path.join(dir, f)));
        if (!Number.isFinite(v) || v <= -273000 || v === 0) continue;
        found.push({ chip, label: (await read(path.join(dir, `temp${m[1]}_label`))) ?? '', c: r1(v / 1000) });
      }
    }
    const thermal = path.join(this.root.sys, 'class/thermal');
    for (const z of await fsp.readdir(thermal).catch(() => [] as string[])) {
      if (!z.startsWith('thermal_zone')) continue;
      const v = Number(await read(path.join(thermal, z, 'temp')));
      if (!Number.isFinite(v) || v === 0) continue;
      found.push({ chip: (await read(path.join(thermal, z, 'type'))) ?? z, label: '', c: r1(v / 1000) });
    }
    if (!found.length) return { cpuC: null, maxC: null };
    const cpu = found.find((s) => CPU_LABEL.test(s.label) && !/^core/i.test(s.label)) ?? found.find((s) => CPU_CHIP.test(s.chip)) ?? found.find((s) => /^core/i.test(s.label));
    return { cpuC: cpu ? cpu.c : null, maxC: Math.max(...found.map((s) => s.c)) };
  }

  private async nics(only: string[] | undefined): Promise<NicSample[]> {
    const netDir = path.join(this.root.sys, 'class/net');
    const names = await fsp.readdir(netDir).catch(() => Object.keys(os.networkInterfaces()));
    const addrs = os.networkInterfaces();
    const out: NicSample[] = [];
    for (const iface of names.sort()) {
      const a = addrs[iface] ?? [];
      const type = await read(path.join(netDir, iface, 'type'));
      const internal = type === '772' || a.some((x) => x.internal);
      if (only ? !only.includes(iface) : internal) continue;
      const operstate = (await read(path.join(netDir, iface, 'operstate'))) ?? 'unknown';
      const speed = Number(await read(path.join(netDir, iface, 'speed')));
      const v4 = a.find((x) => x.family === 'IPv4');
      const v6 = a.find((x) => x.family === 'IPv6' && !x.address.startsWith('fe80')) ?? a.find((x) => x.family === 'IPv6');
      out.push({
        iface,
        operstate,
        up: operstate === 'up' ? true : operstate === 'down' || operstate === 'lowerlayerdown' ? false : null,
        ip4: v4?.address ?? null,
        ip6: v6?.address ?? null,
        mac: (await read(path.join(netDir, iface, 'address'))) ?? a[0]?.mac ?? null,
        speedMbps: Number.isFinite(speed) && speed > 0 ? speed : null,
        internal,
      });
    }
    return out;
  }
}

export async function diskOf(dataDir: string): Promise<NonNullable<SystemSample['disk']>> {
  const s = await fsp.statfs(dataDir);
  return {
    path: dataDir,
    totalBytes: s.blocks * s.bsize,
    availableBytes: s.bavail * s.bsize,
    freeBytes: s.bfree * s.bsize,
    // As df's Use%: used / (used + available to users).
    freePct: r1((s.bavail / Math.max(1, s.blocks - s.bfree + s.bavail)) * 100),
  };
}
