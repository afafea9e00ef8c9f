import assert from 'node:assert/strict';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { resources } from './leak-probe';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';

const AGENTS = ['a1', 'a2', 'a3', 'a4'];
const CALLS_PER_AGENT = 25;

describe('call lifecycle: nothing survives a call', function () {
  let daemon: DaemonHandle;
  before(async () => {
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support' },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
        queues: [{ name: 'support', ringTimeoutS: 10, wrapUpS: 0 }],
        agents: AGENTS.map((name) => ({ name, password: `${name}-password` })),
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1', CCEDGE_LOG_LEVEL: 'warn' },
    });
  });
  after(async () => {
    await daemon?.stop();
  });

  it('after 100 SIP↔WebRTC calls, open handles, RTP ports and calls are back to the baseline', async () => {
    await sleep(500);
    const baseline = await resources(daemon);
    assert.ok(Number.isFinite(baseline.handles) && Number.isFinite(baseline.resources), JSON.stringify(baseline));
    const agents = await Promise.all(AGENTS.map((n) => WeriftAgent.login(daemon.httpPort, n, `${n}-password`)));
    let bridged = 0;
    for (const a of agents) a.available();
    // Four callers at a time; whichever agent the ACD picks takes the call (found by caller number).
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
        for (let n = 0; n < CALLS_PER_AGENT; n++) {
          const number = `55500${i}${String(n).padStart(2, '0')}`;
          const uac = await TestUac.create({ codec: n % 2 ? 'PCMU' : 'PCMA' });
          try {
            assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: number }), 200);
            const { agent, callId } = await findAgentFor(number);
            await agent.waitFor((m) => m.type === 'callConnected' && m.callId === callId, 15_000);
            // Bridged both ways: the agent's peer hears the caller's tone, the caller gets the agent's RTP.
            await eventually(async () => (agent.peer(callId)?.received.length ?? 0) > 3, 10_000, 20);
            const before = uac.packetsReceived;
            agent.peer(callId)?.sendAudio(Buffer.alloc(160, 0x55), 1000);
            agent.peer(callId)?.sendAudio(Buffer.alloc(160, 0x55), 1160);
            await eventually(async () => uac.packetsReceived > before, 10_000, 20);
            bridged++;
            if (n % 2) {
              assert.equal(await uac.hangup(), 200);
            } else {
              agent.hangup(callId);
              assert.ok(await uac.waitForBye(5000), `BYE after the agent hung up (call ${callId})`);
            }
            await agent.waitFor((m) => m.type === 'callEnded' && m.callId === callId, 15_000);
          } finally {
            uac.close();
          }
        }
      }),
    );
    assert.equal(bridged, AGENTS.length * CALLS_PER_AGENT);
    for (const a of agents) await a.close();
    let last: Awaited<ReturnType<typeof resources>> | undefined;
    // SIP transactions rightly keep their timers for 32 s after the final response (RFC 3261
    // timers J/L); a leak is what is still there after that.
    const after = await eventually(async () => {
      const r = await resources(daemon);
      last = r;
      return r.calls === 0 && r.rtpPorts === 0 && r.handles <= baseline.handles && r.resources <= baseline.resources && r;
    }, 40_000, 1000).catch((e: Error) => {
      throw new Error(`${e.message}: baseline ${JSON.stringify(baseline)}, now ${JSON.stringify(last)}`);
    });
    assert.equal(after.calls, 0);
    assert.equal(after.rtpPorts, 0);
    assert.ok(after.handles <= baseline.handles, `handles ${after.handles} vs baseline ${baseline.handles}`);
    assert.ok(after.resources <= baseline.resources, `resources ${after.resources} vs baseline ${baseline.resources}`);
  });
});
