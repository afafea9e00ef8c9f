import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { GenConfig, MeasuredStats } from './relay-gen';

export interface GenSetup {
  placed: number;
  answered: number;
  failed: number;
  farAnswered: number;
  wallS: number;
}

/** The load generator process (relay-gen.js) driven over IPC. */
export class GenClient {
  private readonly inbox: Array<Record<string, unknown>> = [];
  private waiters: Array<() => void> = [];
  private stderr = '';

  private constructor(private readonly proc: ChildProcess) {
    proc.on('message', (m: Record<string, unknown>) => {
      this.inbox.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr?.setEncoding('utf8').on('data', (c: string) => (this.stderr = (this.stderr + c).slice(-4000)));
    proc.once('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static spawn(): GenClient {
    return new GenClient(fork(path.join(__dirname, 'relay-gen.js'), [], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] }));
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  private async next<T>(type: string, timeoutMs: number): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type || m.type === 'error');
      if (i >= 0) {
        const m = this.inbox.splice(i, 1)[0];
        if (m.type === 'error') throw new Error(`load generator: ${String(m.error)}`);
        return m as T;
      }
      if (this.proc.exitCode !== null) throw new Error(`load generator exited (${this.proc.exitCode}): ${this.stderr}`);
      if (Date.now() > end) throw new Error(`load generator: no ${type} within ${timeoutMs} ms; ${this.stderr}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 500);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async start(config: GenConfig): Promise<{ setup: GenSetup; baseline: MeasuredStats | null }> {
    this.proc.send({ type: 'start', config });
    return this.next('ready', 120_000 + (config.calls / config.setupRatePerS) * 2000);
  }

  async measure(seconds: number): Promise<MeasuredStats> {
    this.proc.send({ type: 'measure', seconds });
    return (await this.next<{ stats: MeasuredStats }>('measured', seconds * 1000 + 30_000)).stats;
  }

  async teardown(): Promise<{ byeOk: number; byeFailed: number; farByes: number; farInvites: number }> {
    this.proc.send({ type: 'teardown' });
    return (await this.next<{ teardown: { byeOk: number; byeFailed: number; farByes: number; farInvites: number } }>('done', 120_000)).teardown;
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}
