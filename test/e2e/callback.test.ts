import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import type { CallRecord } from '../../gateway/store/call-store';
import { eventually, freePort, sleep, startDaemon, type DaemonHandle, type SippResult } from './harness';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';

/** sipp as the PBX side that receives ccedge's outbound call (built-in UAS, echoing RTP). */
function sippUas(port: number): { done: Promise<SippResult> } {
  const args = ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(port), '-m', '1', '-nostdin', '-timeout', '90s', '-timeout_error', '-rtp_echo', '-mi', '127.0.0.1'];
  const proc = spawn('sipp', args, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return { done: new Promise((resolve) => proc.once('exit', (code) => resolve({ code, stdout, stderr, unexpected: [] }))) };
}

describe('queued callback through the PBX trunk', function () {
  let daemon: DaemonHandle;
  let pbxPort: number;
  const config = (port: number): Record<string, unknown> => ({
    calls: { queue: 'support' },
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], outbound: { host: '127.0.0.1', port } }],
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
    agents: [{ name: 'alice', password: 'alice-password' }],
    callbacks: { key: '9', retryAfterS: 1 },
  });
  after(async () => {
    await daemon?.stop();
  });

  it('the caller presses 9, hangs up, and after a restart an agent is connected to the caller by an outbound call', async () => {
    pbxPort = await freePort();
    daemon = await startDaemon({ config: config(pbxPort), env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
    // Nobody is available: the caller waits, then asks for a callback.
    const uac = await TestUac.create({ codec: 'PCMU' });
    assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: '5557001', fromName: 'Call Me' }), 200);
    await sleep(500);
    await uac.sendDtmf('9');
    assert.ok(await uac.waitForBye(5000), 'the caller is released after asking for a callback');
    uac.close();
    // The record is written just after the BYE: wait for it rather than race it.
    const first = await eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls')).body.calls.find((c) => c.endCause !== null));
    assert.equal(first.endCause, 'callback-requested');

    // The callback survives a restart of the daemon.
    const { dataDir, sipPort, httpPort } = daemon;
    assert.equal(await daemon.stop(), 0);
    daemon = await startDaemon({ config: config(pbxPort), dataDir, ports: { sip: sipPort, http: httpPort }, env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
    await daemon.waitForLog((l) => l.msg === 'restored owed callbacks');

    const pbx = sippUas(pbxPort);
    await sleep(300);
    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
    try {
      alice.available();
      const ringing = await alice.waitFor((m) => m.type === 'ringing');
      assert.equal(ringing.type === 'ringing' && ringing.call.caller, '5557001');
      const connected = await alice.waitFor((m) => m.type === 'callConnected', 20_000);
      const callId = connected.type === 'callConnected' ? connected.callId : '';
      // sipp echoes our RTP: audio the agent sends comes back through the PBX leg.
      const peer = alice.peer(callId);
      assert.ok(peer);
      for (let i = 0; i < 25; i++) {
        peer.sendAudio(Buffer.alloc(160, 0x2a), 1000 + i * 160);
        await sleep(20);
      }
      await eventually(async () => peer.received.some((p) => p.payload[0] === 0x2a), 10_000, 50);
      alice.hangup(callId);
      const r = await pbx.done;
      assert.equal(r.code, 0, `sipp UAS: ${r.stdout.slice(-1500)}`);
      const rec = await eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls')).body.calls.find((c) => c.direction === 'outbound' && c.state === 'ended'));
      assert.equal(rec.toUser, '5557001');
      assert.equal(rec.agent, 'alice');
      assert.equal(rec.endCause, 'agent-hangup');
      // The callback is recorded like any answered call (default policy: record all).
      const recording = await eventually(async () =>
        (await daemon.api<{ recordings: Array<{ callId: string; state: string; durationMs: number }> }>('/api/v1/recordings')).body.recordings.find((r) => r.callId === rec.id && r.state === 'final'),
      );
      assert.ok(recording.durationMs > 0);
    } finally {
      await alice.close();
    }
  });
});
