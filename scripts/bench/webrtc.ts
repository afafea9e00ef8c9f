/**
 * SIP↔WebRTC: N concurrent calls from the load generator (the PBX, plain RTP PCMU at 20 ms) queued
 * to N werift agents in separate processes (DTLS-SRTP, host candidates on 127.0.0.1) that echo
 * every frame back; with and without recording (queue recording policy). Round-trip loss and
 * latency (generator → daemon → agent → daemon → generator), the daemon's CPU and RSS.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort, startDaemon } from '../../test/e2e/harness';
import { GenClient, type GenSetup } from './gen-client';
import { load, machine, ProcWindow, round, sleep, table, writeResult, type BenchResult } from './lib';
import type { MeasuredStats } from './relay-gen';

const AGENTS_PER_PROCESS = 50;

class AgentProcs {
  private readonly procs: Array<{ proc: ChildProcess; inbox: Array<Record<string, unknown>> }> = [];

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const proc = fork(path.join(__dirname, 'webrtc-agents.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const inbox: Array<Record<string, unknown>> = [];
      proc.on('message', (m: Record<string, unknown>) => inbox.push(m));
      this.procs.push({ proc, inbox });
    }
  }

  get pids(): number[] {
    return this.procs.map((p) => p.proc.pid ?? 0);
  }

  private async all(msg: Record<string, unknown>, type: string, timeoutMs: number): Promise<Array<Record<string, unknown>>> {
    for (const p of this.procs) p.proc.send(msg);
    const end = Date.now() + timeoutMs;
    const out: Array<Record<string, unknown>> = [];
    for (const p of this.procs) {
      for (;;) {
        const i = p.inbox.findIndex((m) => m.type === type || m.type === 'error');
        if (i >= 0) {
          const m = p.inbox.splice(i, 1)[0];
          if (m.type === 'error') throw new Error(`agent process: ${String(m.error)}`);
          out.push(m);
          break;
        }
        if (Date.now() > end) throw new Error(`agent process: no ${type} within ${timeoutMs} ms`);
        await sleep(50);
      }
    }
    return out;
  }

  async start(httpPort: number, agents: Array<{ name: string; password: string }>): Promise<void> {
    const per = Math.ceil(agents.length / this.procs.length);
    await Promise.all(
      this.procs.map(async (p, i) => {
        p.proc.send({ type: 'start', httpPort, agents: agents.slice(i * per, (i + 1) * per) });
      }),
    );
    await this.all({ type: 'noop' }, 'ready', 120_000);
  }

  async status(): Promise<{ connected: number; echoed: number }> {
    const all = await this.all({ type: 'status' }, 'status', 10_000);
    return { connected: all.reduce((n, m) => n + Number(m.connected), 0), echoed: all.reduce((n, m) => n + Number(m.echoed), 0) };
  }

  async close(): Promise<void> {
    await this.all({ type: 'close' }, 'closed', 30_000).catch(() => undefined);
    for (const p of this.procs) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  }
}

export interface WebRtcStep {
  calls: number;
  recording: boolean;
  setup: GenSetup & { agentsConnected: number; connectS: number };
  stats: MeasuredStats;
  daemon: ReturnType<ProcWindow['end']>;
  recordingsStored: number | null;
}

export async function webrtcStep(calls: number, recording: boolean, windowS: number, log: (s: string) => void): Promise<WebRtcStep> {
  const names = Array.from({ length: calls }, (_, i) => ({ name: `a${i}`, password: `a${i}-password-0123` }));
  const daemon = await startDaemon({
    config: {
      sip: { maxCalls: 10_000 },
      calls: { queue: 'q' },
      trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMU'] }],
      queues: [{ name: 'q', ringTimeoutS: 60, wrapUpS: 0 }],
      agents: names,
      recording: { record: 'none', minFreeMb: 0, queues: recording ? { q: { record: 'all' } } : {} },
      webrtc: { ports: '10000-15999' },
    },
    env: {
      CCEDGE_LOG_LEVEL: 'warn',
      CCEDGE_RTP_PORTS: '16000-19999',
      CCEDGE_WEBRTC_INTERFACES: '127.0.0.1',
      NODE_OPTIONS: process.env.BENCH_DAEMON_NODE_OPTIONS ?? '',
      // A/B of where the calls' media runs (0: the main thread); default: the daemon's own (auto).
      ...(process.env.BENCH_MEDIA_WORKERS ? { CCEDGE_MEDIA_WORKERS: process.env.BENCH_MEDIA_WORKERS } : {}),
    },
  });
  const agents = new AgentProcs(Math.max(1, Math.ceil(calls / AGENTS_PER_PROCESS)));
  const gen = GenClient.spawn();
  try {
    await agents.start(daemon.httpPort, names);
    const t0 = Date.now();
    const { setup } = await gen.start({
      mode: 'echo',
      calls,
      daemon: { host: '127.0.0.1', port: daemon.sipPort },
      to: 'support',
      callerIp: '127.0.0.1',
      callerSipPort: await freePort(),
      farIp: '127.0.0.2',
      farSipPort: 0,
      setupRatePerS: 20,
      baselineS: 0,
    });
    let st = await agents.status();
    const deadline = Date.now() + 60_000 + calls * 500;
    while (st.connected < setup.answered && Date.now() < deadline) {
      await sleep(500);
      st = await agents.status();
    }
    const connectS = round((Date.now() - t0) / 1000);
    log(`webrtc ${calls}${recording ? ' rec' : ''}: setup ${JSON.stringify(setup)}, agents connected ${st.connected} in ${connectS} s`);
    await sleep(2000);
    const win = new ProcWindow(daemon.pid);
    const measuring = gen.measure(windowS);
    await sleep(windowS * 1000);
    const d = win.end();
    const stats = await measuring;
    await gen.teardown();
    let stored: number | null = null;
    if (recording) {
      await sleep(2000);
      const r = await daemon.api<{ recordings?: unknown[] }>('/api/v1/recordings?limit=10000').catch(() => undefined);
      stored = r?.body.recordings?.length ?? null;
    }
    log(`webrtc ${calls}${recording ? ' rec' : ''}: ${JSON.stringify({ loss: stats.lossPct, lat: stats.latency, cpu: d.cpuPct, mainCpu: d.mainThreadCpuPct, rss: d.peakRssMb, load: d.loadAvg, stored })}`);
    return { calls, recording, setup: { ...setup, agentsConnected: st.connected, connectS }, stats, daemon: d, recordingsStored: stored };
  } finally {
    gen.kill();
    await agents.close();
    await daemon.stop();
  }
}

export async function runWebRtc(quick: boolean, log: (s: string) => void = () => undefined, counts?: number[]): Promise<BenchResult> {
  const ns = counts ?? (quick ? [10] : [25, 50, 100, 200]);
  const windowS = quick ? 4 : 15;
  const steps: WebRtcStep[] = [];
  for (const recording of [false, true]) {
    for (const n of ns) {
      const s = await webrtcStep(n, recording, windowS, log);
      steps.push(s);
      // Past the point where calls no longer connect or lose packets, bigger steps only take longer.
      if (s.setup.agentsConnected < s.calls * 0.95 || s.stats.lossPct > 1) break;
    }
  }
  const ok = (s: WebRtcStep): boolean => s.setup.agentsConnected >= s.calls && s.stats.lossPct < 0.1;
  const bestRec = Math.max(0, ...steps.filter((s) => s.recording && ok(s)).map((s) => s.calls));
  const refRec = steps.filter((s) => s.recording).pop();
  // The daemon's marginal CPU per call at the biggest clean step: where one core would run out.
  const clean = steps.filter(ok);
  const perCall = clean.length ? clean[clean.length - 1].daemon.cpuPct / clean[clean.length - 1].calls : null;
  const result: BenchResult = {
    bench: 'webrtc',
    date: new Date().toISOString(),
    quick,
    method: `N calls PBX (load generator, plain RTP PCMU 20 ms) → daemon → queue → N werift agents in ${AGENTS_PER_PROCESS}-agent processes (DTLS-SRTP over 127.0.0.1) that echo every frame; round trip measured by the generator; ${windowS} s window; recording off vs queue policy record: all; media.workers ${process.env.BENCH_MEDIA_WORKERS ?? 'auto'}`,
    machine: machine(),
    steps,
    verdicts: [
      {
        target: '≥200 concurrent SIP↔WebRTC calls with recording',
        measured: `${bestRec} calls connected with <0.1 % round-trip loss (tried ${ns.join('/')}); at ${refRec?.calls}: ${refRec?.setup.agentsConnected} connected, ${refRec?.stats.lossPct} % loss, round trip p99 ${refRec?.stats.latency.p99Ms} ms, daemon ${refRec?.daemon.cpuPct} % CPU, ${refRec?.daemon.peakRssMb} MB; ${perCall === null ? '' : `${round(perCall, 2)} % of a core per call → one core ≈ ${Math.floor(100 / perCall)} calls`}`,
        met: quick ? null : bestRec >= 200,
        loadAvg: refRec?.daemon.loadAvg ?? load(),
      },
    ],
  };
  const md = [
    `### SIP↔WebRTC (${result.date.slice(0, 16)}Z${quick ? ', quick' : ''}; ${windowS} s window)`,
    '',
    table(
      ['calls', 'recording', 'agents connected', 'round-trip loss %', 'round trip p50 / p99 ms', 'jitter mean ms', 'daemon CPU % (peak s)', 'of it main thread %', 'per call %', 'daemon RSS MB', 'recordings stored', 'load avg'],
      steps.map((s) => [
        s.calls,
        s.recording ? 'yes' : 'no',
        s.setup.agentsConnected,
        s.stats.lossPct,
        `${s.stats.latency.p50Ms} / ${s.stats.latency.p99Ms}`,
        s.stats.jitterMeanMs,
        `${s.daemon.cpuPct} (${s.daemon.cpuPctMaxSecond})`,
        s.daemon.mainThreadCpuPct,
        round(s.daemon.cpuPct / s.calls, 2),
        s.daemon.peakRssMb,
        s.recordingsStored,
        s.daemon.loadAvg.join(' '),
      ]),
    ),
  ].join('\n');
  writeResult(result, md);
  return result;
}
