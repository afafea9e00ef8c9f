/**
 * Measures what a health sample costs and how it disturbs the event loop, worker vs inline:
 *   node dist/hw/tools/measure-health.js [samples=10] [dataDir=.]
 * A 1 ms interval timer runs beside the sampling; its worst lateness is the longest the event
 * loop was blocked (what an RTP relay timer or a SIP retransmit would have suffered).
 */
import { performance } from 'node:perf_hooks';
import { SYSTEM_CLOCK } from '../clock';
import { healthConfigSchema } from '../config';
import { SILENT_LOG } from '../log';
import { HealthMonitor } from '../health/health-monitor';

async function measure(mode: 'proc' | 'systeminformation' | 'systeminformation-inline', samples: number, dataDir: string): Promise<void> {
  const h = new HealthMonitor({ config: healthConfigSchema.parse({ source: mode }), dataDir, clock: SYSTEM_CLOCK, log: SILENT_LOG });
  await h.sampleNow(); // warm-up: worker start, si's first-call caches
  let last = performance.now();
  let worst = 0;
  const gaps: number[] = [];
  const tick = setInterval(() => {
    const n = performance.now();
    gaps.push(n - last);
    last = n;
  }, 1);
  const durations: number[] = [];
  const walls: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const s = await h.sampleNow();
    walls.push(performance.now() - t0);
    durations.push(s?.sample.durationMs ?? NaN);
    await new Promise((r) => setTimeout(r, 50));
  }
  clearInterval(tick);
  worst = Math.max(...gaps);
  const sorted = [...gaps].sort((a, b) => a - b);
  const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? 0;
  const avg = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
  const snap = h.snapshot();
  await h.close();
  console.log(
    `${mode.padEnd(24)} sample wall avg ${avg(walls).toFixed(1)} ms (max ${Math.max(...walls).toFixed(1)}), ` +
      `in-sampler avg ${avg(durations).toFixed(1)} ms; 1 ms timer lateness p99 ${p99.toFixed(1)} ms, worst ${worst.toFixed(1)} ms; ` +
      `monitorEventLoopDelay p99 at last sample ${snap?.process.eventLoopDelayMs.p99} ms, max ${snap?.process.eventLoopDelayMs.max} ms`,
  );
}

async function baseline(ms: number): Promise<void> {
  let last = performance.now();
  const gaps: number[] = [];
  const tick = setInterval(() => {
    const n = performance.now();
    gaps.push(n - last);
    last = n;
  }, 1);
  await new Promise((r) => setTimeout(r, ms));
  clearInterval(tick);
  const sorted = [...gaps].sort((a, b) => a - b);
  console.log(`idle   (no sampling, ${ms} ms): 1 ms timer lateness p99 ${(sorted[Math.floor(sorted.length * 0.99)] ?? 0).toFixed(1)} ms, worst ${Math.max(...gaps).toFixed(1)} ms`);
}

async function main(): Promise<void> {
  const samples = Number(process.argv[2] ?? 10);
  const dataDir = process.argv[3] ?? '.';
  await baseline(5000);
  await measure('proc', samples, dataDir);
  await measure('systeminformation', samples, dataDir);
  await measure('systeminformation-inline', samples, dataDir);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
