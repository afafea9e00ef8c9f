import assert from 'node:assert/strict';
import type { MonitorMode, SupervisorServerMessage } from '../../gateway/supervisor/protocol';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { resources, type Resources } from './leak-probe';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';
import { WeriftSupervisor } from './werift-supervisor';

const AGENTS = ['a1', 'a2', 'a3', 'a4'];
const SUPERVISORS = ['s1', 's2'];
const CALLS_PER_AGENT = 25;
const MODES: readonly MonitorMode[] = ['listen', 'whisper', 'barge'];

type Ended = Extract<SupervisorServerMessage, { type: 'monitorEnded' }>;

describe('monitoring lifecycle: nothing survives a monitored call', function () {
  let daemon: DaemonHandle;
  before(async () => {
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support' },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
        queues: [{ name: 'support', ringTimeoutS: 10, wrapUpS: 0 }],
        agents: [
          ...AGENTS.map((name) => ({ name, password: `${name}-password` })),
          ...SUPERVISORS.map((name) => ({ name, password: `${name}-password`, role: 'supervisor' })),
        ],
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1', CCEDGE_LOG_LEVEL: 'warn' },
    });
  });
  after(async () => {
    await daemon?.stop();
  });

  it('after 100 monitored calls (modes cycling; ended by Stop, by the call, or by the page going away), handles, timers, RTP ports, calls and monitoring legs are back to the baseline', async () => {
    await sleep(500);
    const baseline = await resources(daemon);
    assert.ok(Number.isFinite(baseline.handles) && Number.isFinite(baseline.resources), JSON.stringify(baseline));
    const agents = await Promise.all(AGENTS.map((n) => WeriftAgent.login(daemon.httpPort, n, `${n}-password`)));
    const supervisors = await Promise.all(SUPERVISORS.map((n) => WeriftSupervisor.login(daemon.httpPort, n, `${n}-password`)));
    const endReasons = new Map<string, number>();
    let monitored = 0;
    const monitorsAre = async (n: number): Promise<void> => {
      let seen: Resources | undefined;
      await eventually(async () => {
        seen = await resources(daemon);
        return seen.monitors === n || undefined;
      }, 10_000, 100).catch((e: Error) => {
        throw new Error(`${e.message}: expected ${n} monitoring legs, metrics say ${JSON.stringify(seen)}`);
      });
    };
    for (const a of agents) a.available();
    const findAgentFor = (number: string): Promise<{ agent: WeriftAgent; callId: string }> =>
      eventually(async () => {
        for (const agent of agents) {
          const m = agent.inbox.find((x) => x.type === 'ringing' && x.call.caller === number);
          if (m && m.type === 'ringing') return { agent, callId: m.call.callId };
        }
        return undefined;
      }, 15_000, 20);
    await Promise.all(
      AGENTS.map(async (_, i) => {
        // Two lanes share a supervisor: one supervisor monitors two calls at once.
        const sup = supervisors[i % supervisors.length];
        for (let n = 0; n < CALLS_PER_AGENT; n++) {
          const number = `55510${i}${String(n).padStart(2, '0')}`;
          const uac = await TestUac.create({ codec: n % 2 ? 'PCMU' : 'PCMA' });
          try {
            assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: number }), 200);
            const { agent, callId } = await findAgentFor(number);
            await agent.waitFor((m) => m.type === 'callConnected' && m.callId === callId, 15_000);
            const first = MODES[n % MODES.length];
            const second = MODES[(n + 1) % MODES.length];
            sup.monitor(callId, first);
            await sup.waitFor((m) => m.type === 'monitorOffer' && m.callId === callId && m.mode === first);
            // The supervisor's leg carries the call's audio (the caller's tone through the mixer).
            await eventually(async () => sup.receivedCount(callId) > 5, 15_000, 20);
            sup.monitor(callId, second);
            await sup.waitFor((m) => m.type === 'monitoring' && m.callId === callId && m.mode === second);
            const end = n % 3;
            if (end === 0) {
              sup.stop(callId);
            } else if (end === 1) {
              assert.equal(await uac.hangup(), 200);
            } else {
              agent.hangup(callId);
              assert.ok(await uac.waitForBye(5000), `BYE after the agent hung up (call ${callId})`);
            }
            const ended = await sup.waitFor<Ended>((m) => m.type === 'monitorEnded' && m.callId === callId);
            assert.equal(ended.reason, end === 0 ? 'stopped' : 'call-ended');
            endReasons.set(ended.reason, (endReasons.get(ended.reason) ?? 0) + 1);
            if (end === 0) assert.equal(await uac.hangup(), 200);
            await agent.waitFor((m) => m.type === 'callEnded' && m.callId === callId, 15_000);
            sup.forget(callId);
            monitored++;
          } finally {
            uac.close();
          }
        }
      }),
    );
    assert.equal(monitored, AGENTS.length * CALLS_PER_AGENT);

    // One more: the supervisor's page goes away mid-call; the leg goes with it, the call goes on.
    const uac = await TestUac.create({ codec: 'PCMA' });
    try {
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: '5551999' }), 200);
      const { agent, callId } = await findAgentFor('5551999');
      await agent.waitFor((m) => m.type === 'callConnected' && m.callId === callId, 15_000);
      const sup = supervisors[0];
      sup.monitor(callId, 'barge');
      await sup.waitFor((m) => m.type === 'monitorOffer' && m.callId === callId);
      await eventually(async () => sup.receivedCount(callId) > 5, 15_000, 20);
      await monitorsAre(1);
      sup.drop();
      await monitorsAre(0);
      const last = await eventually(async () => {
        const [row] = (await daemon.api<{ audit: Array<{ callId: string | null; endReason: string | null }> }>('/api/v1/supervisor-audit?limit=1')).body.audit;
        return row?.callId === callId && row.endReason !== null && row;
      }, 10_000);
      assert.equal(last.endReason, 'supervisor-gone', 'the audit says why the session ended');
      // The call goes on: what the agent says still reaches the caller.
      await eventually(async () => agent.peer(callId)?.connectionState === 'connected', 10_000, 20);
      const before = uac.packetsReceived;
      agent.peer(callId)?.sendAudio(Buffer.alloc(160, 0x55), 1000);
      agent.peer(callId)?.sendAudio(Buffer.alloc(160, 0x55), 1160);
      await eventually(async () => uac.packetsReceived > before, 10_000, 20);
      assert.equal(await uac.hangup(), 200);
      await agent.waitFor((m) => m.type === 'callEnded' && m.callId === callId, 15_000);
    } finally {
      uac.close();
    }
    console.log(`      monitored ${monitored} calls (+1 whose supervisor left); sessions ended: ${[...endReasons].map(([r, c]) => `${r} ${c}`).join(', ')}`);

    for (const a of agents) await a.close();
    for (const s of supervisors) await s.close();
    let last: Resources | undefined;
    // SIP transactions keep their timers for 32 s after the final response (RFC 3261 timers J/L).
    const after = await eventually(async () => {
      const r = await resources(daemon);
      last = r;
      return r.calls === 0 && r.rtpPorts === 0 && r.monitors === 0 && r.handles <= baseline.handles && r.resources <= baseline.resources && r;
    }, 40_000, 1000).catch((e: Error) => {
      throw new Error(`${e.message}: baseline ${JSON.stringify(baseline)}, now ${JSON.stringify(last)}`);
    });
    assert.equal(after.calls, 0);
    assert.equal(after.rtpPorts, 0);
    assert.equal(after.monitors, 0, 'no monitoring leg left');
    assert.ok(after.handles <= baseline.handles, `handles ${after.handles} vs baseline ${baseline.handles}`);
    assert.ok(after.resources <= baseline.resources, `resources ${after.resources} vs baseline ${baseline.resources}`);
  });
});
