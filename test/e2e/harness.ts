import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const MAIN = path.join(ROOT, 'dist', 'app', 'main.js');
export const SIPP_DIR = path.join(ROOT, 'scripts', 'sipp');

const handedOut = new Set<number>();

/**
 * A port free on 127.0.0.1 for both UDP and TCP (SIP listens on both).
 * Drawn from 10000–19999: below the daemons' RTP ranges (20000+) and the kernel's ephemeral range
 * (32768+), where any outgoing connection (MQTT client, Chromium, fetch) could take a port between
 * this check and the daemon's bind — that race failed a clean-clone CI run with EADDRINUSE.
 * A port is never handed out twice in one test process.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 10000 + Math.floor(Math.random() * 10000);
    if (handedOut.has(port)) continue;
    if ((await tcpFree(port)) && (await udpFree(port))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found');
}

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export interface DaemonHandle {
  proc: ChildProcess;
  /** The daemon's own pid (differs from proc.pid under strace). */
  pid: number;
  sipPort: number;
  /** SIP over TLS (each daemon its own, so parallel daemons never fight over 5061). */
  sipTlsPort: number;
  httpPort: number;
  /** HTTPS (each daemon its own, so parallel daemons never fight over 8443). */
  httpsPort: number;
  dataDir: string;
  adminToken: string;
  logs: Array<Record<string, unknown>>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  api<T>(pathname: string): Promise<{ status: number; body: T }>;
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export interface DaemonOptions {
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  /** Run the daemon under `strace -f` recording every connect/sendto/sendmsg into this file. */
  straceFile?: string;
  /** Run on this config file as it is (a provisioned one); `config` is then ignored. */
  configFile?: string;
  /** Reuse a data dir (a restart); default: a new temporary one. */
  dataDir?: string;
  /** Reuse ports (a restart on the same addresses). */
  ports?: { sip: number; http: number; sipTls?: number; https?: number };
}

const ADMIN_TOKEN = 'e2e-admin-token-0123456789';

/**
 * Starts the built daemon (`node dist/app/main.js run`) on free ports with its own data dir.
 * When the ports were ours to choose and one was taken after all (another program bound it between the
 * check and the daemon's listen), it starts again on new ports rather than failing the test.
 */
export async function startDaemon(opts: DaemonOptions = {}): Promise<DaemonHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDaemonOnce(opts);
    } catch (err) {
      if (opts.ports || attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
    }
  }
}

async function startDaemonOnce(opts: DaemonOptions): Promise<DaemonHandle> {
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'ccedge-e2e-'));
  const sipPort = opts.ports?.sip ?? (await freePort());
  const httpPort = opts.ports?.http ?? (await freePort());
  const sipTlsPort = opts.ports?.sipTls ?? (await freePort());
  const httpsPort = opts.ports?.https ?? (await freePort());
  const rtpBase = 20000 + 2 * Math.floor(Math.random() * 4000);
  // CCEDGE_E2E_NODE_ARGS: extra node flags for the daemon (e.g. --cpu-prof) when chasing a stall.
  const args = [...(process.env.CCEDGE_E2E_NODE_ARGS?.split(' ').filter(Boolean) ?? []), MAIN, 'run'];
  if (opts.configFile) {
    args.push('--config', opts.configFile);
  } else if (opts.config) {
    const file = path.join(dataDir, 'ccedge.yaml');
    writeFileSync(file, YAML.stringify(opts.config));
    args.push('--config', file);
  }
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    CCEDGE_DATA_DIR: dataDir,
    CCEDGE_SIP_HOST: '127.0.0.1',
    CCEDGE_SIP_PORT: String(sipPort),
    CCEDGE_SIP_TLS_PORT: String(sipTlsPort),
    CCEDGE_HTTP_HOST: '127.0.0.1',
    CCEDGE_HTTP_PORT: String(httpPort),
    CCEDGE_HTTPS_PORT: String(httpsPort),
    CCEDGE_RTP_PORTS: `${rtpBase}-${rtpBase + 999}`,
    CCEDGE_ADMIN_TOKEN: ADMIN_TOKEN,
    CCEDGE_LOG_LEVEL: 'debug',
    ...opts.env,
  };
  const proc = opts.straceFile
    ? spawn('strace', ['-f', '-qq', '-e', 'trace=connect,sendto,sendmsg,sendmmsg', '-o', opts.straceFile, process.execPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  let buffer = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        entry = { nonJson: line };
      }
      logs.push(entry);
      for (const w of [...waiters]) {
        if (w.pred(entry)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(entry);
        }
      }
    }
  });
  let stderr = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 15000): Promise<Record<string, unknown>> => {
    const found = logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`log line not seen in ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
      waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`daemon exited (${String(code)}) before the expected log line; stderr: ${stderr.slice(-2000)}`));
      });
    });
  };

  // Ready means answering HTTP; log lines may be filtered by CCEDGE_LOG_LEVEL.
  let daemonPid = 0;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode}; stderr: ${stderr.slice(-2000)}`);
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then(
      (r) => (r.ok ? (r.json() as Promise<{ pid: number }>) : undefined),
      () => undefined,
    );
    if (health) {
      daemonPid = health.pid;
      break;
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`daemon not ready within 20 s; stderr: ${stderr.slice(-2000)}`);
    }
    await sleep(100);
  }
  return {
    proc,
    pid: daemonPid,
    sipPort,
    sipTlsPort,
    httpPort,
    httpsPort,
    dataDir,
    adminToken: ADMIN_TOKEN,
    logs,
    exited,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      // Signal the daemon itself (under strace, proc is strace, which passes on its exit code).
      if (proc.exitCode === null && proc.signalCode === null) process.kill(daemonPid || (proc.pid ?? 0), signal);
      return exited;
    },
    async api<T>(pathname: string) {
      const res = await fetch(`http://127.0.0.1:${httpPort}${pathname}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      return { status: res.status, body: (await res.json()) as T };
    },
  };
}

export interface SippResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** sipp's complaints about messages it did not expect (e.g. a BYE after the call ended). */
  unexpected: string[];
}

export interface SippOptions {
  scenario: string;
  target: string;
  localIp?: string;
  transport?: 'u1' | 't1';
  calls?: number;
  rate?: number;
  limit?: number;
  durationMs?: number;
  extra?: string[];
  timeoutS?: number;
}

/** Runs sipp as the PBX and resolves with its exit code (0: every call succeeded). */
export async function runSipp(o: SippOptions): Promise<SippResult> {
  const localPort = await freePort();
  const mediaPort = await freePort();
  const scenarioArgs = o.scenario.startsWith('-sn') ? o.scenario.split(' ') : ['-sf', path.join(SIPP_DIR, o.scenario)];
  const args = [
    o.target,
    ...scenarioArgs,
    '-i', o.localIp ?? '127.0.0.1',
    '-p', String(localPort),
    '-mi', o.localIp ?? '127.0.0.1',
    '-mp', String(mediaPort),
    '-t', o.transport ?? 'u1',
    '-m', String(o.calls ?? 1),
    '-r', String(o.rate ?? 10),
    '-l', String(o.limit ?? o.calls ?? 1),
    '-d', String(o.durationMs ?? 500),
    '-s', '2000',
    '-nostdin',
    '-timeout', `${o.timeoutS ?? 30}s`,
    '-timeout_error',
    '-max_recv_loops', '1000',
    ...(o.extra ?? []),
  ];
  return new Promise((resolve, reject) => {
    const proc = spawn('sipp', args, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    proc.once('error', reject);
    proc.once('exit', (code) => {
      const out = `${stdout}\n${stderr}`;
      // sipp's error lines start with a date; its screen counts dead-call and out-of-call messages.
      const unexpected = out.split('\n').filter((l) => /^\d{4}-\d\d-\d\d\s.*(Dead call|Aborting call|Unexpected)/i.test(l));
      for (const m of out.matchAll(/(\d+) (dead call|out-of-call) msg/g)) if (Number(m[1]) > 0) unexpected.push(m[0]);
      resolve({ code, stdout, stderr, unexpected });
    });
  });
}

export function sippFailure(r: SippResult): string {
  return `sipp exited ${String(r.code)}\n--- unexpected ---\n${r.unexpected.slice(0, 5).join('\n')}\n--- stderr ---\n${r.stderr.slice(-3000)}\n--- stdout ---\n${r.stdout.slice(-3000)}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `fn` returns a truthy value or the time runs out (this is waiting, not timing). */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 10000, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await sleep(stepMs);
  }
}

/** Runs the ccedge CLI from the built output. */
export function runCli(args: string[], env: Record<string, string>, opts: { cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** sipp exited 0 (every call as scripted) and saw no message it did not expect. */
export function assertSippOk(r: SippResult): void {
  if (r.code !== 0 || r.unexpected.length > 0) throw new Error(sippFailure(r));
}
