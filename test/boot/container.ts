/**
 * A booted appliance for the boot test: a root directory run by `systemd-nspawn -b` with systemd as
 * PID 1, in a network namespace the test makes. The namespace has one veth to the host (a /30 of
 * 10.78.X.0, no default route), so the box's addresses are reachable from this host only, and it
 * outlives the container's reboots (nspawn joins it with --network-namespace-path).
 *
 * The host here runs no systemd (no system bus, no machined): nspawn runs with --register=no and
 * --keep-unit (it stays in the test's cgroup instead of asking the bus for a scope), so
 * `systemctl -M` and `machinectl` have nothing to talk to; commands run in the container's
 * namespaces with nsenter instead, against the container's own systemd.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The nspawn exit status when the container's systemd rebooted (systemd-nspawn(1)). */
export const NSPAWN_REBOOT = 133;

const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function sh(cmd: string, args: string[], timeoutMs = 30_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && code === -1 ? err.message : '') });
    });
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class BootContainer {
  readonly netns: string;
  readonly machine: string;
  /** The host's end of the veth. */
  readonly hostAddress: string;
  /** The appliance's address (inside the namespace). */
  readonly boxAddress: string;
  private readonly vethHost: string;
  private readonly vethBox: string;
  private proc: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private output = '';
  /** Host pid of the container's PID 1 (systemd) of the current boot. */
  leader = 0;
  boots = 0;

  constructor(
    readonly root: string,
    x: number = 100 + Math.floor(Math.random() * 150),
  ) {
    this.netns = `ccboot${x}`;
    this.machine = `ccedge-boot-${x}`;
    this.vethHost = `ccbtA${x}`;
    this.vethBox = `ccbtB${x}`;
    this.hostAddress = `10.78.${x}.1`;
    this.boxAddress = `10.78.${x}.2`;
  }

  async createNetwork(): Promise<void> {
    await this.removeNetwork(); // left over by an earlier, killed run with the same number
    await must('ip', ['netns', 'add', this.netns]);
    await must('ip', ['link', 'add', this.vethHost, 'type', 'veth', 'peer', 'name', this.vethBox]);
    await must('ip', ['link', 'set', this.vethBox, 'netns', this.netns]);
    await must('ip', ['addr', 'add', `${this.hostAddress}/30`, 'dev', this.vethHost]);
    await must('ip', ['link', 'set', this.vethHost, 'up']);
    await must('ip', ['-n', this.netns, 'addr', 'add', `${this.boxAddress}/30`, 'dev', this.vethBox]);
    await must('ip', ['-n', this.netns, 'link', 'set', this.vethBox, 'up']);
    await must('ip', ['-n', this.netns, 'link', 'set', 'lo', 'up']);
  }

  async removeNetwork(): Promise<void> {
    await sh('ip', ['netns', 'del', this.netns]);
    await sh('ip', ['link', 'del', this.vethHost]);
  }

  /** nspawn's console output of every boot so far (systemd's own status lines, nspawn's errors). */
  consoleOutput(): string {
    return this.output;
  }

  /** Starts the container and waits until its systemd has finished booting. */
  async boot(timeoutMs = 120_000): Promise<string> {
    if (this.proc) throw new Error('the container is already running');
    this.boots++;
    this.output += `--- boot ${this.boots}\n`;
    const args = ['-D', this.root, '-b', '--register=no', '--keep-unit', '-M', this.machine, `--network-namespace-path=/run/netns/${this.netns}`, '--console=pipe'];
    const p = spawn('systemd-nspawn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    p.stdout?.setEncoding('utf8').on('data', (c: string) => (this.output += c));
    p.stderr?.setEncoding('utf8').on('data', (c: string) => (this.output += c));
    this.exited = new Promise((resolve) =>
      p.once('exit', (code) => {
        this.proc = undefined;
        this.leader = 0;
        this.cleanNspawnState();
        resolve(code);
      }),
    );
    const deadline = Date.now() + timeoutMs;
    while (!this.leader) {
      if (!this.proc) throw new Error(`systemd-nspawn exited (${await this.exited}):\n${this.output.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`no PID 1 under systemd-nspawn within ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
      this.leader = childOf(p.pid ?? 0) ?? 0;
      if (!this.leader) await sleep(100);
    }
    // `is-system-running --wait` returns when the boot transaction is done: running, or degraded
    // when some unit failed (the test then says which).
    for (;;) {
      const r = await this.exec(['systemctl', 'is-system-running', '--wait'], Math.max(1000, deadline - Date.now()));
      const state = r.stdout.trim();
      if (['running', 'degraded'].includes(state)) return state;
      if (Date.now() > deadline) throw new Error(`the container did not finish booting: ${state} ${r.stderr}`);
      await sleep(200); // "Failed to connect to bus" until PID 1 has its private socket
    }
  }

  /** A command inside the container (its mount, pid, net, uts and ipc namespaces), with a clean environment. */
  exec(args: string[], timeoutMs = 60_000): Promise<Ran> {
    if (!this.leader) return Promise.resolve({ code: -1, stdout: '', stderr: 'the container is not running' });
    return sh('nsenter', ['-t', String(this.leader), '-m', '-u', '-i', '-n', '-p', '-r', '-w', '--', 'env', '-i', `PATH=${CONTAINER_PATH}`, 'HOME=/root', 'LANG=C.UTF-8', ...args], timeoutMs);
  }

  /** `systemctl show UNIT -p …` as a record. */
  async unit(name: string, props: readonly string[]): Promise<Record<string, string>> {
    const r = await this.exec(['systemctl', 'show', name, ...props.flatMap((p) => ['-p', p])]);
    if (r.code !== 0) throw new Error(`systemctl show ${name}: ${r.stderr}`);
    return Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  /** Resolves with nspawn's exit status when the container stops by itself (poweroff, reboot). */
  async waitExit(timeoutMs: number): Promise<number | null> {
    if (!this.exited) throw new Error('the container was never started');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the container did not stop within ${timeoutMs} ms`)), timeoutMs)));
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Powers the container off (nspawn turns SIGTERM into an orderly shutdown); kills it after a grace period. */
  async stop(graceMs = 30_000): Promise<void> {
    const p = this.proc;
    if (!p || !this.exited) return;
    p.kill('SIGTERM');
    try {
      await this.waitExit(graceMs);
    } catch {
      // PID 1 of a pid namespace takes every process in it along when killed.
      if (this.leader) process.kill(this.leader, 'SIGKILL');
      p.kill('SIGKILL');
      await this.waitExit(10_000).catch(() => undefined);
    }
  }

  /**
   * nspawn keeps per-machine directories under /run/systemd/nspawn and refuses to remove them
   * itself when /run is not a tmpfs (as on this host: "Attempted to remove disk file system").
   */
  private cleanNspawnState(): void {
    for (const d of ['propagate', 'unix-export']) rmSync(path.join('/run/systemd/nspawn', d, this.machine), { recursive: true, force: true });
  }

  /** Stops the container and removes the network and the root copy (also after a failure). */
  async destroy(): Promise<void> {
    try {
      await this.stop();
    } finally {
      this.cleanNspawnState();
      await this.removeNetwork();
      rmSync(this.root, { recursive: true, force: true });
    }
  }
}

/**
 * nspawn's container PID 1 as seen from the host: its child in another pid namespace (nspawn's
 * short-lived "outer child" shares ours and exits once the inner one runs).
 */
function childOf(pid: number): number | undefined {
  const ours = readlinkSync('/proc/self/ns/pid');
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) after the parenthesised command name, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && readlinkSync(`/proc/${name}/ns/pid`) !== ours) return Number(name);
    } catch {
      // the process went away while we looked
    }
  }
  return undefined;
}
