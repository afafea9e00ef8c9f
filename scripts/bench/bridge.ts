/**
 * SIP↔WebRTC bridge cost: N concurrent calls from test UACs (50 packets/s G.711 each way) answered
 * by werift agents (in this process, sending 50 packets/s back); the daemon's CPU is read from
 * /proc/<pid>/stat over a steady window and divided by N.
 * Run: npm run build && node dist/scripts/bench/bridge.js [N ...]
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { sleep, startDaemon } from '../../test/e2e/harness';
import { TestUac } from '../../test/e2e/test-uac';
import { WeriftAgent } from '../../test/e2e/werift-agent';

const CLK_TCK = 100;
const WINDOW_S = 10;

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

async function run(n: number): Promise<{ calls: number; daemonCpuPct: number; perCallPct: number; toAgentPps: number; toCallerPps: number }> {
  const names = Array.from({ length: n }, (_, i) => `b${i}`);
  const daemon = await startDaemon({
    config: {
      calls: { queue: 'q' },
      trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
      queues: [{ name: 'q', ringTimeoutS: 30, wrapUpS: 0 }],
      agents: names.map((name) => ({ name, password: `${name}-pw-0123` })),
    },
    env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1', CCEDGE_LOG_LEVEL: 'warn' },
  });
  const agents = await Promise.all(names.map((name) => WeriftAgent.login(daemon.httpPort, name, `${name}-pw-0123`)));
  const uacs: TestUac[] = [];
  const senders: NodeJS.Timeout[] = [];
  try {
    for (const a of agents) a.available();
    for (let i = 0; i < n; i++) {
      const uac = await TestUac.create({ codec: 'PCMU' });
      uacs.push(uac);
      await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: `5551${String(i).padStart(3, '0')}` });
    }
    for (const a of agents) {
      const c = await a.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected', 30_000);
      const peer = a.peer(c.callId);
      let ts = 0;
      const frame = Buffer.alloc(160, 0x55);
      senders.push(setInterval(() => peer?.sendAudio(frame, (ts += 160)), 20));
    }
    await sleep(2000);
    const pid = daemon.pid;
    const before = cpuSeconds(pid);
    const rxAgent = agents.reduce((s, a) => s + [...(a as unknown as { peers: Map<string, { received: unknown[] }> }).peers.values()].reduce((x, p) => x + p.received.length, 0), 0);
    const rxCaller = uacs.reduce((s, u) => s + u.packetsReceived, 0);
    const t0 = Date.now();
    await sleep(WINDOW_S * 1000);
    const wall = (Date.now() - t0) / 1000;
    const cpu = ((cpuSeconds(pid) - before) / wall) * 100;
    const rxAgent2 = agents.reduce((s, a) => s + [...(a as unknown as { peers: Map<string, { received: unknown[] }> }).peers.values()].reduce((x, p) => x + p.received.length, 0), 0);
    const rxCaller2 = uacs.reduce((s, u) => s + u.packetsReceived, 0);
    return {
      calls: n,
      daemonCpuPct: Math.round(cpu * 10) / 10,
      perCallPct: Math.round((cpu / n) * 100) / 100,
      toAgentPps: Math.round((rxAgent2 - rxAgent) / wall / n),
      toCallerPps: Math.round((rxCaller2 - rxCaller) / wall / n),
    };
  } finally {
    for (const s of senders) clearInterval(s);
    for (const u of uacs) u.close();
    for (const a of agents) await a.close();
    await daemon.stop();
  }
}

async function main(): Promise<void> {
  const counts = process.argv.slice(2).map(Number).filter((x) => x > 0);
  const results = [];
  for (const n of counts.length ? counts : [1, 10, 20]) {
    const r = await run(n);
    results.push(r);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  }
  const dir = path.join(__dirname, '..', '..', '..', 'scripts', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'bridge.json'), `${JSON.stringify({ bench: 'bridge', date: new Date().toISOString(), windowS: WINDOW_S, results }, null, 2)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
