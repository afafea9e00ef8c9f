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

  it('the agent pauses the recording for card details: the gap is silence, audited; compliance sees callers, holds and rotates the key', async () => {
    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
    const uac = await TestUac.create({ codec: 'PCMU' });
    let callId = '';
    try {
      alice.available();
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: '5558003' }), 200);
      const c = await alice.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected');
      callId = c.callId;
      await alice.waitFor((m) => m.type === 'recording' && m.active);
      const peer = alice.peer(c.callId);
      assert.ok(peer);
      let ts = 9000;
      const talk = async (byte: number, packets: number): Promise<void> => {
        for (let i = 0; i < packets; i++) {
          peer.sendAudio(Buffer.alloc(160, byte), (ts += 160));
          await sleep(20);
        }
      };
      await talk(0x2a, 40);
      const from = alice.inbox.length;
      alice.send({ type: 'recordingPause', callId: c.callId, on: true, reason: 'card details' });
      await alice.waitFor((m) => m.type === 'recording' && m.paused, 5000, from);
      await talk(0x55, 40); // the card number: must never reach the vault
      alice.send({ type: 'recordingPause', callId: c.callId, on: false });
      await alice.waitFor((m) => m.type === 'recording' && !m.paused, 5000, from);
      await talk(0x2a, 40);
      assert.equal(await uac.hangup(), 200);
    } finally {
      uac.close();
      await alice.close();
    }
    const rec = await eventually(async () => {
      const r = (await daemon.api<{ recordings: Array<{ id: string; callId: string; state: string; pausedMs?: number }> }>('/api/v1/recordings')).body.recordings;
      return r.find((x) => x.callId === callId && x.state === 'final');
    }, 15_000);
    const wav = Buffer.from(await (await get(`/api/v1/recordings/${rec.id}/audio`, COMPLIANCE, { 'x-ccedge-reason': 'QA review' })).arrayBuffer());
    const right = Buffer.from(wav.subarray(58).filter((_, i) => i % 2 === 1));
    assert.ok(right.includes(Buffer.alloc(80, 0x2a)), 'the agent before and after the pause is recorded');
    assert.equal(right.includes(Buffer.alloc(16, 0x55)), false, 'audio from the paused stretch is in the recording');

    const audit = await runCli(['recordings', 'audit', rec.id, '--json'], { CCEDGE_DATA_DIR: daemon.dataDir });
    assert.equal(audit.code, 0, audit.stderr);
    const entries = JSON.parse(audit.stdout) as Array<{ actor: string; action: string; reason: string | null }>;
    assert.ok(entries.some((e) => e.action === 'paused' && e.actor === 'alice' && e.reason === 'card details'), audit.stdout);
    assert.ok(entries.some((e) => e.action === 'resumed' && e.actor === 'alice'), audit.stdout);
    assert.ok(entries.some((e) => e.action === 'played' && e.actor === 'carla' && e.reason === 'QA review'), audit.stdout);

    // Caller details: compliance only.
    type Listed = { id: string; caller?: { number: string | null } | null };
    const asCompliance = (await (await get('/api/v1/recordings', COMPLIANCE)).json()) as { recordings: Listed[] };
    assert.equal(asCompliance.recordings.find((r) => r.id === rec.id)?.caller?.number, '5558003');
    const asSupervisor = (await (await get('/api/v1/recordings', SUPERVISOR)).json()) as { recordings: Listed[] };
    assert.equal(asSupervisor.recordings.find((r) => r.id === rec.id)?.caller, undefined);
    assert.equal(JSON.stringify(asSupervisor).includes('5558003'), false);

    const post = (p: string, token: string, body: unknown): Promise<Response> =>
      fetch(`http://127.0.0.1:${daemon.httpPort}${p}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post('/api/v1/recordings/holds', SUPERVISOR, { callId, reason: 'x' })).status, 403);
    assert.equal((await post('/api/v1/recordings/holds', COMPLIANCE, { callId })).status, 400, 'a hold needs a reason');
    const held = await post('/api/v1/recordings/holds', COMPLIANCE, { callId, reason: 'dispute 12' });
    assert.equal(held.status, 200);
    assert.deepEqual(await held.json(), { callId, on: true, recordings: 1 });

    // Key rotation through the CLI is carried out by the running daemon; the audio stays playable.
    const env = { CCEDGE_DATA_DIR: daemon.dataDir, CCEDGE_HTTP_PORT: String(daemon.httpPort), CCEDGE_HTTP_HOST: '127.0.0.1', CCEDGE_ADMIN_TOKEN: daemon.adminToken };
    const noReason = await runCli(['recordings', 'rotate-key'], env);
    assert.equal(noReason.code, 2);
    assert.match(noReason.stderr, /--reason/);
    const rotated = await runCli(['recordings', 'rotate-key', '--reason', 'annual rotation'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, /rotated by the running daemon: \S+ → \S+, \d+ data keys re-wrapped/);
    const again = await get(`/api/v1/recordings/${rec.id}/audio`, COMPLIANCE, { 'x-ccedge-reason': 'after rotation' });
    assert.equal(again.status, 200);
    assert.deepEqual(Buffer.from(await again.arrayBuffer()), wav);
    const after = JSON.parse((await runCli(['recordings', 'audit', '--json'], { CCEDGE_DATA_DIR: daemon.dataDir })).stdout) as Array<{ action: string; reason: string | null }>;
    assert.ok(after.some((e) => e.action === 'key-rotated' && e.reason === 'annual rotation'));
    assert.ok(after.some((e) => e.action === 'hold-set' && e.reason === 'dispute 12'));

    // The head anchor the cloud received: a matching one passes, a rewritten log does not.
    const head = (after as unknown as Array<{ seq: number; hash: string }>).at(-1);
    assert.ok(head);
    const anchored = await runCli(['recordings', 'verify', '--anchor', `${head.seq}:${head.hash}`], { CCEDGE_DATA_DIR: daemon.dataDir });
    assert.doesNotMatch(anchored.stderr, /AUDIT_ANCHOR_MISMATCH|anchored/); // (the file tampered with in the first test still fails verify)
    const forged = await runCli(['recordings', 'verify', '--anchor', `${head.seq}:${'0'.repeat(64)}`], { CCEDGE_DATA_DIR: daemon.dataDir });
    assert.equal(forged.code, 1);
    assert.match(forged.stderr, new RegExp(`entry seq ${head.seq} no longer has the anchored hash`));
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
