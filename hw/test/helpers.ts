import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EventEmitter } from 'node:events';

/** The source tree's hw/test (tsc does not copy fixtures to dist/). */
export const SRC_TEST_DIR = path.resolve(__dirname, '../../../hw/test');
export const FIXTURES = path.join(SRC_TEST_DIR, 'fixtures');
export const E1_SIM = path.resolve(__dirname, '../../scripts/e1-sim/e1-sim.js');

const children = new Set<ChildProcess>();

export function tmpDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `ccedge-hw-${prefix}-`));
}

export function rmDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until cond() is true (polling), or fails with what was awaited. */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Records every emission of an event. */
export function record<T extends unknown[]>(em: EventEmitter<any>, event: string): T[] {
  const out: T[] = [];
  em.on(event, (...args: unknown[]) => out.push(args as T));
  return out;
}

/**
 * A pty pair from socat whose two ends are symlinks we name (`link=`): the device path the
 * daemon opens is `a`, the peer (simulator, panel test) uses `b`. Killing socat removes the
 * links and hangs up both sides — an unplug; starting another with the same links is a replug.
 */
export class PtyPair {
  private constructor(
    readonly proc: ChildProcess,
    readonly a: string,
    readonly b: string,
  ) {}

  static async start(a: string, b: string): Promise<PtyPair> {
    const proc = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(proc);
    proc.on('exit', () => children.delete(proc));
    let err = '';
    proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    await until(() => /starting data transfer loop/.test(err) || proc.exitCode !== null, 'socat pty pair');
    if (proc.exitCode !== null) throw new Error(`socat failed: ${err}`);
    const ptys = [...err.matchAll(/PTY is (\/dev\/pts\/\d+)/g)].map((m) => m[1]);
    if (ptys.length !== 2 || !existsSync(a) || !existsSync(b)) throw new Error(`socat: no pty pair: ${err}`);
    return new PtyPair(proc, a, b);
  }

  /** Unplug: socat exits, both ptys hang up, the links disappear. */
  async stop(): Promise<void> {
    await killChild(this.proc);
  }
}

export async function killChild(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill(signal);
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

/** The E1 simulator as a child process, driven by commands on its stdin. */
export class E1Sim {
  private out = '';
  private constructor(readonly proc: ChildProcess) {
    proc.stdout?.on('data', (c: Buffer) => (this.out += c.toString()));
  }

  static async start(devicePath: string, args: string[] = []): Promise<E1Sim> {
    const proc = spawn(process.execPath, [E1_SIM, '--path', devicePath, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(proc);
    proc.on('exit', () => children.delete(proc));
    const sim = new E1Sim(proc);
    await until(() => sim.out.includes('ready ') || proc.exitCode !== null, 'e1-sim ready');
    if (proc.exitCode !== null) throw new Error(`e1-sim exited: ${sim.out}`);
    return sim;
  }

  get output(): string {
    return this.out;
  }

  /** Sends one command and waits for its `ok` (or fails on `error`). */
  async cmd(line: string): Promise<void> {
    const from = this.out.length;
    this.proc.stdin?.write(`${line}\n`);
    await until(() => this.out.slice(from).includes(`ok ${line}`) || this.out.slice(from).includes('error '), `e1-sim "${line}"`);
    if (!this.out.slice(from).includes(`ok ${line}`)) throw new Error(`e1-sim: ${this.out.slice(from)}`);
  }

  async stop(): Promise<void> {
    await killChild(this.proc);
  }
}

/** Kills whatever a failed test left running. */
export async function killAll(): Promise<void> {
  await Promise.all([...children].map((c) => killChild(c, 'SIGKILL')));
}
