import assert from 'node:assert/strict';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { resources } from './leak-probe';
import { TestUac } from './test-uac';
import { TestUas } from './test-uas';
import { WeriftAgent } from './werift-agent';

/*
 * Like lifecycle.test.ts, for blind transfers: 100 calls, each answered by a werift agent and
 * handed on — half bridged to an extension through the trunk (TestUas on its own address), half
 * to another queue where a second agent answers the same call. Afterwards no call, RTP port,
 * socket, timer or other handle may be left over.
 */

const EXTENSION_IP = '127.0.0.4';
const FIRST = ['f1', 'f2'];
const SECOND = ['s1', 's2'];
const WORKERS = 2;
const CALLS_PER_WORKER = 50;

describe('transfer lifecycle: nothing survives 100 blind transfers', function () {
  let daemon: DaemonHandle;
  let extension: TestUas;
  before(async () => {
    extension = await TestUas.create({ localIp: EXTENSION_IP, toneHz: 1400 });
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support' },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32', `${EXTENSION_IP}/32`], outbound: { host: EXTENSION_IP, port: extension.sipPort } }],
        queues: [
          { name: 'support', ringTimeoutS: 10, wrapUpS: 0 },
          { name: 'sales', ringTimeoutS: 10, wrapUpS: 0 },
        ],
        agents: [...FIRST.map((name) => ({ name, password: `${name}-password`, queues: ['support'] })), ...SECOND.map((name) => ({ name, password: `${name}-password`, queues: ['sales'] }))],
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1', CCEDGE_LOG_LEVEL: 'warn' },
    });
  });
  after(async () => {
    await daemon?.stop();
    extension?.close();
  });

  it('after 100 transfers (50 bridged to an extension, 50 to a queue), legs, RTP ports, timers and handles are back to the baseline', async () => {
    await sleep(500);
    const baseline = await resources(daemon);
    assert.ok(Number.isFinite(baseline.handles) && Number.isFinite(baseline.resources), JSON.stringify(baseline));
    const first = await Promise.all(FIRST.map((n) => WeriftAgent.login(daemon.httpPort, n, `${n}-password`)));
    const second = await Promise.all(SECOND.map((n) => WeriftAgent.login(daemon.httpPort, n, `${n}-password`)));
    for (const a of [...first, ...second]) a.available();
    const ringingAt = (agents: WeriftAgent[], pred: (m: Extract<ServerMessage, { type: 'ringing' }>) => boolean): Promise<{ agent: WeriftAgent; callId: string }> =>
      eventually(async () => {
        for (const agent of agents) {
          const m = agent.inbox.find((x) => x.type === 'ringing' && pred(x));
          if (m && m.type === 'ringing') return { agent, callId: m.call.callId };
        }
        return undefined;
      }, 15_000, 20);
    const up = async (agent: WeriftAgent, callId: string): Promise<void> => {
      await agent.waitFor((m) => m.type === 'callConnected' && m.callId === callId, 15_000);
      await eventually(async () => (agent.peer(callId)?.received.length ?? 0) > 3, 10_000, 20);
    };
    let bridged = 0;
    let queued = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        for (let n = 0; n < CALLS_PER_WORKER; n++) {
          const number = `55510${w}${String(n).padStart(2, '0')}`;
          const uac = await TestUac.create({ codec: n % 4 < 2 ? 'PCMU' : 'PCMA' });
          try {
            assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: number }), 200);
            const { agent, callId } = await ringingAt(first, (m) => m.call.caller === number);
            await up(agent, callId);
            const mark = agent.inbox.length;
            if (n % 2) {
              agent.send({ type: 'transfer', callId, target: '2001', mode: 'blind' });
              await agent.waitFor((m) => m.type === 'callEnded' && m.callId === callId, 15_000, mark);
              // Joined to the extension: its RTP reaches the caller.
              const before = uac.packetsReceived;
              await eventually(async () => uac.packetsReceived > before + 5, 10_000, 20);
              assert.equal(await uac.hangup(), 200);
              bridged++;
            } else {
              agent.send({ type: 'transfer', callId, target: 'queue:sales', mode: 'blind' });
              await agent.waitFor((m) => m.type === 'callEnded' && m.callId === callId, 15_000, mark);
              const next = await ringingAt(second, (m) => m.call.callId === callId);
              await up(next.agent, callId);
              if (n % 4 === 0) {
                assert.equal(await uac.hangup(), 200);
              } else {
                next.agent.hangup(callId);
                assert.ok(await uac.waitForBye(5000), `BYE after the second agent hung up (call ${callId})`);
              }
              await next.agent.waitFor((m) => m.type === 'callEnded' && m.callId === callId, 15_000);
              queued++;
            }
          } finally {
            uac.close();
          }
        }
      }),
    );
    assert.equal(bridged + queued, WORKERS * CALLS_PER_WORKER);
    for (const a of [...first, ...second]) await a.close();
    let last: Awaited<ReturnType<typeof resources>> | undefined;
    // SIP transactions rightly keep their timers for 32 s after the final response (RFC 3261 timers J/L).
    const after = await eventually(async () => {
      const r = await resources(daemon);
      last = r;
      return extension.calls.every((c) => c.byeReceived) && r.calls === 0 && r.rtpPorts === 0 && r.handles <= baseline.handles && r.resources <= baseline.resources && r;
    }, 45_000, 1000).catch((e: Error) => {
      throw new Error(`${e.message}: baseline ${JSON.stringify(baseline)}, now ${JSON.stringify(last)}`);
    });
    console.log(`      ${bridged} bridged, ${queued} to a queue; baseline ${JSON.stringify(baseline)}, after ${JSON.stringify(after)}`);
    assert.equal(after.calls, 0);
    assert.equal(after.rtpPorts, 0);
    assert.ok(after.handles <= baseline.handles, `handles ${after.handles} vs baseline ${baseline.handles}`);
    assert.ok(after.resources <= baseline.resources, `resources ${after.resources} vs baseline ${baseline.resources}`);
    assert.ok(extension.calls.length >= bridged && extension.calls.every((c) => c.byeReceived), 'every extension call got BYE');
  });
});
