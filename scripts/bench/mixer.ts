/**
 * The media joint's CPU per participant (mixer-load.ts in its own process, one per scenario):
 * conferences of 3, 6 and 16 parties, N concurrent 3-party calls, and 2-party calls in relay mode
 * for comparison. Per participant: µs of CPU per participant-tick (one 20 ms frame in, one out)
 * and % of one core.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { load, machine, ProcWindow, round, table, writeResult, type BenchResult } from './lib';

interface LoadLine {
  size: number;
  joints: number;
  mode: string;
  participants: number;
  wallS: number;
  ticks: number;
  expectedTicks: number;
  resyncs: number;
  framesOut: number;
  cpuUs: number;
  heapMb: number;
}

interface Row extends LoadLine {
  usPerParticipantTick: number;
  corePctPerParticipant: number;
  corePct: number;
  rssMb: number;
  loadAvg: [number, number, number];
}

const LOAD = path.join(__dirname, 'mixer-load.js');

function runLoad(size: number, joints: number, seconds: number, warmup: number): Promise<Row> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOAD, String(size), String(joints), String(seconds), String(warmup)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const win = new ProcWindow(child.pid ?? 0);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    let measured: ReturnType<ProcWindow['end']> | undefined;
    const poll = setInterval(() => {
      if (out.includes('\n') && !measured) measured = win.end();
    }, 50);
    child.once('exit', (code) => {
      clearInterval(poll);
      measured ??= win.end();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) {
        reject(new Error(`mixer load exited ${String(code)}: ${err.slice(-2000)}`));
        return;
      }
      const l = JSON.parse(line) as LoadLine;
      const corePct = (l.cpuUs / 1e6 / l.wallS) * 100;
      resolve({
        ...l,
        usPerParticipantTick: round(l.cpuUs / (l.ticks * l.participants), 2),
        // At the real rate (50 ticks/s), whether or not a loaded machine let the clock keep it.
        corePctPerParticipant: round(((l.cpuUs / (l.ticks * l.participants)) * 50) / 1e4, 4),
        corePct: round(corePct, 1),
        rssMb: measured.peakRssMb,
        loadAvg: measured.loadAvg,
      });
    });
  });
}

export async function runMixer(quick: boolean, log: (s: string) => void = () => undefined): Promise<BenchResult> {
  const seconds = quick ? 3 : 10;
  const warmup = quick ? 1 : 3;
  // Conference sizes with about 300 participants in all, so each figure is well above timer noise.
  const scenarios: Array<{ label: string; size: number; joints: number }> = [
    { label: 'relay (2 parties, untouched)', size: 2, joints: 150 },
    { label: 'conference of 3', size: 3, joints: 100 },
    { label: 'conference of 6', size: 6, joints: 50 },
    { label: 'conference of 16', size: 16, joints: 19 },
    { label: '3-party calls', size: 3, joints: 50 },
    { label: '3-party calls', size: 3, joints: 200 },
    { label: '3-party calls', size: 3, joints: quick ? 300 : 400 },
  ];
  const rows: Array<Row & { label: string }> = [];
  for (const s of scenarios) {
    const r = await runLoad(s.size, s.joints, seconds, warmup);
    rows.push({ ...r, label: s.label });
    log(`mixer ${s.label} × ${s.joints}: ${r.usPerParticipantTick} µs/participant-tick, ${r.corePctPerParticipant} % core/participant, ${r.corePct} % core, ticks ${r.ticks}/${r.expectedTicks}, load ${r.loadAvg.join(' ')}`);
  }
  const conf = (size: number): Row | undefined => rows.find((r) => r.size === size && r.joints === scenarios.find((s) => s.size === size)?.joints);
  const c3 = conf(3);
  const c6 = conf(6);
  const c16 = conf(16);
  const biggest = rows[rows.length - 1];
  const fmt = (r: Row | undefined): string => (r ? `${r.usPerParticipantTick} µs/participant-tick (${r.corePctPerParticipant} % of a core per participant)` : '-');
  const result: BenchResult = {
    bench: 'mixer',
    date: new Date().toISOString(),
    quick,
    method: `mixer-load.ts: K media joints of P parties on one real 20 ms MediaClock, each participant's port handing the joint one PCMU frame per tick (all talking at once) and a recording tap on every joint; no sockets, so this is the joint/mixer cost alone (decode, per-listener sum without own voice, saturate, encode, timelines). ${warmup} s warm-up, then the load process's own CPU (process.cpuUsage, user+system) over ${seconds} s; µs per participant-tick = CPU / (ticks × participants), % of a core per participant = that × 50 ticks/s; ticks below expected = the machine did not give the process enough CPU to keep 20 ms (the per-tick figure stays valid); load average sampled at the end of each row`,
    machine: machine(),
    rows,
    verdicts: [
      {
        target: 'mixer CPU per participant (conferences of 3 / 6 / 16)',
        measured: `3: ${fmt(c3)}; 6: ${fmt(c6)}; 16: ${fmt(c16)}; relay for comparison: ${fmt(rows[0])}; ${biggest.joints} concurrent 3-party calls: ${biggest.corePct} % of a core, ${biggest.ticks}/${biggest.expectedTicks} ticks`,
        met: null,
        loadAvg: load(),
      },
    ],
  };
  const md = [
    `### Media joint / mixer CPU (${result.date.slice(0, 16)}Z${quick ? ', quick' : ''})`,
    '',
    table(
      ['scenario', 'joints × parties', 'mode', 'µs CPU per participant-tick', '% of a core per participant', '% of a core in all', 'ticks / expected', 'clock resyncs', 'peak RSS MB', 'load avg'],
      rows.map((r) => [r.label, `${r.joints} × ${r.size}`, r.mode, r.usPerParticipantTick, r.corePctPerParticipant, r.corePct, `${r.ticks} / ${r.expectedTicks}`, r.resyncs, r.rssMb, r.loadAvg.join(' ')]),
    ),
  ].join('\n');
  writeResult(result, md);
  return result;
}
