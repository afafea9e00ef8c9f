import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';

const handedOut = new Set<number>();

/**
 * A TCP port free on 127.0.0.1, drawn from 61000–64999: above the kernel's ephemeral range
 * (32768–60999), so no outgoing connection takes it between this check and the broker's bind, and
 * apart from the e2e harness's 10000–19999. Never handed out twice in one process.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 61000 + Math.floor(Math.random() * 4000);
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found');
}

async function waitPort(port: number, up: boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (open === up) return;
    if (Date.now() > until) throw new Error(`mosquitto port ${port} did not become ${up ? 'open' : 'closed'}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A real mosquitto on a loopback port of its own, with persistence in `dir` (so cloud-side
 * subscribers' sessions survive a broker restart, as a production broker's would). `extra` lines
 * are appended to the listener (TLS).
 */
export class Mosquitto {
  private proc: ChildProcess | undefined;
  log = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly conf: string,
  ) {}

  static async start(dir: string, opts: { port?: number; extra?: string[] } = {}): Promise<Mosquitto> {
    const port = opts.port ?? (await freePort());
    const conf = path.join(dir, `mosquitto-${port}.conf`);
    const lines = [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      ...(opts.extra ?? []),
      'persistence true',
      `persistence_location ${dir}/`,
      `user ${userInfo().username}`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_dest stderr',
    ];
    writeFileSync(conf, `${lines.join('\n')}\n`);
    const m = new Mosquitto(port, dir, conf);
    await m.start();
    return m;
  }

  get running(): boolean {
    return !!this.proc;
  }

  async start(): Promise<void> {
    if (this.proc) return;
    const p = spawn('mosquitto', ['-c', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    this.proc = p;
    const exited = new Promise<never>((_, reject) => p.once('exit', (code) => reject(new Error(`mosquitto exited (${code}): ${this.log}`))));
    await Promise.race([waitPort(this.port, true), exited]);
  }

  /** Graceful stop (SIGTERM: the broker saves its persistence file). */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = undefined;
    await new Promise<void>((resolve) => {
      if (p.exitCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
    await waitPort(this.port, false);
  }
}
