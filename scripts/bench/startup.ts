/**
 * Startup: from exec of `node dist/app/main.js run` to the first SIP OPTIONS answered 200
 * (polled every 10 ms over UDP), with a new data dir (database created) and again with the same
 * one (a restart). RSS when ready.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, MAIN } from '../../test/e2e/harness';
import { load, machine, memoryMb, percentile, round, sleep, table, writeResult, type BenchResult } from './lib';

function options(port: number, localPort: number, n: number): Buffer {
  return Buffer.from(
    [
      `OPTIONS sip:ccedge@127.0.0.1:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK-bench-${n}-${Date.now()}`,
      'Max-Forwards: 70',
      `From: <sip:bench@127.0.0.1:${localPort}>;tag=bench${n}`,
      `To: <sip:ccedge@127.0.0.1:${port}>`,
      `Call-ID: startup-${n}-${Date.now()}@bench`,
      `CSeq: ${n} OPTIONS`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

async function once(dataDir: string): Promise<{ readyMs: number; rssMb: number }> {
  const sipPort = await freePort();
  const httpPort = await freePort();
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const localPort = sock.address().port;
  let answered = false;
  sock.on('message', (m) => {
    if (/^SIP\/2\.0 200/.test(m.toString('latin1', 0, 16))) answered = true;
  });
  const t0 = performance.now();
  const proc = spawn(process.execPath, [MAIN, 'run'], {
    env: { ...process.env, CCEDGE_DATA_DIR: dataDir, CCEDGE_SIP_HOST: '127.0.0.1', CCEDGE_SIP_PORT: String(sipPort), CCEDGE_HTTP_HOST: '127.0.0.1', CCEDGE_HTTP_PORT: String(httpPort), CCEDGE_RTP_PORTS: '16000-19999', CCEDGE_ADMIN_TOKEN: 'bench-admin-token-0123456789', CCEDGE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let n = 0;
  try {
    while (!answered) {
      if (proc.exitCode !== null) throw new Error(`daemon exited ${proc.exitCode}`);
      if (performance.now() - t0 > 30_000) throw new Error('no OPTIONS answer in 30 s');
      sock.send(options(sipPort, localPort, ++n), sipPort, '127.0.0.1');
      await sleep(10);
    }
    const readyMs = performance.now() - t0;
    return { readyMs: round(readyMs), rssMb: memoryMb(proc.pid ?? 0).rss };
  } finally {
    sock.close();
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

export async function runStartup(quick: boolean, log: (s: string) => void = () => undefined): Promise<BenchResult> {
  const runs = quick ? 2 : 5;
  const fresh: Array<{ readyMs: number; rssMb: number }> = [];
  const restart: Array<{ readyMs: number; rssMb: number }> = [];
  const loadBefore = load();
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(path.join(tmpdir(), 'ccedge-bench-startup-'));
    try {
      fresh.push(await once(dir));
      restart.push(await once(dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const med = (xs: Array<{ readyMs: number }>): number => percentile(xs.map((x) => x.readyMs).sort((a, b) => a - b), 50);
  log(`startup fresh ${fresh.map((x) => x.readyMs).join(',')} ms; restart ${restart.map((x) => x.readyMs).join(',')} ms`);
  const result: BenchResult = {
    bench: 'startup',
    date: new Date().toISOString(),
    quick,
    method: `exec of node dist/app/main.js run (demo config, log level warn) until the first SIP OPTIONS over UDP is answered 200 (polled every 10 ms); ${runs} runs each with a new data dir and a restart on it`,
    machine: machine(),
    fresh,
    restart,
    medianFreshMs: med(fresh),
    medianRestartMs: med(restart),
    verdicts: [
      {
        target: 'startup: exec to first OPTIONS answered (no target; reported)',
        measured: `median ${med(fresh)} ms with a new data dir, ${med(restart)} ms on restart; RSS ${fresh[0]?.rssMb} MB when ready`,
        met: null,
        loadAvg: load(),
      },
    ],
  };
  const md = [
    `### Startup (${result.date.slice(0, 16)}Z${quick ? ', quick' : ''}; load avg before ${loadBefore.join(' ')})`,
    '',
    table(['data dir', 'runs (ms)', 'median ms', 'RSS when ready MB'], [
      ['new', fresh.map((x) => x.readyMs).join(', '), med(fresh), fresh.map((x) => x.rssMb).join(', ')],
      ['restart', restart.map((x) => x.readyMs).join(', '), med(restart), restart.map((x) => x.rssMb).join(', ')],
    ]),
  ].join('\n');
  writeResult(result, md);
  return result;
}
