/**
 * `ccedge update supervise [-- RUN-ARGS]`: what the systemd unit does, as a small process for
 * tests and for hosts without systemd (containers):
 *   before every start: `<root>/committed/ccedge update boot`   (ExecStartPre, the boot counter)
 *   start:              `<root>/current/ccedge run RUN-ARGS`     (ExecStart, link resolved now)
 *   on exit:            restart after `restartSec` unless the exit was clean (Restart=on-failure);
 *                       exit 75 is a requested restart (RestartForceExitStatus=75)
 *   SIGHUP:             stop the daemon and start again (`ccedge update apply --restart auto`)
 *   SIGTERM/SIGINT:     stop the daemon and exit with its code
 * It writes `<root>/supervisor.pid` and JSON lines (`svc: "ccedge-supervisor"`) on stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT_RESTART } from './restart';
import type { UpdateSettings } from './settings';

export async function supervise(settings: UpdateSettings, runArgs: string[], opts: { restartSec?: number; maxRestarts?: number } = {}): Promise<number> {
  const pidFile = path.join(settings.root, 'supervisor.pid');
  writeFileSync(pidFile, `${process.pid}\n`);
  const say = (msg: string, extra: Record<string, unknown> = {}): void => {
    process.stdout.write(`${JSON.stringify({ svc: 'ccedge-supervisor', time: new Date().toISOString(), msg, ...extra })}\n`);
  };
  let child: ChildProcess | undefined;
  let stopping = false;
  let forced = false;
  const onTerm = (): void => {
    stopping = true;
    child?.kill('SIGTERM');
  };
  const onHup = (): void => {
    forced = true;
    say('restart requested (SIGHUP)');
    child?.kill('SIGTERM');
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  process.on('SIGHUP', onHup);
  const exec = (file: string, args: string[]): Promise<number> =>
    new Promise((resolve) => {
      const p = spawn(file, args, { stdio: 'inherit' });
      child = p;
      p.once('error', (err) => {
        say('start failed', { file, error: err.message });
        resolve(127);
      });
      p.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
    });
  let restarts = 0;
  let last = 0;
  try {
    for (;;) {
      const pre = await exec(path.join(settings.root, 'committed', 'ccedge'), ['update', 'boot']);
      if (pre !== 0) say('boot check failed', { code: pre });
      forced = false;
      say('starting', { slot: safeReadlink(path.join(settings.root, 'current')) });
      last = pre === 0 ? await exec(path.join(settings.root, 'current', 'ccedge'), ['run', ...runArgs]) : pre;
      child = undefined;
      say('exited', { code: last });
      if (stopping) return last;
      if (!forced && last === 0) return 0;
      if (last === EXIT_RESTART) say('restart into the new slot');
      if (++restarts > (opts.maxRestarts ?? 1000)) return last;
      await new Promise((r) => setTimeout(r, (forced || last === EXIT_RESTART ? 0 : (opts.restartSec ?? 1)) * 1000));
      if (stopping) return last;
    }
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onTerm);
    process.off('SIGHUP', onHup);
    rmSync(pidFile, { force: true });
  }
}

function safeReadlink(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '?';
  }
}
