/**
 * Load process of the fork benchmark: N AudioHook fork sessions to the endpoint at argv[2], each
 * fed like a joint's tap (160 µ-law samples per side every 20 ms), for argv[4] seconds after a
 * warm-up; prints one JSON line with its own CPU and the sessions' counters.
 */
import { AudioHookSession } from '../../media/speech/audiohook/client';

const [url, nText, secondsText, warmupText] = process.argv.slice(2);
const n = Number(nText);
const seconds = Number(secondsText);
const warmup = Number(warmupText);

async function main(): Promise<void> {
  const sessions = Array.from({ length: n }, (_, i) =>
    new AudioHookSession({
      endpointName: 'bench',
      url,
      apiKey: 'bench-key-0123',
      organizationId: '00000000-0000-0000-0000-000000000000',
      maxBufferedBytes: 64 * 1024,
      openTimeoutMs: 10_000,
      pingMs: 5000,
      codec: 'PCMU',
      callId: `bench-${i}`,
      participant: { ani: '5550000', aniName: '', dnis: '100' },
      sink: { utterance: () => undefined },
    }),
  );
  await Promise.all(
    sessions.map(
      (s) =>
        new Promise<void>((resolve, reject) => {
          s.once('opened', () => resolve());
          s.once('ended', (reason, detail) => reject(new Error(`${reason}: ${detail}`)));
          s.start();
        }),
    ),
  );
  const caller = Buffer.alloc(160, 0x11);
  const agent = Buffer.alloc(160, 0x22);
  // One 20 ms timer for all, as the media clock drives every joint.
  const feed = setInterval(() => {
    for (const s of sessions) {
      s.tap.pushCaller(caller, 0, 1);
      s.tap.pushAgent(agent, 0, 2);
    }
  }, 20);
  await new Promise((r) => setTimeout(r, warmup * 1000));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wallS = (performance.now() - t0) / 1000;
  clearInterval(feed);
  const stats = sessions.map((s) => s.stats);
  await Promise.all(sessions.map((s) => s.close()));
  const sum = (k: 'bytesSent' | 'framesDropped' | 'samplesOverwritten'): number => stats.reduce((a, s) => a + s[k], 0);
  process.stdout.write(`${JSON.stringify({ sessions: n, wallS, cpuUs: cpu.user + cpu.system, bytesSent: sum('bytesSent'), framesDropped: sum('framesDropped'), samplesOverwritten: sum('samplesOverwritten'), heapMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20) })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
