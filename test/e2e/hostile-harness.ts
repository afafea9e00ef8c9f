import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, type ReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OptionsProber, type ProbeStats } from './sip-probe';
import type { DaemonHandle } from './harness';

/**
 * What a site would notice while the box is attacked, measured from outside the daemon: the PBX's
 * trunk OPTIONS (round trip of each), the admin API (round trip of each GET), and the hardware
 * watchdog (a FIFO standing for /dev/watchdog: the gap between feeds is what a real watchdog
 * would time out on).
 */

/** A FIFO as the watchdog device; the reader notes when each feed arrives. */
export class WatchdogFifo {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'ccedge-hostile-wd-'));
  readonly path = path.join(this.dir, 'watchdog');
  private stream: ReadStream | undefined;
  private feeds: number[] = [];
  private magicClose = false;

  constructor() {
    execFileSync('mkfifo', [this.path]);
  }

  /** Opens the read end (it completes once the daemon opens the write end). */
  start(): void {
    this.stream = createReadStream(this.path);
    this.stream.on('data', (chunk: Buffer | string) => {
      const now = performance.now();
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      for (const b of buf) {
        this.feeds.push(now);
        if (b === 0x56) this.magicClose = true;
      }
    });
    this.stream.on('error', () => undefined);
  }

  get fed(): number {
    return this.feeds.length;
  }

  get closedCleanly(): boolean {
    return this.magicClose;
  }

  /** Longest time without a feed in [from, to] (performance.now() times), counting the window's edges. */
  maxGapMs(from: number, to: number = performance.now()): number {
    const inside = this.feeds.filter((t) => t >= from && t <= to);
    let prev = from;
    let worst = 0;
    for (const t of inside) {
      worst = Math.max(worst, t - prev);
      prev = t;
    }
    return Math.round(Math.max(worst, to - prev));
  }

  close(): void {
    this.stream?.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Times GET /api/v1/calls with the admin token at a fixed rate. */
export class AdminProber {
  private timer: NodeJS.Timeout | undefined;
  private readonly rtts: number[] = [];
  private failed = 0;
  private inFlight = 0;

  constructor(private readonly daemon: DaemonHandle, private readonly intervalMs = 250) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.inFlight >= 8) return;
      this.inFlight++;
      const t0 = performance.now();
      fetch(`http://127.0.0.1:${this.daemon.httpPort}/api/v1/calls`, { headers: { authorization: `Bearer ${this.daemon.adminToken}` }, signal: AbortSignal.timeout(10_000) })
        .then(async (r) => {
          await r.arrayBuffer();
          if (r.status === 200) this.rtts.push(performance.now() - t0);
          else this.failed++;
        })
        .catch(() => this.failed++)
        .finally(() => this.inFlight--);
    }, this.intervalMs);
  }

  async stop(): Promise<{ answered: number; failed: number; p99Ms: number; maxMs: number }> {
    if (this.timer) clearInterval(this.timer);
    for (let i = 0; i < 200 && this.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 50));
    const s = [...this.rtts].sort((a, b) => a - b);
    const p99 = s.length ? s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)] : Number.NaN;
    return { answered: s.length, failed: this.failed, p99Ms: Math.round(p99 * 10) / 10, maxMs: Math.round((s[s.length - 1] ?? Number.NaN) * 10) / 10 };
  }
}

export interface UnderAttack<T> {
  result: T;
  options: ProbeStats;
  admin: { answered: number; failed: number; p99Ms: number; maxMs: number };
  watchdogMaxGapMs: number;
}

/**
 * Runs `attack` while the trunk's OPTIONS (from `trunkIp`), the admin API and the watchdog are
 * watched; returns what each of them saw.
 */
export async function underAttack<T>(daemon: DaemonHandle, wd: WatchdogFifo, trunkIp: string, attack: () => Promise<T>): Promise<UnderAttack<T>> {
  const prober = new OptionsProber({ port: daemon.sipPort, fromIp: trunkIp, intervalMs: 100, deadlineMs: 5000 });
  const admin = new AdminProber(daemon);
  await prober.start();
  admin.start();
  const from = performance.now();
  let result: T;
  try {
    result = await attack();
  } finally {
    // A last second of probing, so a stall at the attack's end is seen too.
    await new Promise((r) => setTimeout(r, 1000));
  }
  const watchdogMaxGapMs = wd.maxGapMs(from);
  return { result, options: await prober.stop(), admin: await admin.stop(), watchdogMaxGapMs };
}

export function describeFigures(label: string, u: UnderAttack<unknown>): string {
  const o = u.options;
  return `${label}: trunk OPTIONS ${o.answered}/${o.sent} answered, p50 ${o.p50Ms} ms, p99 ${o.p99Ms} ms, max ${o.maxMs} ms; admin API p99 ${u.admin.p99Ms} ms (${u.admin.failed} failed); watchdog max gap ${u.watchdogMaxGapMs} ms`;
}

/** A real watchdog would be set well above the feed interval; a gap past this is a miss. */
export const WATCHDOG_INTERVAL_MS = 200;
export const WATCHDOG_GAP_LIMIT_MS = 1000;

/**
 * The bar for every attack: the trunk's OPTIONS all answered within 1 s, the admin API
 * answering within 1 s, the watchdog never starved. Prints the figures (and keeps them in `log`).
 */
export function assertUnharmed(label: string, u: UnderAttack<unknown>, log?: string[]): void {
  const line = describeFigures(label, u);
  log?.push(line);
  console.log(`      ${line}`);
  assert.equal(u.options.lost, 0, `${label}: trunk OPTIONS unanswered`);
  assert.equal(u.options.over1s, 0, `${label}: trunk OPTIONS answered later than 1 s`);
  assert.ok(u.options.answered >= 10, `${label}: too few probes (${u.options.answered})`);
  assert.equal(u.admin.failed, 0, `${label}: admin API requests failed`);
  assert.ok(u.admin.maxMs < 1000, `${label}: admin API took ${u.admin.maxMs} ms`);
  assert.ok(u.watchdogMaxGapMs <= WATCHDOG_GAP_LIMIT_MS, `${label}: watchdog not fed for ${u.watchdogMaxGapMs} ms`);
}
