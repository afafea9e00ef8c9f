/**
 * The health sampler's worker thread: systeminformation runs here, so its synchronous shell-outs
 * (execSync: ~240 ms for networkInterfaces, 20-40 ms for cpuTemperature on Linux) block this
 * thread and never the daemon's event loop (SIP, RTP relay, timers).
 */
import { parentPort } from 'node:worker_threads';
import { collectSystemSample, type SampleRequest } from './system-sample';

parentPort?.on('message', (msg: { id: number; req: SampleRequest }) => {
  collectSystemSample(msg.req).then(
    (sample) => parentPort?.postMessage({ id: msg.id, sample }),
    (err: unknown) => parentPort?.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
