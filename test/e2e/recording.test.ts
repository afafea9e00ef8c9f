import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { ulawToLinear } from '../../media/tones/g711';
import { eventually, runCli, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';

const SUPERVISOR = 'supervisor-token-0123456789';
const COMPLIANCE = 'compliance-token-0123456789';

describe('on-site recording of a bridged call', function () {
  let daemon: DaemonHandle;
  before(async () => {
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support' },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
        queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
        agents: [{ name: 'alice', password: 'alice-password' }],
        recording: { record: 'all', retentionDays: 30 },
        http: {
          tokens: [
            { name: 'sam', token: SUPERVISOR, role: 'supervisor' },
            { name: 'carla', token: COMPLIANCE, role: 'compliance' },
          ],
        },
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
  });
  after(async () => {
    await daemon?.stop();
  });

  const get = (p: string, token: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`http://127.0.0.1:${daemon.httpPort}${p}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

  it('records caller and agent into the encrypted vault; only compliance plays it, with a reason; verify catches tampering', async () => {
    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
    const uac = await TestUac.create({ codec: 'PCMU' });
    try {
      alice.available();
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: '5558001' }), 200);
      const c = await alice.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected');
      const peer = alice.peer(c.callId);
      assert.ok(peer);
      for (let i = 0; i < 50; i++) {
        peer.sendAudio(Buffer.alloc(160, 0x2a), 5000 + i * 160);
        await sleep(20);
      }
      assert.equal(await uac.hangup(), 200);
    } finally {
      uac.close();
      await alice.close();
    }
    const recs = await eventually(async () => {
      const r = (await daemon.api<{ recordings: Array<{ id: string; callId: string; state: string; durationMs: number }> }>('/api/v1/recordings')).body.recordings;
      return r.length === 1 && r[0].state === 'final' && r;
    }, 15_000);
    const rec = recs[0];
    assert.ok(rec.durationMs > 500, `duration ${rec.durationMs} ms`);

    // The file on disk is not audio.
    const dir = path.join(daemon.dataDir, 'recordings');
    const file = path.join(dir, readdirSync(dir).find((f) => f.startsWith(rec.id)) ?? '');
    const bytes = readFileSync(file);
    assert.equal(bytes.includes('RIFF'), false);
    assert.equal(bytes.includes(Buffer.alloc(32, 0x2a)), false, 'the agent audio is not on disk in the clear');

    const audio = `/api/v1/recordings/${rec.id}/audio`;
    assert.equal((await get(audio, SUPERVISOR, { 'x-ccedge-reason': 'curious' })).status, 403);
    assert.equal((await get(audio, COMPLIANCE)).status, 400, 'a reason is required');
    const full = await get(audio, COMPLIANCE, { 'x-ccedge-reason': 'complaint 42' });
    assert.equal(full.status, 200);
    const wav = Buffer.from(await full.arrayBuffer());
    assert.equal(wav.subarray(0, 4).toString(), 'RIFF');
    assert.equal(wav.readUInt16LE(20), 7, 'G.711 µ-law');
    assert.equal(wav.readUInt16LE(22), 2, 'two channels');
    // Interleaved stereo: the right channel (odd bytes after the header) carries the agent.
    const data = wav.subarray(58);
    const right = Buffer.from(data.filter((_, i) => i % 2 === 1));
    assert.ok(right.includes(Buffer.alloc(80, 0x2a)), 'the agent audio is on the right channel');
    // The left channel carries the caller's 1 kHz tone: real energy, not µ-law silence (0xFF).
    const left = Buffer.from(data.filter((_, i) => i % 2 === 0));
    const rms = Math.sqrt(left.reduce((sum, b) => sum + ulawToLinear(b) ** 2, 0) / left.length);
    assert.ok(rms > 1000, `caller channel RMS ${rms.toFixed(0)}`);
    const part = await get(audio, COMPLIANCE, { 'x-ccedge-reason': 'complaint 42', range: 'bytes=0-99' });
    assert.equal(part.status, 206);
    assert.equal((await part.arrayBuffer()).byteLength, 100);

    const ok = await runCli(['recordings', 'verify'], { CCEDGE_DATA_DIR: daemon.dataDir });
    assert.equal(ok.code, 0, ok.stderr);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 40] ^= 0xff;
    writeFileSync(file, tampered);
    const bad = await runCli(['recordings', 'verify'], { CCEDGE_DATA_DIR: daemon.dataDir });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(rec.id));
  });

  it('kill -9 during a recorded call: after the restart the recording is kept up to the last whole chunk', async () => {
    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
    const uac = await TestUac.create({ codec: 'PCMU' });
    alice.available();
    assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: '5558002' }), 200);
    await alice.waitFor((m) => m.type === 'callConnected');
    await sleep(6000); // > one 64 KiB chunk of stereo G.711 (16 KB/s)
    const { dataDir, sipPort, httpPort, pid } = daemon;
    process.kill(pid, 'SIGKILL');
    await daemon.exited;
    uac.close();
    await alice.close().catch(() => undefined);
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support' },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
        queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
        agents: [{ name: 'alice', password: 'alice-password' }],
        http: { tokens: [{ name: 'carla', token: COMPLIANCE, role: 'compliance' }] },
      },
      dataDir,
      ports: { sip: sipPort, http: httpPort },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
    const list = (await daemon.api<{ recordings: Array<{ id: string; state: string; durationMs: number; recovered: boolean; endReason: string | null }> }>('/api/v1/recordings')).body.recordings;
    const rec = list.find((r) => r.recovered);
    assert.ok(rec, JSON.stringify(list));
    assert.equal(rec.state, 'final');
    assert.ok(rec.durationMs >= 3000, `kept ${rec.durationMs} ms`);
    const res = await get(`/api/v1/recordings/${rec.id}/audio`, COMPLIANCE, { 'x-ccedge-reason': 'crash review' });
    assert.equal(res.status, 200);
    assert.equal(Buffer.from(await res.arrayBuffer()).subarray(0, 4).toString(), 'RIFF');
  });
});
