/**
 * Preload that CPU-profiles a daemon started by a benchmark (NODE_OPTIONS does not accept
 * --cpu-prof): `BENCH_DAEMON_NODE_OPTIONS="--require dist/scripts/bench/cpu-profile.js"
 * BENCH_CPU_PROF_DIR=/tmp/prof npm run bench:run -- --only relay`. Writes
 * <dir>/ccedge-<pid>.cpuprofile when the process exits (open it in Chrome DevTools).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // Posts on an in-process session complete synchronously, so this works in an exit handler.
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(path.join(dir, `ccedge-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
