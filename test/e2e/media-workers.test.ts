import assert from 'node:assert/strict';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import type { CallRecord } from '../../gateway/store/call-store';
import { eventually, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { TestUas } from './test-uas';
import { PEER_TONES, ToneEar, checkHears } from './tones';
import { WeriftAgent } from './werift-agent';

type CallDetail = { call: CallRecord; events: Array<{ type: string; data: Record<string, unknown> }> };
type WorkerStatus = { index: number; alive: boolean; sessions: number; restarts: number };
const COMPLIANCE = 'compliance-token-for-media-workers-e2e';

/**
 * media.workers (issue 19): forwarded RTP↔RTP calls carry their media on worker threads. The PBX
 * is TestUacs on 127.0.0.1, the far end a TestUas on 127.0.0.2 echoing RTP, so a caller hearing
 * its own tone back proves both directions through the worker. A worker killed mid-call (the
 * admin API's restart, which ends the thread as a crash would) ends only the calls it carried.
 */
function describeShares(ear: ToneEar): string {
  return PEER_TONES.map((hz) => `${hz} Hz ${ear.share(hz).toFixed(2)}`).join(', ');
}

describe('media workers: forwarded and desk calls on worker threads, one killed mid-call', function () {
  let daemon: DaemonHandle;
  let far: TestUas;
  const uacs: TestUac[] = [];

  before(async () => {
    far = await TestUas.create({ localIp: '127.0.0.2' });
    daemon = await startDaemon({
      config: {
        media: { workers: 2 },
        trunks: [
          { name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMU'] },
          { name: 'far', allow: ['127.0.0.2/32'], codecs: ['PCMU'], outbound: { host: '127.0.0.2', port: far.sipPort } },
        ],
        routing: { forward: [{ match: '/^8\\d+$/', trunk: 'far' }] },
        calls: { queue: 'support' },
        queues: [{ name: 'support', ringTimeoutS: 15, wrapUpS: 1 }],
        agents: [
          { name: 'alice', displayName: 'Alice', password: 'alice-secret' },
          { name: 'bob', displayName: 'Bob', password: 'bob-secret' },
        ],
        recording: { record: 'all', retentionDays: 30 },
        http: { tokens: [{ name: 'carla', token: COMPLIANCE, role: 'compliance' }] },
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
  });

  after(async () => {
    for (const u of uacs) u.close();
    await daemon?.stop();
    far?.close();
  });

  async function workers(): Promise<WorkerStatus[]> {
    const r = await daemon.api<{ workers: WorkerStatus[] }>('/api/v1/media/workers');
    assert.equal(r.status, 200);
    return r.body.workers;
  }

  async function ended(toUser: string, id?: string): Promise<CallDetail> {
    const rec = await eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=50')).body.calls.find((c) => c.toUser === toUser && c.state === 'ended' && (id === undefined || c.id === id)), 10_000);
    return (await daemon.api<CallDetail>(`/api/v1/calls/${rec.id}`)).body;
  }

  async function forwardedCall(to: string): Promise<{ uac: TestUac; farIndex: number }> {
    const uac = await TestUac.create({ codec: 'PCMU' });
    uacs.push(uac);
    const farIndex = far.calls.length;
    assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { to }), 200);
    await far.until(() => far.calls.length === farIndex + 1 && far.calls[farIndex].acked);
    // The caller's tone reaches the far end and its echo comes back: both directions run.
    await eventually(async () => uac.packetsReceived >= 25 && uac.receivedLevel > 1000, 10_000, 50);
    return { uac, farIndex };
  }

  it('a killed worker ends only its calls (BYE to both ends, records closed); the others go on; it restarts and takes new calls', async () => {
    const calls = [];
    for (let i = 0; i < 4; i++) calls.push({ to: `80${i}`, ...(await forwardedCall(`80${i}`)) });
    // Least loaded placement: two calls (four RTP sessions) on each worker.
    assert.deepEqual((await workers()).map((w) => [w.alive, w.sessions]), [[true, 4], [true, 4]]);

    const res = await fetch(`http://127.0.0.1:${daemon.httpPort}/api/v1/media/workers/0/restart`, { method: 'POST', headers: { authorization: `Bearer ${daemon.adminToken}` } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { worker: 0, sessionsEnded: 4 });

    const byes = await Promise.all(calls.map((c) => c.uac.waitForBye(5000)));
    assert.equal(byes.filter(Boolean).length, 2, `exactly two callers get BYE: ${JSON.stringify(byes)}`);
    for (const [i, c] of calls.entries()) {
      if (byes[i]) {
        await far.until(() => far.calls[c.farIndex].byeReceived);
        const d = await ended(c.to);
        assert.equal(d.call.endCause, 'media-failed');
        assert.ok(d.events.some((e) => e.type === 'call.ended'), 'call.ended written');
      } else {
        // Still up on the other worker: audio keeps coming both ways, no BYE to the far end.
        c.uac.resetMeasurement();
        await eventually(async () => c.uac.packetsReceived >= 25 && c.uac.receivedLevel > 1000, 10_000, 50);
        assert.equal(far.calls[c.farIndex].byeReceived, false);
      }
    }
    const after = await workers();
    assert.deepEqual(after.map((w) => [w.alive, w.sessions, w.restarts]), [[true, 0, 1], [true, 4, 0]]);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    assert.match(metrics, /^ccedge_media_worker_deaths_total\{worker="0"\} 1$/m);
    assert.match(metrics, /^ccedge_media_workers_alive 2$/m);
    assert.match(metrics, /^ccedge_media_worker_sessions\{worker="1"\} 4$/m);

    // A new call goes to the least loaded worker: the restarted one, and it carries audio.
    const fresh = await forwardedCall('899');
    assert.deepEqual((await workers()).map((w) => w.sessions), [2, 4]);

    for (const [i, c] of [...calls.filter((_, j) => !byes[j]), { to: '899', ...fresh }].entries()) {
      assert.equal(await c.uac.hangup(), 200, `hangup ${i}`);
      await far.until(() => far.calls[c.farIndex].byeReceived);
      assert.equal((await ended(c.to)).call.endCause, 'caller-hangup');
    }
    await eventually(async () => ((await workers()).every((w) => w.sessions === 0) ? true : undefined), 5000);
    // Every control message applied on the worker (a refused one is logged with this code).
    assert.deepEqual(daemon.logs.filter((l) => l.code === 'MEDIA_WORKER_PROTOCOL'), []);
    assert.equal(daemon.logs.filter((l) => l.msg === 'media worker died: its calls end').length, 1);
  });

  it('desk calls too: agents’ WebRTC legs and recordings run on the call’s worker; a killed worker ends its desk call (BYE, page told, recording kept), the other goes on', async () => {
    const CALLER_HZ = 1000;
    const AGENT_HZ: Record<string, number> = { alice: 600, bob: 800 };
    const agents = [await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-secret'), await WeriftAgent.login(daemon.httpPort, 'bob', 'bob-secret')];
    try {
      const desk: { agent: WeriftAgent; uac: TestUac; callId: string }[] = [];
      for (const a of agents) {
        a.toneHz = AGENT_HZ[a.name];
        a.available();
        await eventually(async () => (await daemon.api<{ agents: Array<{ name: string; state: string }> }>('/api/v1/agents')).body.agents.find((x) => x.name === a.name)?.state === 'available' || undefined, 10_000);
        const uac = await TestUac.create({ codec: 'PCMU', toneHz: CALLER_HZ, detect: PEER_TONES });
        uacs.push(uac);
        const from = a.inbox.length;
        assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { to: '100' }), 200);
        const connected = await a.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected', 20_000, from);
        desk.push({ agent: a, uac, callId: connected.callId });
      }
      // One desk call per worker: its caller's RTP session and its agent's WebRTC leg.
      assert.deepEqual((await workers()).map((w) => w.sessions), [2, 2]);
      for (const d of desk) {
        await eventually(async () => (await daemon.api<{ recordings: Array<{ callId: string }> }>('/api/v1/recordings')).body.recordings.some((r) => r.callId === d.callId) || undefined, 10_000);
      }
      // Both ways on both calls, through the workers.
      const marks = desk.map((d) => d.agent.receivedCount(d.callId));
      for (const d of desk) d.uac.resetMeasurement();
      await eventually(async () => desk.every((d, i) => d.agent.hears(d.callId, marks[i]).samples >= 16_000 && d.uac.tones.report().samples >= 16_000) || undefined, 15_000, 100);
      for (const [i, d] of desk.entries()) {
        assert.equal(checkHears(`${d.agent.name}`, d.agent.hears(d.callId, marks[i]), [CALLER_HZ]), null);
        assert.equal(checkHears(`${d.agent.name}'s caller`, d.uac.tones.report(), [AGENT_HZ[d.agent.name]]), null);
      }

      const res = await fetch(`http://127.0.0.1:${daemon.httpPort}/api/v1/media/workers/0/restart`, { method: 'POST', headers: { authorization: `Bearer ${daemon.adminToken}` } });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { worker: 0, sessionsEnded: 2 });
      const byes = await Promise.all(desk.map((d) => d.uac.waitForBye(5000)));
      assert.equal(byes.filter(Boolean).length, 1, `exactly one caller gets BYE: ${JSON.stringify(byes)}`);
      const lost = desk[byes.indexOf(true)];
      const kept = desk[byes.indexOf(false)];
      await lost.agent.waitFor((m) => m.type === 'callEnded' && m.callId === lost.callId, 10_000);
      assert.equal((await ended('100', lost.callId)).call.endCause, 'media-failed');

      // The other call goes on both ways; its agent was told nothing.
      const mark = kept.agent.receivedCount(kept.callId);
      kept.uac.resetMeasurement();
      await eventually(async () => (kept.agent.hears(kept.callId, mark).samples >= 16_000 && kept.uac.tones.report().samples >= 16_000) || undefined, 15_000, 100);
      assert.equal(checkHears(kept.agent.name, kept.agent.hears(kept.callId, mark), [CALLER_HZ]), null);
      assert.equal(checkHears(`${kept.agent.name}'s caller`, kept.uac.tones.report(), [AGENT_HZ[kept.agent.name]]), null);
      assert.equal(kept.agent.inbox.some((m) => m.type === 'callEnded' && m.callId === kept.callId), false);
      assert.equal(await kept.uac.hangup(), 200);
      await kept.agent.waitFor((m) => m.type === 'callEnded' && m.callId === kept.callId, 10_000);

      // Both recordings are finalised; each has its caller on the left and its agent on the right,
      // the lost call's up to the moment its worker died.
      for (const d of desk) {
        const rec = await eventually(async () => (await daemon.api<{ recordings: Array<{ id: string; callId: string; state: string }> }>('/api/v1/recordings')).body.recordings.find((r) => r.callId === d.callId && r.state === 'final'), 15_000);
        const wav = await fetch(`http://127.0.0.1:${daemon.httpPort}/api/v1/recordings/${rec.id}/audio`, { headers: { authorization: `Bearer ${COMPLIANCE}`, 'x-ccedge-reason': 'media worker test' } });
        assert.equal(wav.status, 200);
        const bytes = Buffer.from(await wav.arrayBuffer());
        assert.equal(bytes.readUInt16LE(22), 2, 'two channels');
        const data = bytes.subarray(58);
        const left = new ToneEar(PEER_TONES);
        const right = new ToneEar(PEER_TONES);
        for (let i = 0; i + 320 <= data.length; i += 320) {
          left.push(Buffer.from(data.subarray(i, i + 320).filter((_, j) => j % 2 === 0)), 'PCMU');
          right.push(Buffer.from(data.subarray(i, i + 320).filter((_, j) => j % 2 === 1)), 'PCMU');
        }
        console.log(`      ${d.agent.name}'s recording: left ${describeShares(left)}; right ${describeShares(right)}`);
        assert.ok(left.share(CALLER_HZ) >= 0.5, `the caller is on the left of ${d.agent.name}'s recording`);
        assert.ok(right.share(AGENT_HZ[d.agent.name]) >= 0.5, `${d.agent.name} is on the right of the recording`);
      }
      await eventually(async () => ((await workers()).every((w) => w.sessions === 0) ? true : undefined), 10_000);
      assert.deepEqual(daemon.logs.filter((l) => l.code === 'MEDIA_WORKER_PROTOCOL'), []);
    } finally {
      for (const a of agents) await a.close();
    }
  });

  it('the restart API: admin only, an unknown worker is 404', async () => {
    const post = (path: string, token: string): Promise<Response> => fetch(`http://127.0.0.1:${daemon.httpPort}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal((await post('/api/v1/media/workers/7/restart', daemon.adminToken)).status, 404);
    assert.equal((await post('/api/v1/media/workers/0/restart', 'not-the-token-at-all')).status, 401);
    assert.deepEqual((await workers()).map((w) => w.alive), [true, true]);
  });
});
