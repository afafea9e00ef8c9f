/**
 * Cloud sync: the outbox's append rate into sqlite and the drain of a backlog to a real mosquitto
 * (sync-drain.ts in its own process: SyncService + a subscriber
 * that checks every seq arrived). Its process's CPU and RSS are read from /proc while it runs.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { machine, ProcWindow, table, writeResult, type BenchResult } from './lib';

interface DrainLine {
  events: number;
  appendPerS: number;
  drainS: number;
  drainPerS: number;
  /** Until the subscriber had every event (null: not within 120 s after the drain). */
  deliveredS: number | null;
  drainRatePerS: number;
  maxInflight: number;
  received: number;
  distinctSeqs: number;
}

const DRAIN = path.join(__dirname, 'sync-drain.js');

function drain(events: number): Promise<{ line: DrainLine; proc: ReturnType<ProcWindow['end']> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DRAIN, String(events)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const win = new ProcWindow(child.pid ?? 0);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    let measured: ReturnType<ProcWindow['end']> | undefined;
    // /proc/<pid> disappears at exit: sample until the result line is printed.
    const poll = setInterval(() => {
      if (out.includes('\n') && !measured) measured = win.end();
    }, 50);
    child.once('exit', (code) => {
      clearInterval(poll);
      measured ??= win.end();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`drain bench exited ${String(code)}: ${err.slice(-2000)}`));
      else resolve({ line: JSON.parse(line) as DrainLine, proc: measured });
    });
  });
}

export async function runSync(quick: boolean, log: (s: string) => void = () => undefined): Promise<BenchResult> {
  const events = quick ? 10_000 : 100_000;
  const { line, proc } = await drain(events);
  log(`sync ${JSON.stringify(line)} cpu ${proc.cpuPct} rss ${proc.peakRssMb}`);
  const complete = line.received === events && line.distinctSeqs === events;
  const result: BenchResult = {
    bench: 'sync',
    date: new Date().toISOString(),
    quick,
    method: `${events} call.offered events appended to the sqlite outbox (one transaction each, 1000 in flight), then SyncService started against mosquitto on 127.0.0.1 (QoS 1, drainRatePerS ${line.drainRatePerS}, maxInflight ${line.maxInflight}; broker queue for the subscriber unlimited); drained = outbox depth 0 (every event PUBACKed); a persistent-session subscriber counts distinct seqs`,
    machine: machine(),
    drain: line,
    process: proc,
    verdicts: [
      {
        target: '100,000-event backlog drained in ≤30 s, nothing lost',
        measured: `${line.events} events drained (all PUBACKed) in ${line.drainS} s (${line.drainPerS}/s), all at the subscriber after ${line.deliveredS ?? '-'} s, ${line.distinctSeqs} distinct seqs received; append ${line.appendPerS} events/s`,
        met: quick ? null : line.drainS <= 30 && complete,
        loadAvg: proc.loadAvg,
      },
    ],
  };
  const md = [
    `### Cloud sync outbox (${result.date.slice(0, 16)}Z${quick ? ', quick' : ''})`,
    '',
    table(
      ['events', 'append events/s', 'drain s', 'drain events/s', 'all at subscriber s', 'received / distinct seqs', 'process CPU %', 'peak RSS MB', 'load avg'],
      [[line.events, line.appendPerS, line.drainS, line.drainPerS, line.deliveredS, `${line.received} / ${line.distinctSeqs}`, proc.cpuPct, proc.peakRssMb, proc.loadAvg.join(' ')]],
    ),
  ].join('\n');
  writeResult(result, md);
  return result;
}
