import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { copyFileSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildBinary, ROOT, type BuildResult } from '../build-binary';

export { freePort, runSipp, assertSippOk, sleep, eventually } from '../../test/e2e/harness';

let built: Promise<BuildResult> | undefined;
const versions = new Map<string, Promise<BuildResult>>();

/** The binary of this tree (built once per test run; skipped when dist/bin/ccedge is fresh). */
export function ensureBinary(): Promise<BuildResult> {
  built ??= buildBinary({ log: () => undefined });
  return built;
}

/** A binary that calls itself VERSION (the same code), kept under dist/bin/test-<version>/. */
export function binaryWithVersion(version: string): Promise<BuildResult> {
  let p = versions.get(version);
  if (!p) {
    p = buildBinary({ version, out: path.resolve(__dirname, '..', '..', 'bin', `test-${version}`, 'ccedge'), log: () => undefined });
    versions.set(version, p);
  }
  return p;
}

const scratch: string[] = [];

/** A scratch directory outside the repository (no node_modules above it); removed after the run. */
export function scratchDir(prefix: string): string {
  const dir = realpathSync(mkdtempSync(path.join(tmpdir(), `ccedge-img-${prefix}-`)));
  scratch.push(dir);
  return dir;
}

// Root-level hook: the scratch dirs hold 100+ MB binaries each. CCEDGE_KEEP_TEST_DIRS=1 keeps them.
after(() => {
  if (process.env.CCEDGE_KEEP_TEST_DIRS) return;
  for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
});

export function copyBinary(file: string, dir: string, name = 'ccedge'): string {
  const dest = path.join(dir, name);
  copyFileSync(file, dest);
  return dest;
}

/** Environment without anything that would let the binary find this repository's modules. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8' };
  return { ...env, ...extra };
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

/** Sends SIP OPTIONS over UDP until a final response comes; resolves with its first line. */
export async function sipOptions(port: number, timeoutMs = 10_000, host = '127.0.0.1'): Promise<string> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const local = sock.address().port;
  const deadline = Date.now() + timeoutMs;
  try {
    return await new Promise<string>((resolve, reject) => {
      let n = 0;
      const send = (): void => {
        if (Date.now() > deadline) {
          clearInterval(timer);
          reject(new Error(`no answer to OPTIONS on ${host}:${port} within ${timeoutMs} ms`));
          return;
        }
        n++;
        const branch = `z9hG4bK-img-${process.pid}-${n}`;
        const msg = [
          `OPTIONS sip:ccedge@${host}:${port} SIP/2.0`,
          `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=${branch};rport`,
          'Max-Forwards: 70',
          `From: <sip:probe@127.0.0.1>;tag=img${n}`,
          `To: <sip:ccedge@${host}>`,
          `Call-ID: img-probe-${process.pid}-${n}@127.0.0.1`,
          `CSeq: ${n} OPTIONS`,
          `Contact: <sip:probe@127.0.0.1:${local}>`,
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n');
        sock.send(msg, port, host);
      };
      sock.on('message', (m) => {
        const first = m.toString('utf8').split('\r\n')[0];
        if (/^SIP\/2\.0 [2-6]\d\d/.test(first)) {
          clearInterval(timer);
          resolve(first);
        }
      });
      const timer = setInterval(send, 50);
      send();
    });
  } finally {
    sock.close();
  }
}

export interface BinDaemon {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** Starts `<bin> run` in `cwd` with the given environment; output is collected. */
export function spawnDaemon(bin: string, args: string[], opts: { cwd: string; env: Record<string, string> }): BinDaemon {
  const proc = spawn(bin, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    out: () => out,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Versions around package.json's, for bundles: newer, newer still, and older. */
export function nextVersions(): { current: string; next: string; later: string; older: string } {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const [maj, min] = pkg.version.split('.').map(Number);
  return { current: pkg.version, next: `${maj}.${min + 1}.0`, later: `${maj}.${min + 2}.0`, older: '0.0.1' };
}
