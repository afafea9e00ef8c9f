/**
 * The media fork's cost on the box: N concurrent AudioHook sessions (fork-load.ts in its own
 * process) streaming stereo PCMU to a test endpoint in this process, over loopback. Per fork: % of
 * one core for framing, positions and WebSocket sends (the tap's copy into the rings included).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { TestAudioHookServer } from '../../media/test/helpers/audiohook-server';
import { load, machine, ProcWindow, round, table, writeResult, type BenchResult } from './lib';

interface LoadLine {
  sessions: number;
  wallS: number;
  cpuUs: number;
  bytesSent: number;
  framesDropped: number;
  samplesOverwritten: number;
  heapMb: number;
}

interface Row extends LoadLine {
  corePct: number;
  corePctPerFork: number;
  kbPerSPerFork: number;
  rssMb: number;
  loadAvg: [number, number, number];
}

const LOAD = path.join(__dirname, 'fork-load.js');

function runLoad(url: string, n: number, seconds: number, warmup: number): Promise<Row> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOAD, url, String(n), String(seconds), String(warmup)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const win = new ProcWindow(child.pid ?? 0);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.once('exit', (code) => {
      const measured = win.end();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) {
        reject(new Error(`fork load exited ${String(code)}: ${err.slice(-2000)}`));
        return;
      }
      const l = JSON.parse(line) as LoadLine;
      const corePct = (l.cpuUs / 1e6 / l.wallS) * 100;
      resolve({
        ...l,
        corePct: round(corePct, 1),
        corePctPerFork: round(corePct / l.sessions, 3),
        kbPerSPerFork: round(l.bytesSent / 1024 / l.sessions / (l.wallS + warmup), 1),
        rssMb: measured.peakRssMb,
        loadAvg: measured.loadAvg,
      });
    });
  });
}

export async function runFork(quick: boolean, log: (s: string) => void = () => undefined): Promise<BenchResult> {
  const seconds = quick ? 3 : 10;
  const warmup = quick ? 1 : 3;
  const server = await TestAudioHookServer.start('bench-key-0123');
  server.keepAudio = false;
  const rows: Row[] = [];
  try {
    for (const n of quick ? [1, 50] : [1, 50, 200]) {
      const r = await runLoad(server.url, n, seconds, warmup);
      rows.push(r);
      log(`fork × ${n}: ${r.corePct} % core (${r.corePctPerFork} % per fork), ${r.kbPerSPerFork} KB/s per fork, dropped ${r.framesDropped}, load ${r.loadAvg.join(' ')}`);
      server.sessions.splice(0);
    }
  } finally {
    await server.stop();
  }
  const big = rows[rows.length - 1];
  const result: BenchResult = {
    bench: 'fork',
    date: new Date().toISOString(),
    quick,
    method: `fork-load.ts: N AudioHook v2 sessions (media/speech/audiohook/client.ts) fed like a joint's tap (160 µ-law samples per side every 20 ms), framing stereo PCMU every 100 ms with positions, pinging every 5 s, to a ws endpoint in the bench process on loopback (it only counts the audio bytes; its CPU is not counted). ${warmup} s warm-up, then the load process's own CPU (process.cpuUsage) over ${seconds} s; load average at the end of each row`,
    machine: machine(),
    rows,
    verdicts: [
      {
        target: 'media fork CPU per forked call',
        measured: `${rows.map((r) => `${r.sessions}: ${r.corePctPerFork} % of a core per fork`).join('; ')}; ${big.sessions} forks: ${big.corePct} % of a core, ${big.framesDropped} frames dropped`,
        met: null,
        loadAvg: load(),
      },
    ],
  };
  const md = [
    `### Media fork (AudioHook) CPU (${result.date.slice(0, 16)}Z${quick ? ', quick' : ''})`,
    '',
    table(
      ['forks', '% of a core in all', '% of a core per fork', 'KB/s sent per fork', 'frames dropped', 'ring overruns (samples)', 'peak RSS MB', 'load avg'],
      rows.map((r) => [r.sessions, r.corePct, r.corePctPerFork, r.kbPerSPerFork, r.framesDropped, r.samplesOverwritten, r.rssMb, r.loadAvg.join(' ')]),
    ),
  ].join('\n');
  writeResult(result, md);
  return result;
}
