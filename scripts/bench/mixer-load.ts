/**
 * The mixer bench's load process: `node mixer-load.js <size> <joints> <seconds> <warmupSeconds>`
 * builds <joints> media joints of <size> participants on one real MediaClock (20 ms). Every
 * participant's port hands the joint one PCMU frame per tick, as an RTP session or WebRTC leg
 * would, and counts the frames it is sent. Measures this process's CPU (user+system) over the
 * window after the warm-up and prints one JSON line. No sockets: this is the joint's and the
 * mixer's own cost (the network path is in the relay and webrtc benches).
 */
import { MediaJoint } from '../../media/joint/media-joint';
import type { AudioPort } from '../../media/joint/audio-port';
import { MediaClock } from '../../media/tones/media-clock';
import { encodeFrame } from '../../media/tones/g711';

type Listener = (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void;

class LoadPort implements AudioPort {
  private listener: Listener | null = null;
  private ts = 0;
  received = 0;
  constructor(
    private readonly frame: Buffer,
    private readonly ssrc: number,
  ) {}
  sendAudio(): void {
    this.received++;
  }
  on(event: 'audio' | 'telephoneEvent', l: Listener): this {
    if (event === 'audio') this.listener = l;
    return this;
  }
  off(event: 'audio' | 'telephoneEvent'): this {
    if (event === 'audio') this.listener = null;
    return this;
  }
  talk(): void {
    this.listener?.(this.frame, false, this.ts, this.ssrc);
    this.ts = (this.ts + 160) & 0x3fffffff;
  }
}

function frame(hz: number): Buffer {
  const s = new Int16Array(160);
  for (let i = 0; i < 160; i++) s[i] = Math.round(4000 * Math.sin((2 * Math.PI * hz * i) / 8000));
  return encodeFrame('PCMU', s);
}

async function main(): Promise<void> {
  const [size, joints, seconds, warmup] = process.argv.slice(2).map(Number);
  const clock = new MediaClock();
  const ports: LoadPort[] = [];
  const off = clock.subscribe(() => {
    for (let i = 0; i < ports.length; i++) ports[i].talk();
  });
  const all: MediaJoint[] = [];
  for (let j = 0; j < joints; j++) {
    const joint = new MediaJoint({ clock, maxParties: 16 });
    joint.addTap({ pushCaller: () => undefined, pushAgent: () => undefined }, `c${j}-0`);
    for (let p = 0; p < size; p++) {
      const port = new LoadPort(frame(300 + 150 * p), (j << 8) | p);
      ports.push(port);
      joint.add({ id: `c${j}-${p}`, port, codec: 'PCMU', role: 'party', kind: p === 0 ? 'caller' : p === 1 ? 'agent' : 'external' });
    }
    all.push(joint);
  }
  const mode = all[0]?.mode ?? 'idle';
  await new Promise((r) => setTimeout(r, warmup * 1000));
  const ticks0 = clock.ticks;
  const resyncs0 = clock.resyncs;
  const sent0 = ports.reduce((a, p) => a + p.received, 0);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wallS = (performance.now() - t0) / 1000;
  const ticks = clock.ticks - ticks0;
  const framesOut = ports.reduce((a, p) => a + p.received, 0) - sent0;
  for (const j of all) j.close();
  off();
  const cpuUs = cpu.user + cpu.system;
  process.stdout.write(
    `${JSON.stringify({ size, joints, mode, participants: ports.length, wallS, ticks, expectedTicks: Math.round(wallS * 50), resyncs: clock.resyncs - resyncs0, framesOut, cpuUs, heapMb: Math.round(process.memoryUsage().heapUsed / 1e5) / 10 })}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
