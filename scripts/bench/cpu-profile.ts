/**
 * Preload that CPU-profiles a daemon started by a benchmark (NODE_OPTIONS does not accept
 * --cpu-prof): `BENCH_DAEMON_NODE_OPTIONS="--require dist/scripts/bench/cpu-profile.js"
 * BENCH_CPU_PROF_DIR=/tmp/prof npm run bench:run -- --only relay`. Writes
 * <dir>/ccedge-<pid>.cpuprofile when the process exits (open it in Chrome DevTools). Media worker
 * threads load it too: each writes <dir>/ccedge-<pid>-worker<threadId>.cpuprofile after
 * BENCH_CPU_PROF_WORKER_S seconds (default 35: a relay step's setup and window), since a
 * terminated worker runs no exit handler.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  const write = (file: string): void => {
    // Posts on an in-process session complete synchronously, so this works in an exit handler.
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(path.join(dir, file), JSON.stringify(result.profile));
    });
  };
  if (isMainThread) process.once('exit', () => write(`ccedge-${process.pid}.cpuprofile`));
  else setTimeout(() => write(`ccedge-${process.pid}-worker${threadId}.cpuprofile`), Number(process.env.BENCH_CPU_PROF_WORKER_S ?? 35) * 1000).unref();
}
