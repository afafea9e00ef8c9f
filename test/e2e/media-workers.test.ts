import assert from 'node:assert/strict';
import type { CallRecord } from '../../gateway/store/call-store';
import { eventually, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { TestUas } from './test-uas';

type CallDetail = { call: CallRecord; events: Array<{ type: string; data: Record<string, unknown> }> };
type WorkerStatus = { index: number; alive: boolean; sessions: number; restarts: number };

/**
 * media.workers (issue 19): forwarded RTP↔RTP calls carry their media on worker threads. The PBX
 * is TestUacs on 127.0.0.1, the far end a TestUas on 127.0.0.2 echoing RTP, so a caller hearing
 * its own tone back proves both directions through the worker. A worker killed mid-call (the
 * admin API's restart, which ends the thread as a crash would) ends only the calls it carried.
 */
describe('media workers: forwarded calls on worker threads, one killed mid-call', function () {
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
      },
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

  async function ended(toUser: string): Promise<CallDetail> {
    const rec = await eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=50')).body.calls.find((c) => c.toUser === toUser && c.state === 'ended'), 10_000);
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

  it('the restart API: admin only, an unknown worker is 404', async () => {
    const post = (path: string, token: string): Promise<Response> => fetch(`http://127.0.0.1:${daemon.httpPort}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal((await post('/api/v1/media/workers/7/restart', daemon.adminToken)).status, 404);
    assert.equal((await post('/api/v1/media/workers/0/restart', 'not-the-token-at-all')).status, 401);
    assert.deepEqual((await workers()).map((w) => w.alive), [true, true]);
  });
});
