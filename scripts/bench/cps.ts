/**
 * Call-rate benchmark: starts the built daemon, has sipp (as the PBX) place INVITE-200-ACK-BYE
 * calls at increasing rates, and reports the highest rate with no failed call.
 * Run: npm run bench [-- --quick]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { runSipp, startDaemon, type DaemonHandle } from '../../test/e2e/harness';

interface Step {
  rate: number;
  calls: number;
  successful: number;
  failed: number;
  rejected503: number;
  avgSetupMs: number | null;
  daemonCpuPct: number;
  wallS: number;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
}

const CLK_TCK = 100;

function count(stdout: string, label: string): number {
  const m = new RegExp(`${label}\\s*\\|\\s*\\d+\\s*\\|\\s*(\\d+)`).exec(stdout);
  return m ? Number(m[1]) : 0;
}

function avgSetupMs(stdout: string): number | null {
  const all = [...stdout.matchAll(/Response Time 1\s*\|\s*[\d:.]+\s*\|\s*(\d+):(\d+):(\d+):(\d+)/g)];
  const m = all[all.length - 1];
  if (!m) return null;
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]) / 1000;
}

async function step(daemon: DaemonHandle, rate: number, seconds: number): Promise<Step> {
  const calls = rate * seconds;
  const pid = daemon.proc.pid ?? 0;
  const before = cpuTicks(pid);
  const t0 = process.hrtime.bigint();
  const r = await runSipp({
    scenario: 'uac_basic.xml',
    target: `127.0.0.1:${daemon.sipPort}`,
    calls,
    rate,
    limit: Math.max(rate * 2, 10),
    durationMs: 200,
    timeoutS: seconds * 4 + 30,
    extra: ['-trace_err', '-error_file', '/dev/null'],
  });
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = ((cpuTicks(pid) - before) / CLK_TCK / wallS) * 100;
  return {
    rate,
    calls,
    successful: count(r.stdout, 'Successful call'),
    failed: count(r.stdout, 'Failed call'),
    rejected503: 0,
    avgSetupMs: avgSetupMs(r.stdout),
    daemonCpuPct: Math.round(cpu),
    wallS: Math.round(wallS * 10) / 10,
  };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const rates = quick ? [20, 50, 100] : [20, 50, 100, 150, 200, 300, 400, 500];
  const seconds = quick ? 5 : 10;
  const daemon = await startDaemon({
    env: { CCEDGE_LOG_LEVEL: 'warn', CCEDGE_RTP_PORTS: '40000-49999' },
  });
  const steps: Step[] = [];
  try {
    for (const rate of rates) {
      const s = step(daemon, rate, seconds);
      const result = await s;
      const rejected = await daemon.api<{ calls: Array<{ sipStatus: number | null }> }>('/api/v1/calls?state=failed&limit=10000');
      result.rejected503 = rejected.body.calls.filter((c) => c.sipStatus === 503).length - steps.reduce((n, x) => n + x.rejected503, 0);
      steps.push(result);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      if (result.failed / result.calls > 0.001 || result.rejected503 > 0) break;
    }
  } finally {
    await daemon.stop();
  }
  const clean = steps.filter((s) => s.failed === 0 && s.rejected503 === 0 && s.successful === s.calls);
  const best = clean.length ? Math.max(...clean.map((s) => s.rate)) : 0;
  const result = {
    bench: 'cps',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    method: `sipp uac_basic.xml (INVITE/100/200/ACK, 200 ms call with RTP tone, BYE), ${seconds} s per step, UDP on 127.0.0.1, demo config`,
    highestCleanRate: best,
    steps,
  };
  const dir = path.join(__dirname, '..', '..', '..', 'scripts', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `cps${quick ? '-quick' : ''}.json`), `${JSON.stringify(result, null, 2)}\n`);
  const md = [
    `### cps (${result.date.slice(0, 10)}, ${result.machine.cpus} cores, Node ${result.machine.node})`,
    '',
    '| calls/s | calls | ok | failed | 503 | avg setup ms | daemon CPU % |',
    '|---|---|---|---|---|---|---|',
    ...steps.map((s) => `| ${s.rate} | ${s.calls} | ${s.successful} | ${s.failed} | ${s.rejected503} | ${s.avgSetupMs ?? '-'} | ${s.daemonCpuPct} |`),
    '',
    `Highest rate with no failure: **${best} calls/s**.`,
    '',
  ].join('\n');
  writeFileSync(path.join(dir, `cps${quick ? '-quick' : ''}.md`), md);
  process.stdout.write(md);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
