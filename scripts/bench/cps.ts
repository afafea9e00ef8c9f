/**
 * Call rate: sipp as the PBX places INVITE-100-200-ACK-(200 ms)-BYE calls at stepped rates
 * against the built daemon (demo config: every call is answered and queued with hold tone);
 * the knee is the highest rate with at most 0.1 % failed calls and no 503.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import sqlite3 from 'sqlite3';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runSipp, startDaemon, type DaemonHandle } from '../../test/e2e/harness';
import { load, machine, ProcWindow, round, table, writeResult, type BenchResult } from './lib';

export interface CpsStep {
  rate: number;
  calls: number;
  successful: number;
  failed: number;
  /** 503s the daemon sent (capacity), from its /metrics. */
  rejected503: number;
  achievedCps: number | null;
  /** sipp's INVITE→200 response time, average (ms). */
  avgSetupMs: number | null;
  daemonCpuPct: number;
  daemonRssMb: number;
  loadAvg: [number, number, number];
  /**
   * Seconds after sipp finished until the daemon's database had every call of the step closed
   * (state ended) and its call.ended event in the sync outbox: how far the call records lag
   * behind (each event is one transaction; transactions queued together share one COMMIT).
   */
  dbLagS: number | null;
  /** sipp's error lines (numbers replaced by N), counted. */
  failureReasons: Record<string, number>;
}

function count(stdout: string, label: string): number {
  // The last "cumulative" column of sipp's final screen.
  const all = [...stdout.matchAll(new RegExp(`${label}\\s*\\|\\s*\\d+\\s*\\|\\s*(\\d+)`, 'g'))];
  return all.length ? Number(all[all.length - 1][1]) : 0;
}

function lastMs(stdout: string, label: string): number | null {
  const all = [...stdout.matchAll(new RegExp(`${label}\\s*\\|\\s*[\\d:.]+\\s*\\|\\s*(\\d+):(\\d+):(\\d+):(\\d+)`, 'g'))];
  const m = all[all.length - 1];
  if (!m) return null;
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]) / 1000;
}

function achieved(stdout: string): number | null {
  const all = [...stdout.matchAll(/Call Rate\s*\|\s*[\d.]+ cps\s*\|\s*([\d.]+) cps/g)];
  return all.length ? Number(all[all.length - 1][1]) : null;
}

async function rejections503(daemon: DaemonHandle): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`).then((r) => r.text());
  let n = 0;
  for (const m of text.matchAll(/^ccedge_sip_rejections_total\{[^}]*status="503"[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/**
 * Calls the daemon has recorded as ended AND whose call.ended event is in the sync outbox (no cloud
 * is connected in this bench, so no outbox row leaves), read from its sqlite file (WAL: readers do
 * not block it).
 */
function endedCalls(dataDir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path.join(dataDir, 'ccedge.db'), sqlite3.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      const sql = "SELECT min((SELECT count(*) FROM calls WHERE state = 'ended'), (SELECT count(*) FROM sync_outbox WHERE type = 'call.ended')) AS n";
      db.get(sql, (e, row: { n: number } | undefined) => {
        db.close();
        if (e) reject(e);
        else resolve(row?.n ?? 0);
      });
    });
  });
}

/** Waits (up to 120 s) until the database holds `expected` ended calls; the seconds it took. */
async function dbLag(dataDir: string, expected: number): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < 120_000) {
    if ((await endedCalls(dataDir).catch(() => 0)) >= expected) return round((performance.now() - t0) / 1000, 1);
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

async function step(daemon: DaemonHandle, rate: number, seconds: number, endedBefore: number): Promise<CpsStep> {
  const calls = rate * seconds;
  const before503 = await rejections503(daemon);
  const win = new ProcWindow(daemon.pid);
  const errFile = path.join(tmpdir(), `ccedge-bench-sipp-${process.pid}-${rate}.log`);
  const r = await runSipp({
    scenario: 'uac_basic.xml',
    target: `127.0.0.1:${daemon.sipPort}`,
    calls,
    rate,
    limit: Math.max(rate * 3, 10),
    durationMs: 200,
    timeoutS: seconds * 4 + 30,
    extra: ['-trace_err', '-error_file', errFile],
  });
  const w = win.end();
  const successful = count(r.stdout, 'Successful call');
  const lag = await dbLag(daemon.dataDir, endedBefore + successful);
  if (!/Successful call/.test(r.stdout)) throw new Error(`sipp did not run (exit ${String(r.code)}): ${r.stderr.slice(-1000)}`);
  // Why calls failed: sipp's error lines, minus the date, counted.
  const reasons: Record<string, number> = {};
  if (existsSync(errFile)) {
    for (const line of readFileSync(errFile, 'utf8').split('\n')) {
      // Error lines start with a date; the lines after one are the message it quotes.
      const m = /^\d{4}-\d\d-\d\d\s+\S+\s+\S+:\s*(.*)$/.exec(line);
      if (!m || m[1].startsWith('The following events occurred')) continue;
      const why = m[1].replace(/'[^']*$/, '').replace(/[0-9a-f]{6,}[^ ]*/gi, 'X').replace(/\d+/g, 'N').slice(0, 160).trim();
      reasons[why] = (reasons[why] ?? 0) + 1;
    }
    rmSync(errFile, { force: true });
  }
  return {
    rate,
    calls,
    successful,
    failed: count(r.stdout, 'Failed call'),
    rejected503: (await rejections503(daemon)) - before503,
    achievedCps: achieved(r.stdout),
    avgSetupMs: lastMs(r.stdout, 'Response Time 1'),
    daemonCpuPct: Math.round(w.cpuPct),
    daemonRssMb: w.peakRssMb,
    loadAvg: w.loadAvg,
    failureReasons: reasons,
    dbLagS: lag,
  };
}

export async function runCps(quick: boolean, log: (s: string) => void = () => undefined): Promise<BenchResult> {
  // BENCH_CPS_RATES=200,300,400 runs only those steps (e.g. to measure the records lag alone).
  const asked = process.env.BENCH_CPS_RATES?.split(',').map(Number).filter((r) => Number.isInteger(r) && r > 0);
  const rates = asked?.length ? asked : quick ? [100, 300, 500] : [100, 200, 300, 400, 500, 600, 700, 800, 1000];
  const seconds = quick ? 3 : 10;
  const daemon = await startDaemon({ env: { CCEDGE_LOG_LEVEL: 'warn', CCEDGE_RTP_PORTS: '16000-19999', NODE_OPTIONS: process.env.BENCH_DAEMON_NODE_OPTIONS ?? '' } });
  const steps: CpsStep[] = [];
  try {
    for (const rate of rates) {
      const s = await step(daemon, rate, seconds, steps.reduce((n, x) => n + x.successful, 0));
      steps.push(s);
      log(`cps ${JSON.stringify(s)}`);
      if (s.failed / s.calls > 0.001 || s.rejected503 > 0 || s.successful < s.calls * 0.999) break;
    }
  } finally {
    await daemon.stop();
  }
  const clean = steps.filter((s) => s.failed / s.calls <= 0.001 && s.rejected503 === 0 && s.successful >= s.calls * 0.999);
  const knee = clean.length ? Math.max(...clean.map((s) => s.rate)) : 0;
  const lastTried = steps[steps.length - 1]?.rate ?? 0;
  const kneeStep = clean.find((s) => s.rate === knee);
  // Sustained: the call records (sqlite) keep up too — all closed within 2 s of the last call.
  const sustained = Math.max(0, ...clean.filter((s) => s.dbLagS !== null && s.dbLagS <= 2).map((s) => s.rate));
  const result: BenchResult = {
    bench: 'cps',
    date: new Date().toISOString(),
    quick,
    method: `sipp ${'uac_basic.xml'} (INVITE/100/200/ACK, 200 ms call, BYE; UDP on 127.0.0.1), ${seconds} s per step, demo config (calls queued with hold tone), log level warn`,
    machine: machine(),
    knee,
    sustained,
    kneeIsLimit: knee === lastTried && knee === rates[rates.length - 1],
    steps,
    verdicts: [
      {
        target: '≥500 SIP calls/s with <0.1 % failures',
        measured: `${knee} calls/s clean${knee === rates[rates.length - 1] ? ' (highest rate tried)' : ''}; daemon ${kneeStep?.daemonCpuPct ?? '-'} % CPU, call records ${kneeStep?.dbLagS ?? '-'} s behind at the knee`,
        met: quick ? null : knee >= 500,
        loadAvg: kneeStep?.loadAvg ?? load(),
      },
      {
        target: 'calls/s the call records keep up with (no stated target; ≥500 implied)',
        measured: `${sustained} calls/s with every call record closed within 2 s of the step's last call; at ${knee} calls/s the records were ${kneeStep?.dbLagS ?? '-'} s behind after ${seconds} s`,
        met: quick ? null : sustained >= 500,
        loadAvg: clean.find((s) => s.rate === sustained)?.loadAvg ?? load(),
      },
    ],
  };
  const md = [
    `### Call rate (${result.date.slice(0, 16)}Z${quick ? ', quick' : ''})`,
    '',
    table(
      ['calls/s asked', 'achieved', 'calls', 'ok', 'failed', '503', 'avg setup ms', 'daemon CPU %', 'daemon RSS MB', 'call records lag s', 'load avg'],
      steps.map((s) => [s.rate, s.achievedCps, s.calls, s.successful, s.failed, s.rejected503, s.avgSetupMs === null ? null : round(s.avgSetupMs, 2), s.daemonCpuPct, s.daemonRssMb, s.dbLagS, s.loadAvg.join(' ')]),
    ),
    '',
    '"call records lag": seconds after the last call of the step until the database had every call of the step closed and its call.ended event in the sync outbox; a growing lag means the sqlite writes fall behind the calls. Each event is one transaction (call row + call_events row + outbox row); transactions that queue up while one runs share one BEGIN IMMEDIATE…COMMIT, each in its own savepoint (gateway/store/db.ts).',
    '',
    `Sustained with call records keeping up (lag ≤ 2 s): **${sustained} calls/s**.`,
    '',
    `Knee: **${knee} calls/s** (highest step with ≤0.1 % failed calls and no 503${result.kneeIsLimit ? '; it is the highest rate tried' : ''}).`,
  ].join('\n');
  writeResult(result, md);
  return result;
}
