import assert from 'node:assert/strict';
import type { CallRecord } from '../../gateway/store/call-store';
import { assertSippOk, eventually, runCli, runSipp, startDaemon, type DaemonHandle } from './harness';

describe('the demo daemon under a PBX load', function () {
  let daemon: DaemonHandle;
  before(async () => {
    // No --config: the embedded demo configuration that `npm start` runs on.
    daemon = await startDaemon({ env: { CCEDGE_LOG_LEVEL: 'warn' } });
  });
  after(async () => {
    await daemon?.stop();
  });

  it('sipp places 200 calls at 20 calls/s; all succeed and every one is in `ccedge calls --json`', async () => {
    const r = await runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 200, rate: 20, limit: 100, durationMs: 500, timeoutS: 60 });
    assertSippOk(r);
    assert.match(r.stdout, /Successful call\s*\|\s*\d+\s*\|\s*200\b/);
    const calls = await eventually(async () => {
      const out = await runCli(['calls', '--json'], { CCEDGE_DATA_DIR: daemon.dataDir });
      assert.equal(out.code, 0, out.stderr);
      const list = (JSON.parse(out.stdout) as CallRecord[]).filter((c) => c.state === 'ended');
      return list.length >= 200 ? list : undefined;
    }, 15000, 500);
    assert.equal(calls.length, 200);
    assert.equal(new Set(calls.map((c) => c.sipCallId)).size, 200, 'one record per SIP call');
    for (const c of calls) {
      assert.equal(c.endCause, 'caller-hangup', `${c.sipCallId}: ${String(c.endCause)}`);
      assert.ok(c.rtpPacketsSent > 0, `${c.sipCallId}: no RTP sent`);
    }
    const health = (await (await fetch(`http://127.0.0.1:${daemon.httpPort}/healthz`)).json()) as { calls: number; rtpPortsInUse: number };
    assert.equal(health.calls, 0, 'no call left behind');
    assert.equal(health.rtpPortsInUse, 0, 'every RTP port returned');
  });
});
