/**
 * RTP↔RTP relay: N concurrent calls forwarded by the daemon (routing.forward) from the PBX trunk
 * to a far-end trunk, both legs plain RTP G.711 at 20 ms pacing from the load generator process
 * (relay-gen.ts). Loss, added one-way latency (send time in the payload), jitter, and the
 * daemon's CPU and RSS from /proc over the measurement window. Unless told not to, every step is
 * run a second time through Debian's rtpengine (userspace forwarding) with the same generator,
 * streams and window, and ccedge's CPU per packet and added p99 are reported as ratios to it.
 */
import { readFileSync } from 'node:fs';
import { freePort, startDaemon } from '../../test/e2e/harness';
import { GenClient, type GenSetup } from './gen-client';
import { load, machine, ProcWindow, round, table, writeResult, type BenchResult } from './lib';
import type { MeasuredStats } from './relay-gen';
import { RTPENGINE_PORTS, RtpEnginePeer } from './rtpengine';

export interface RelayStep {
  calls: number;
  setup: GenSetup;
  stats: MeasuredStats;
  baseline: MeasuredStats | null;
  /** p50/p99 through the daemon minus the same percentile socket-to-socket (the generator's own). */
  addedP50Ms: number | null;
  addedP99Ms: number | null;
  daemon: ReturnType<ProcWindow['end']>;
  teardown: { byeOk: number; byeFailed: number; farByes: number; farInvites: number };
  /** OS threads of the relay process at the end of the window (rtpengine runs one worker per core by default). */
  threads?: number;
  /** media.workers of the daemon (undefined: its default, cores − 1). */
  workers?: number;
}

function threadsOf(pid: number): number | undefined {
  try {
    return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) || undefined;
  } catch {
    return undefined;
  }
}

export async function relayStep(calls: number, windowS: number, log: (s: string) => void, workers?: number): Promise<RelayStep> {
  const farSipPort = await freePort();
  const callerSipPort = await freePort();
  const daemon = await startDaemon({
    config: {
      sip: { maxCalls: 10_000 },
      trunks: [
        { name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMU'] },
        { name: 'far', allow: ['127.0.0.2/32'], codecs: ['PCMU'], outbound: { host: '127.0.0.2', port: farSipPort } },
      ],
      routing: { forward: [{ match: '/.*/', trunk: 'far' }] },
    },
    env: {
      CCEDGE_LOG_LEVEL: 'warn',
      CCEDGE_RTP_PORTS: '16000-19999',
      NODE_OPTIONS: process.env.BENCH_DAEMON_NODE_OPTIONS ?? '',
      ...(workers === undefined ? {} : { CCEDGE_MEDIA_WORKERS: String(workers) }),
    },
  });
  const gen = GenClient.spawn();
  try {
    const { setup, baseline } = await gen.start({
      mode: 'relay',
      calls,
      daemon: { host: '127.0.0.1', port: daemon.sipPort },
      to: '5559000',
      callerIp: '127.0.0.1',
      callerSipPort,
      farIp: '127.0.0.2',
      farSipPort,
      setupRatePerS: 100,
      baselineS: windowS < 10 ? 2 : 5,
    });
    log(`relay ${calls}: setup ${JSON.stringify(setup)}`);
    await new Promise((r) => setTimeout(r, 2000));
    const win = new ProcWindow(daemon.pid);
    const measuring = gen.measure(windowS);
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const d = win.end();
    const stats = await measuring;
    const teardown = await gen.teardown();
    const step: RelayStep = {
      calls,
      setup,
      stats,
      baseline,
      addedP50Ms: baseline ? round(stats.latency.p50Ms - baseline.latency.p50Ms, 3) : null,
      addedP99Ms: baseline ? round(stats.latency.p99Ms - baseline.latency.p99Ms, 3) : null,
      daemon: d,
      teardown,
      ...(workers === undefined ? {} : { workers }),
    };
    log(`relay ${calls}${workers === undefined ? '' : ` (${workers} media workers)`}: ${JSON.stringify({ loss: stats.lossPct, lat: stats.latency, base: baseline?.latency, cpu: d.cpuPct, rss: d.peakRssMb, genCpu: stats.generatorCpuPct, load: d.loadAvg })}`);
    return step;
  } finally {
    gen.kill();
    await daemon.stop();
  }
}

/** The same load through rtpengine: the generator sets each call up over ng instead of SIP. */
export async function peerStep(calls: number, windowS: number, log: (s: string) => void): Promise<RelayStep> {
  const peer = await RtpEnginePeer.start();
  const gen = GenClient.spawn();
  try {
    const { setup, baseline } = await gen.start({
      mode: 'peer',
      calls,
      ng: { host: '127.0.0.1', port: peer.ngPort },
      daemon: { host: '127.0.0.1', port: 0 },
      to: '5559000',
      callerIp: '127.0.0.1',
      callerSipPort: 0,
      farIp: '127.0.0.2',
      farSipPort: 0,
      setupRatePerS: 100,
      baselineS: windowS < 10 ? 2 : 5,
    });
    log(`rtpengine ${calls}: setup ${JSON.stringify(setup)}`);
    await new Promise((r) => setTimeout(r, 2000));
    const win = new ProcWindow(peer.pid);
    const measuring = gen.measure(windowS);
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const d = win.end();
    const threads = threadsOf(peer.pid);
    const stats = await measuring;
    const teardown = await gen.teardown();
    const step: RelayStep = {
      calls,
      setup,
      stats,
      baseline,
      addedP50Ms: baseline ? round(stats.latency.p50Ms - baseline.latency.p50Ms, 3) : null,
      addedP99Ms: baseline ? round(stats.latency.p99Ms - baseline.latency.p99Ms, 3) : null,
      daemon: d,
      teardown,
      threads,
    };
    log(`rtpengine ${calls}: ${JSON.stringify({ loss: stats.lossPct, lat: stats.latency, base: baseline?.latency, cpu: d.cpuPct, rss: d.peakRssMb, genCpu: stats.generatorCpuPct, load: d.loadAvg })}`);
    return step;
  } finally {
    gen.kill();
    await peer.stop();
  }
}

/** Relay CPU per packet the generator sent into it (µs), over the window. */
function usPerPacket(r: RelayStep): number | null {
  const pps = r.stats.sent / r.stats.windowS;
  return pps > 0 ? round((r.daemon.cpuPct / 100 / pps) * 1e6, 2) : null;
}

/** The generator's latency histogram has 10 µs bins: an added p99 below one bin is not told from zero. */
const HIST_RES_MS = 0.01;

function ratio(ours: number | null, theirs: number | null, floor = 0): string | null {
  if (ours === null || theirs === null) return null;
  // Below zero: the generator's own baseline was worse than the run through the relay (a busy box), no ratio to take.
  if (theirs < 0) return `n/a (rtpengine ${theirs} ms: baseline noisier than the run)`;
  if (theirs < floor || theirs === 0) return floor > 0 ? `≥ ${round(ours / floor, 1)}× (rtpengine < ${floor} ms)` : null;
  return `${round(ours / theirs, 2)}×`;
}

export interface RelayOptions {
  counts?: number[];
  /** Run rtpengine on the same load (default true). */
  peer?: boolean;
  /** media.workers values whose capacity is searched and compared (default 1 and 2; [] skips). */
  workers?: number[];
}

/** Within the issue's bounds: every call up, <0.01 % loss, added p99 ≤ 1 ms. */
function clean(r: RelayStep): boolean {
  return r.stats.lossPct < 0.01 && r.setup.answered === r.calls && r.setup.farAnswered === r.calls && r.addedP99Ms !== null && r.addedP99Ms <= 1;
}

export interface WorkerCapacity {
  workers: number;
  /** The biggest step within both bounds, loss and added p99 (0: none). */
  calls: number;
  /** The biggest step with <0.01 % loss, whatever its latency. */
  lossFreeCalls: number;
  steps: RelayStep[];
}

/**
 * Capacity per media.workers value: steps up the call count until a step loses packets (≥ 0.01 %)
 * or cannot set its calls up, on the same generator and box; no rtpengine (it is compared in the
 * main table). Which of those steps also held added p99 ≤ 1 ms is reported beside it.
 */
async function workerCapacity(workers: number, counts: number[], windowS: number, log: (s: string) => void): Promise<WorkerCapacity> {
  const steps: RelayStep[] = [];
  for (const n of counts) {
    const r = await relayStep(n, windowS, log, workers);
    steps.push(r);
    if (r.stats.lossPct >= 0.01 || r.setup.farAnswered < n) break;
  }
  const biggest = (ok: RelayStep[]): number => (ok.length ? Math.max(...ok.map((r) => r.calls)) : 0);
  return { workers, calls: biggest(steps.filter(clean)), lossFreeCalls: biggest(steps.filter((r) => r.stats.lossPct < 0.01 && r.setup.farAnswered === r.calls)), steps };
}

export async function runRelay(quick: boolean, log: (s: string) => void = () => undefined, opts: RelayOptions = {}): Promise<BenchResult> {
  const steps = opts.counts ?? (quick ? [50] : [100, 200, 300, 400, 500]);
  const withPeer = opts.peer ?? true;
  // Before the first ccedge step, not after it: a missing peer should not cost a step's minutes.
  if (withPeer && !RtpEnginePeer.available()) throw new Error('the relay bench runs rtpengine side by side: apt-get install -y rtpengine, or pass --no-peer');
  const windowS = quick ? 5 : 15;
  const results: RelayStep[] = [];
  const peers: RelayStep[] = [];
  for (const n of steps) {
    const r = await relayStep(n, windowS, log);
    results.push(r);
    if (withPeer) peers.push(await peerStep(n, windowS, log));
    // Far past the target's loss bound: bigger steps only take longer (the failing step is kept).
    if (r.stats.lossPct > 1 || r.setup.farAnswered < n * 0.95) break;
  }
  const scaling: WorkerCapacity[] = [];
  const scaleSteps = quick ? [50, 100] : [300, 400, 500, 600, 700, 800, 1000];
  for (const w of opts.workers ?? (quick ? [] : [1, 2])) scaling.push(await workerCapacity(w, scaleSteps, quick ? 5 : 10, log));
  const cap = (w: number): WorkerCapacity | undefined => scaling.find((c) => c.workers === w);
  const one = cap(1);
  const two = cap(2);
  const scaleRatio = one && two && one.lossFreeCalls > 0 ? round(two.lossFreeCalls / one.lossFreeCalls, 2) : null;
  const peerAt = (n: number): RelayStep | undefined => peers.find((p) => p.calls === n);
  const at500 = results.find((r) => r.calls === 500);
  const best = results.filter((r) => r.stats.lossPct < 0.01 && r.setup.answered === r.calls && r.setup.farAnswered === r.calls);
  const biggest = best.length ? Math.max(...best.map((r) => r.calls)) : 0;
  const ref = at500 ?? results[results.length - 1];
  const cleanRef = best.length ? best[best.length - 1] : undefined;
  // The daemon's CPU per relayed packet at the biggest clean step (packets in + out per second).
  const usRef = cleanRef ? usPerPacket(cleanRef) : null;
  const usRefPeer = cleanRef ? (peerAt(cleanRef.calls) ?? null) : null;
  const usPeer = usRefPeer ? usPerPacket(usRefPeer) : null;
  const cpuRatio = usRef !== null && usPeer ? round(usRef / usPeer, 2) : null;
  const result: BenchResult = {
    bench: 'relay',
    date: new Date().toISOString(),
    quick,
    method: `N calls PBX (load generator, 127.0.0.1) → daemon → routing.forward → far trunk (load generator, 127.0.0.2), both legs plain RTP PCMU 20 ms, no transcoding; ${windowS} s window after setup + 2 s; latency = one-way generator→daemon→generator from the send time in the payload; baseline = the same load socket to socket without the daemon; daemon CPU/RSS from /proc${withPeer ? `; after each step the same generator streams relayed by rtpengine ${RtpEnginePeer.version()} (userspace, --table=-1, on 127.0.0.1), each call set up over its ng protocol (offer with the caller stream's SDP, answer with the far stream's), same baseline and window, rtpengine's CPU/RSS from /proc` : ''}`,
    machine: machine(),
    steps: results,
    verdicts: [
      {
        target: '≥500 concurrent RTP↔RTP calls, <0.01 % packet loss',
        measured: `${biggest} calls with <0.01 % loss (tried ${results.map((r) => r.calls).join('/')}); at ${ref?.calls}: ${ref?.stats.lossPct} % loss, daemon ${ref?.daemon.cpuPct} % CPU, ${ref?.daemon.peakRssMb} MB RSS${usRef === null ? '' : `; ${usRef} µs of daemon CPU per relayed packet`}`,
        met: quick ? null : biggest >= 500,
        loadAvg: ref?.daemon.loadAvg ?? load(),
      },
      ((l: RelayStep | undefined) => ({
        target: '≤1 ms p99 added relay latency',
        measured: `at ${l?.calls} calls (${l?.stats.lossPct} % loss${l === cleanRef ? ', the biggest clean step' : ''}): p99 ${l?.stats.latency.p99Ms} ms through the daemon vs ${l?.baseline?.latency.p99Ms} ms socket to socket (added ≈ ${l?.addedP99Ms} ms); p50 added ≈ ${l?.addedP50Ms} ms${at500 && at500 !== l ? `; at 500 calls p99 ${at500.stats.latency.p99Ms} ms` : ''}`,
        // Only meaningful when the calls ran clean and the generator itself kept up (baseline p99 well under the histogram's 2 s cap).
        met: quick || !l || l.addedP99Ms === null ? null : l.addedP99Ms <= 1 && l.stats.lossPct < 0.01 && (l.baseline?.latency.p99Ms ?? 2000) < 100,
        loadAvg: l?.daemon.loadAvg ?? load(),
      }))(cleanRef ?? ref),
      {
        target: 'daemon CPU per relayed RTP packet ≤ 8 µs, and ≤ 1.5× rtpengine userspace',
        measured: !cleanRef
          ? 'no clean step'
          : `at ${cleanRef.calls} calls (the biggest clean step): ccedge ${usRef} µs/packet${
              usRefPeer ? ` vs rtpengine ${usPeer} µs/packet (${usRefPeer.stats.lossPct} % loss) = **${cpuRatio}× rtpengine userspace**` : withPeer ? '; rtpengine did not run at this step' : '; rtpengine not run (--no-peer)'
            }${peers.length ? `; per step ${results.map((r) => {
                const p = peerAt(r.calls);
                const lossy = r.stats.lossPct >= 0.01 || (p?.stats.lossPct ?? 0) >= 0.01 ? ' (with loss)' : '';
                return `${r.calls}: ${p ? (ratio(usPerPacket(r), usPerPacket(p)) ?? '-') : '-'}${lossy}`;
              }).join(', ')}` : ''}`,
        met: quick || usRef === null ? null : usRef > 8 || (cpuRatio !== null && cpuRatio > 1.5) ? false : cpuRatio === null ? null : true,
        loadAvg: cleanRef?.daemon.loadAvg ?? load(),
      },
      ...(one && two
        ? [
            {
              target: 'capacity with 2 media workers vs 1 at <0.01 % loss ≥ 1.8× (the issue also bounds added p99 ≤ 1 ms: reported beside it)',
              measured: `<0.01 % loss: 1 worker ${one.lossFreeCalls} calls, 2 workers ${two.lossFreeCalls} calls${scaleRatio === null ? '' : ` = **${scaleRatio}×**`}; also within added p99 ≤ 1 ms: ${one.calls} vs ${two.calls} calls (steps ${scaleSteps.join('/')} until loss; 0 = none of them); on ${String(machine().cpus)} cores shared with the load generator`,
              met: quick || scaleRatio === null ? null : scaleRatio >= 1.8,
              loadAvg: two.steps[two.steps.length - 1]?.daemon.loadAvg ?? load(),
            },
          ]
        : []),
      ...(peers.length
        ? [
            {
              target: 'added relay latency p99 as a ratio to rtpengine userspace (reported)',
              measured: results
                .map((r) => {
                  const p = peerAt(r.calls);
                  return `${r.calls} calls: ${r.addedP99Ms} ms vs ${p?.addedP99Ms ?? '-'} ms = ${ratio(r.addedP99Ms, p?.addedP99Ms ?? null, HIST_RES_MS) ?? '-'}`;
                })
                .join('; '),
              met: null,
              loadAvg: peers[peers.length - 1].daemon.loadAvg,
            },
          ]
        : []),
    ],
    scaling,
    peer: withPeer ? { name: 'rtpengine', version: RtpEnginePeer.version(), mode: `userspace (--table=-1), ports ${RTPENGINE_PORTS.min}-${RTPENGINE_PORTS.max}, default threads`, steps: peers } : null,
  };
  const md = [
    `### RTP↔RTP relay (${result.date.slice(0, 16)}Z${quick ? ', quick' : ''}; ${windowS} s window)`,
    '',
    table(
      ['calls', 'set up / far answered', 'pkts/s through daemon', 'loss %', 'one-way p50 / p99 / max ms', 'baseline p50 / p99 ms', 'added p50 / p99 ms', 'jitter mean / max ms', 'daemon CPU % (peak s)', 'daemon RSS MB', 'generator CPU %', 'load avg'],
      results.map((r) => [
        r.calls,
        `${r.setup.answered} / ${r.setup.farAnswered}`,
        Math.round(r.stats.sent / r.stats.windowS),
        r.stats.lossPct,
        `${r.stats.latency.p50Ms} / ${r.stats.latency.p99Ms} / ${r.stats.latency.maxMs}`,
        r.baseline ? `${r.baseline.latency.p50Ms} / ${r.baseline.latency.p99Ms}` : null,
        `${r.addedP50Ms} / ${r.addedP99Ms}`,
        `${r.stats.jitterMeanMs} / ${r.stats.jitterMaxMs}`,
        `${r.daemon.cpuPct} (${r.daemon.cpuPctMaxSecond})`,
        r.daemon.peakRssMb,
        r.stats.generatorCpuPct,
        r.daemon.loadAvg.join(' '),
      ]),
    ),
    ...(peers.length
      ? [
          '',
          `#### The same load through rtpengine ${RtpEnginePeer.version()} (userspace forwarding, --table=-1, ${peers[0].threads ?? '?'} threads; run right after each ccedge step)`,
          '',
          table(
            ['calls', 'set up (ng offer+answer)', 'pkts/s through rtpengine', 'loss %', 'one-way p50 / p99 / max ms', 'baseline p50 / p99 ms', 'added p50 / p99 ms', 'jitter mean / max ms', 'rtpengine CPU % (peak s)', 'rtpengine RSS MB', 'generator CPU %', 'load avg'],
            peers.map((r) => [
              r.calls,
              `${r.setup.answered} / ${r.setup.placed}`,
              Math.round(r.stats.sent / r.stats.windowS),
              r.stats.lossPct,
              `${r.stats.latency.p50Ms} / ${r.stats.latency.p99Ms} / ${r.stats.latency.maxMs}`,
              r.baseline ? `${r.baseline.latency.p50Ms} / ${r.baseline.latency.p99Ms}` : null,
              `${r.addedP50Ms} / ${r.addedP99Ms}`,
              `${r.stats.jitterMeanMs} / ${r.stats.jitterMaxMs}`,
              `${r.daemon.cpuPct} (${r.daemon.cpuPctMaxSecond})`,
              r.daemon.peakRssMb,
              r.stats.generatorCpuPct,
              r.daemon.loadAvg.join(' '),
            ]),
          ),
          '',
          '#### ccedge ÷ rtpengine',
          '',
          table(
            ['calls', 'loss % ccedge / rtpengine', 'ccedge µs CPU / packet', 'rtpengine µs CPU / packet', 'CPU ratio', 'ccedge added p99 ms', 'rtpengine added p99 ms', 'added p99 ratio'],
            results.map((r) => {
              const p = peerAt(r.calls);
              return [r.calls, `${r.stats.lossPct} / ${p?.stats.lossPct ?? '-'}`, usPerPacket(r), p ? usPerPacket(p) : null, p ? ratio(usPerPacket(r), usPerPacket(p)) : null, r.addedP99Ms, p?.addedP99Ms, p ? ratio(r.addedP99Ms, p.addedP99Ms, HIST_RES_MS) : null];
            }),
          ),
          '',
          `µs CPU / packet = the relay's CPU over the window ÷ packets the generator sent into it per second (meaningless on a step with heavy loss: the relay did not carry those packets). Added p99 = p99 through the relay minus p99 socket to socket in the same generator run; the histogram's bins are ${HIST_RES_MS * 1000} µs, so a ratio over an rtpengine figure below that is a lower bound.`,
        ]
      : []),
    ...(scaling.length
      ? [
          '',
          `#### Capacity per media.workers (steps up until one loses ≥ 0.01 %; ${quick ? 5 : 10} s windows; no rtpengine)`,
          '',
          table(
            ['media.workers', 'calls', 'loss %', 'added p50 / p99 ms', 'daemon CPU % (peak s)', 'µs CPU / packet', 'within bounds', 'load avg'],
            scaling.flatMap((c) => c.steps.map((r) => [c.workers, r.calls, r.stats.lossPct, `${r.addedP50Ms} / ${r.addedP99Ms}`, `${r.daemon.cpuPct} (${r.daemon.cpuPctMaxSecond})`, usPerPacket(r), clean(r) ? 'yes' : 'no', r.daemon.loadAvg.join(' ')])),
          ),
          '',
          `Capacity at <0.01 % loss: ${scaling.map((c) => `${c.workers} worker${c.workers === 1 ? '' : 's'} ${c.lossFreeCalls} calls (of them within added p99 ≤ 1 ms: ${c.calls})`).join(', ')}${scaleRatio === null ? '' : `; 2 vs 1 = ${scaleRatio}×`}.`,
        ]
      : []),
  ].join('\n');
  writeResult(result, md);
  return result;
}
