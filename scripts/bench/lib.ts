/**
 * Shared pieces of the benchmarks: the daemon's CPU and RSS from /proc (never the load
 * generator's), load average, machine notes, result files.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';

export const CLK_TCK = 100;

/** scripts/bench/results in the source tree (the benches run from dist/scripts/bench). */
export const RESULTS_DIR = path.join(__dirname, '..', '..', '..', 'scripts', 'bench', 'results');

/** utime + stime of a process, in seconds (all its threads). */
/** CPU seconds of process `pid`, or of its thread `tid` (the main thread's tid is the pid). */
export function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Resident set size in MB (VmRSS) and its high-water mark (VmHWM). */
export function memoryMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: Math.round(kb('VmRSS') / 102.4) / 10, hwm: Math.round(kb('VmHWM') / 102.4) / 10 };
}

export function load(): [number, number, number] {
  const [a, b, c] = loadavg();
  return [round(a, 2), round(b, 2), round(c, 2)];
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** CPU (percent of one core) and RSS of a process over a window, sampled every second. */
export class ProcWindow {
  private readonly cpu0: number;
  /** The main thread's (SIP, HTTP, ACD, sqlite callbacks; media only with media.workers 0). */
  private readonly mainCpu0: number;
  private readonly t0 = performance.now();
  private readonly load0 = load();
  private readonly samples: number[] = [];
  private peakRss = 0;
  private lastCpu: number;
  private lastT: number;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly pid: number) {
    this.cpu0 = cpuSeconds(pid);
    this.mainCpu0 = cpuSeconds(pid, pid);
    this.lastCpu = this.cpu0;
    this.lastT = this.t0;
    this.timer = setInterval(() => this.sample(), 1000);
  }

  private sample(): void {
    try {
      const c = cpuSeconds(this.pid);
      const t = performance.now();
      this.samples.push(((c - this.lastCpu) / ((t - this.lastT) / 1000)) * 100);
      this.lastCpu = c;
      this.lastT = t;
      this.lastRssSample = memoryMb(this.pid).rss;
      this.peakRss = Math.max(this.peakRss, this.lastRssSample);
    } catch {
      // The process is gone; the window ends with what was sampled.
    }
  }

  /** RSS now, or the last sample if the process has exited meanwhile. */
  private lastRss(): number {
    try {
      return memoryMb(this.pid).rss;
    } catch {
      return this.lastRssSample;
    }
  }

  private lastRssSample = 0;

  end(): { wallS: number; cpuPct: number; mainThreadCpuPct: number | null; cpuPctMaxSecond: number; rssMb: number; peakRssMb: number; loadAvg: [number, number, number]; loadAvgBefore: [number, number, number] } {
    this.sample();
    clearInterval(this.timer);
    const wallS = (performance.now() - this.t0) / 1000;
    const cpuPct = ((this.lastCpu - this.cpu0) / wallS) * 100;
    let mainThreadCpuPct: number | null = null;
    try {
      mainThreadCpuPct = round(((cpuSeconds(this.pid, this.pid) - this.mainCpu0) / wallS) * 100);
    } catch {
      // The process is gone.
    }
    return {
      wallS: round(wallS),
      cpuPct: round(cpuPct),
      mainThreadCpuPct,
      cpuPctMaxSecond: round(Math.max(0, ...this.samples)),
      rssMb: this.lastRss(),
      peakRssMb: this.peakRss,
      loadAvg: load(),
      loadAvgBefore: this.load0,
    };
  }
}

export function machine(): Record<string, unknown> {
  let sipp = '';
  try {
    sipp = /SIPp v?[\d.]+/.exec(execFileSync('sipp', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))?.[0] ?? '';
  } catch (e) {
    sipp = /SIPp v?[\d.]+/.exec(String((e as { stdout?: string }).stdout ?? ''))?.[0] ?? 'sipp';
  }
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memGb: round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    sipp,
  };
}

export interface BenchResult {
  bench: string;
  date: string;
  quick: boolean;
  method: string;
  machine: Record<string, unknown>;
  /** One line per target: what was asked, what was measured, met or not. */
  verdicts: Verdict[];
  [key: string]: unknown;
}

export interface Verdict {
  target: string;
  measured: string;
  met: boolean | null;
  loadAvg: [number, number, number];
}

export function resultsDir(quick: boolean): string {
  const dir = quick ? path.join(RESULTS_DIR, 'quick') : RESULTS_DIR;
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function writeResult(r: BenchResult, markdown: string): void {
  const dir = resultsDir(r.quick);
  writeFileSync(path.join(dir, `${r.bench}.json`), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(path.join(dir, `${r.bench}.md`), `${markdown.trimEnd()}\n`);
}

/** Percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function table(header: string[], rows: Array<Array<string | number | null | undefined>>): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map((c) => (c === null || c === undefined ? '-' : String(c))).join(' | ')} |`)].join('\n');
}
