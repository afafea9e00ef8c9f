import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Recorder } from '../../../media/recorder/recorder';
import { parseG711Wav, WAV_HEADER_SIZE } from '../../../media/recorder/wav';
import { linearToUlaw, ulawToLinear } from '../../../media/tones/g711';
import { VaultError } from '../../errors';
import { hasSpace, Vault, verifyExportManifest, type ExportManifest } from '../..';
import { silentLog, TestDb } from './vault-test-db';

const C = 4096; // small chunks so tests cross many chunk boundaries

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of s) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

interface Env {
  dir: string;
  db: TestDb;
  vault: Vault;
  clock: { now: number };
}

async function setup(): Promise<Env> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ccedge-vault-'));
  const db = await TestDb.open(path.join(dir, 'ccedge.db'));
  const clock = { now: Date.parse('2025-01-01T10:00:00Z') };
  const vault = Vault.open({ dataDir: dir, db, log: silentLog, chunkSize: C, now: () => new Date(clock.now) });
  return { dir, db, vault, clock };
}

async function record(vault: Vault, data: Buffer, opts: { callId?: string; retentionDays?: number } = {}): Promise<string> {
  const w = await vault.create({ callId: opts.callId ?? 'call-1', codec: 'PCMU', retentionDays: opts.retentionDays });
  for (let off = 0; off < data.length; off += 320) w.write(data, off, Math.min(320, data.length - off));
  const info = await w.finalize();
  return info.id;
}

const access = { actor: 'carol', reason: 'quality review' };

describe('vault', () => {
  let env: Env;
  beforeEach(async () => {
    env = await setup();
  });
  afterEach(async () => {
    await env.db.close();
    rmSync(env.dir, { recursive: true, force: true });
  });

  it('round-trips encrypted audio, with byte ranges across chunk boundaries', async () => {
    const audio = randomBytes(C * 5 + 1234);
    const id = await record(env.vault, audio);
    const info = await env.vault.require(id);
    assert.equal(info.state, 'final');
    assert.equal(info.bytes, audio.length);
    assert.equal(info.chunks, 6);
    assert.equal(info.durationMs, Math.round(audio.length / 16));
    assert.equal(info.sha256, createHash('sha256').update(audio).digest('hex'));

    const whole = await env.vault.openReader(id, access);
    assert.equal(whole.size, WAV_HEADER_SIZE + audio.length);
    const wav = await readAll(whole.stream);
    const p = parseG711Wav(wav);
    assert.equal(p.formatTag, 7);
    assert.equal(p.channels, 2);
    assert.ok(wav.subarray(p.dataOffset).equals(audio));

    const H = WAV_HEADER_SIZE;
    const ranges: Array<[number, number]> = [[0, 0], [0, H - 1], [10, H + 10], [H + C - 10, H + C + 9], [H + 2 * C - 1, H + 4 * C + 5], [H + 5 * C, wav.length - 1], [wav.length - 1, wav.length - 1]];
    for (const [start, end] of ranges) {
      const r = await env.vault.openReader(id, { ...access, start, end });
      assert.equal(r.start, start);
      const got = await readAll(r.stream);
      assert.ok(got.equals(wav.subarray(start, end + 1)), `range ${start}-${end}`);
    }
    await assert.rejects(env.vault.openReader(id, { ...access, start: 0, end: wav.length }), (e: VaultError) => e.code === 'VAULT_RANGE');
    await assert.rejects(env.vault.openReader(id, { actor: 'carol', reason: '' }), (e: VaultError) => e.code === 'VAULT_REASON_REQUIRED');
    const played = (await env.vault.audit.list({ recordingId: id })).filter((e) => e.action === 'played');
    assert.equal(played.length, 1 + ranges.length);
    assert.equal(played[0].actor, 'carol');
    assert.equal(played[0].reason, 'quality review');
  });

  it('keeps no plaintext on disk: no RIFF, no run of the audio, private modes', async () => {
    // Audio with long runs (silence and a tone) is the easy case for a leak to show.
    const audio = Buffer.alloc(C * 3);
    for (let i = 0; i < audio.length; i++) audio[i] = i < C ? 0xff : linearToUlaw(8000 * Math.sin((2 * Math.PI * 440 * (i >> 1)) / 8000));
    const id = await record(env.vault, audio);
    const file = env.vault.filePath(id);
    const disk = readFileSync(file);
    assert.notEqual(disk.subarray(0, 4).toString('latin1'), 'RIFF');
    assert.ok(!disk.includes(Buffer.from('RIFF')));
    for (let off = 0; off + 16 <= audio.length; off += 61) assert.equal(disk.indexOf(audio.subarray(off, off + 16)), -1, `plaintext at ${off}`);
    assert.ok(!disk.includes(Buffer.alloc(16, 0xff)), 'no run of silence');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(env.dir, 'keys')).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(env.dir, 'keys', 'site.key')).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(env.dir, 'keys', 'site.key')).size, 32);
    assert.equal(statSync(path.join(env.dir, 'recordings')).mode & 0o777, 0o700);
  });

  it('records a call through the recorder: caller tone left, agent tone right', async () => {
    const w = await env.vault.create({ callId: 'call-tones', codec: 'PCMU', agent: 'alice' });
    const clock = { t: 0 };
    const rec = new Recorder({ codec: 'PCMU', sink: w, now: () => clock.t, autoFlush: false, onEvent: w.onRecorderEvent });
    const tone = (f: number, n: number): Buffer => {
      const b = Buffer.alloc(160);
      for (let i = 0; i < 160; i++) b[i] = linearToUlaw(10000 * Math.sin((2 * Math.PI * f * (n * 160 + i)) / 8000));
      return b;
    };
    for (let n = 0; n < 100; n++) {
      clock.t = (n + 1) * 20;
      rec.pushCaller(tone(400, n), n * 160, 1);
      if (n >= 50) rec.pushAgent(tone(1000, n), 7 + n * 160, 2);
      if (clock.t % 200 === 0) rec.flushDue();
    }
    const stats = rec.stop();
    const info = await w.finalize({ pausedMs: stats.pausedMs });
    assert.equal(info.durationMs, 2000);
    const wav = await readAll((await env.vault.openReader(info.id, access)).stream);
    const data = wav.subarray(parseG711Wav(wav).dataOffset);
    const energy = (ch: number, from: number, to: number): number => {
      let e = 0;
      for (let i = from; i < to; i++) e += Math.abs(ulawToLinear(data[i * 2 + ch]));
      return e / (to - from);
    };
    assert.ok(energy(0, 0, 8000) > 3000, 'caller tone on the left');
    assert.ok(energy(1, 0, 8000) < 10, 'agent channel silent before the agent speaks');
    assert.ok(energy(1, 8000, 16000) > 3000, 'agent tone on the right');
  });

  it('recoverOpen keeps the complete chunks of a recording cut by a crash', async () => {
    const audio = randomBytes(C * 3 + 1000);
    const w = await env.vault.create({ callId: 'call-crash', codec: 'PCMU' });
    w.write(audio, 0, audio.length); // 3 chunks sealed; 1000 bytes still in memory: lost in the crash
    const file = env.vault.filePath(w.id);
    appendFileSync(file, randomBytes(700)); // a torn write of the next chunk
    // "Restart": a new vault on the same directory and database.
    const vault2 = Vault.open({ dataDir: env.dir, db: env.db, log: silentLog, chunkSize: C });
    assert.equal((await vault2.require(w.id)).state, 'open');
    const recovered = await vault2.recoverOpen();
    assert.equal(recovered.length, 1);
    const info = recovered[0];
    assert.equal(info.state, 'final');
    assert.equal(info.recovered, true);
    assert.equal(info.endReason, 'interrupted');
    assert.equal(info.bytes, C * 3);
    assert.equal(info.sha256, createHash('sha256').update(audio.subarray(0, C * 3)).digest('hex'));
    const wav = await readAll((await vault2.openReader(w.id, access)).stream);
    assert.ok(wav.subarray(WAV_HEADER_SIZE).equals(audio.subarray(0, C * 3)));
    const entry = (await vault2.audit.list({ recordingId: w.id })).find((e) => e.action === 'recovered');
    assert.equal(entry?.data.discardedBytes, 700);
    assert.deepEqual(await vault2.verify(), []);
    assert.deepEqual(await vault2.recoverOpen(), []);
  });

  it('key rotation re-wraps every data key and keeps every recording readable', async () => {
    const audios = [randomBytes(C + 5), randomBytes(10), randomBytes(3 * C)];
    const ids: string[] = [];
    for (const a of audios) ids.push(await record(env.vault, a));
    const oldKey = readFileSync(path.join(env.dir, 'keys', 'site.key'));
    const oldId = env.vault.activeKeyId;
    const res = await env.vault.rotateSiteKey('admin', 'annual rotation');
    assert.equal(res.from, oldId);
    assert.equal(res.rewrapped, 3);
    assert.notEqual(res.to, oldId);
    const newKey = readFileSync(path.join(env.dir, 'keys', 'site.key'));
    assert.ok(!newKey.equals(oldKey));
    assert.equal(statSync(path.join(env.dir, 'keys', 'site.key')).mode & 0o777, 0o600);
    assert.ok(!existsSync(path.join(env.dir, 'keys', 'site.key.next')));
    // A fresh process (keys re-read from disk) reads everything.
    const vault2 = Vault.open({ dataDir: env.dir, db: env.db, log: silentLog, chunkSize: C });
    for (let i = 0; i < ids.length; i++) {
      const info = await vault2.require(ids[i]);
      assert.equal(info.keyId, res.to);
      const wav = await readAll((await vault2.openReader(ids[i], access)).stream);
      assert.ok(wav.subarray(WAV_HEADER_SIZE).equals(audios[i]));
    }
    const rot = (await vault2.audit.list()).filter((e) => e.action === 'key-rotated');
    assert.equal(rot.length, 1);
    assert.deepEqual(rot[0].data, { from: oldId, to: res.to, rewrapped: 3 });
    assert.deepEqual(await vault2.verify(), []);
  });

  it('an interrupted rotation resumes with the same new key', async () => {
    const id = await record(env.vault, randomBytes(100));
    // Simulate a crash after site.key.next was written and nothing re-wrapped.
    const ring = (env.vault as unknown as { keys: { beginRotation(): { to: string } } }).keys;
    const { to } = ring.beginRotation();
    const vault2 = Vault.open({ dataDir: env.dir, db: env.db, log: silentLog, chunkSize: C });
    const res = await vault2.rotateSiteKey('admin');
    assert.equal(res.to, to);
    assert.equal((await vault2.require(id)).keyId, to);
    await readAll((await vault2.openReader(id, access)).stream);
  });

  it('a rotation done by another process (the CLI) is picked up for new recordings', async () => {
    const before = await record(env.vault, randomBytes(50));
    const cli = Vault.open({ dataDir: env.dir, db: env.db, log: silentLog, chunkSize: C });
    const res = await cli.rotateSiteKey('admin', 'rotation from the CLI');
    const after = await record(env.vault, randomBytes(50)); // the daemon's vault, keys cached before
    assert.equal((await env.vault.require(after)).keyId, res.to);
    const restarted = Vault.open({ dataDir: env.dir, db: env.db, log: silentLog, chunkSize: C });
    for (const id of [before, after]) await readAll((await restarted.openReader(id, access)).stream);
    assert.deepEqual(await restarted.verify(), []);
  });

  it('retention sweep deletes expired recordings and skips legal holds', async () => {
    const expired = await record(env.vault, randomBytes(100), { callId: 'c-expired', retentionDays: 1 });
    const held = await record(env.vault, randomBytes(100), { callId: 'c-held', retentionDays: 1 });
    const young = await record(env.vault, randomBytes(100), { callId: 'c-young', retentionDays: 30 });
    const forever = await record(env.vault, randomBytes(100), { callId: 'c-forever' });
    assert.equal(await env.vault.setLegalHold('c-held', true, 'counsel', 'litigation 2025-17'), 1);
    // A hold set before the call is recorded applies to its recordings too.
    await env.vault.setLegalHold('c-future', true, 'counsel', 'litigation 2025-18');
    const future = await record(env.vault, randomBytes(100), { callId: 'c-future', retentionDays: 1 });
    assert.equal((await env.vault.require(future)).legalHold, true);

    const deleted = await env.vault.sweepExpired(new Date(env.clock.now + 2 * 86_400_000));
    assert.deepEqual(deleted, [expired]);
    const gone = await env.vault.require(expired);
    assert.equal(gone.state, 'deleted');
    assert.ok(!existsSync(env.vault.filePath(expired)));
    const row = await env.db.get<{ wrapped_key: string | null }>('SELECT wrapped_key FROM recordings WHERE id = ?', [expired]);
    assert.equal(row?.wrapped_key, null, 'data key shredded');
    for (const id of [held, young, forever, future]) assert.equal((await env.vault.require(id)).state, 'final');
    await assert.rejects(env.vault.deleteRecording(held, 'admin', 'manual delete'), (e: VaultError) => e.code === 'VAULT_LEGAL_HOLD');
    await assert.rejects(env.vault.openReader(expired, access), (e: VaultError) => e.code === 'VAULT_NOT_FOUND');

    assert.equal(await env.vault.setLegalHold('c-held', false, 'counsel', 'case closed'), 1);
    assert.deepEqual(await env.vault.sweepExpired(new Date(env.clock.now + 2 * 86_400_000)), [held]);
    const actions = (await env.vault.audit.list()).map((e) => `${e.action}:${e.recordingId ?? '-'}`);
    assert.ok(actions.includes(`deleted:${expired}`));
    assert.ok(actions.includes(`hold-set:${held}`));
    assert.ok(actions.includes('hold-set:-'));
    assert.ok(actions.includes(`hold-cleared:${held}`));
    assert.deepEqual(await env.vault.verify(), []);
  });

  it('export writes a plain WAV and an Ed25519-signed manifest that verifies', async () => {
    const audio = randomBytes(C * 2 + 7);
    const id = await record(env.vault, audio, { callId: 'call-exp' });
    const out = path.join(env.dir, 'export.wav');
    await assert.rejects(env.vault.exportRecording(id, out, 'carol', ''), (e: VaultError) => e.code === 'VAULT_REASON_REQUIRED');
    const res = await env.vault.exportRecording(id, out, 'carol', 'subpoena 42');
    const wav = readFileSync(out);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const p = parseG711Wav(wav);
    assert.ok(wav.subarray(p.dataOffset, p.dataOffset + p.dataBytes).equals(audio));
    const manifest = JSON.parse(readFileSync(res.manifestFile, 'utf8')) as ExportManifest;
    assert.equal(manifest.recordingId, id);
    assert.equal(manifest.callId, 'call-exp');
    assert.equal(manifest.exportedBy, 'carol');
    assert.equal(manifest.reason, 'subpoena 42');
    assert.deepEqual(verifyExportManifest(manifest, wav, env.vault.exportPublicKey()), []);
    assert.deepEqual(verifyExportManifest({ ...manifest, reason: 'nothing to see' }, wav).length, 1);
    const bad = Buffer.from(wav);
    bad[100] ^= 1;
    assert.deepEqual(verifyExportManifest(manifest, bad), ['WAV SHA-256 does not match the manifest']);
    const entry = (await env.vault.audit.list({ recordingId: id })).find((e) => e.action === 'exported');
    assert.equal(entry?.actor, 'carol');
    assert.equal(entry?.seq, manifest.auditSeq);
    assert.equal(statSync(path.join(env.dir, 'keys', 'export-signing.key')).mode & 0o777, 0o600);
    await assert.rejects(env.vault.exportRecording(id, out, 'carol', 'again please'), (e: VaultError) => e.code === 'VAULT_BAD_STATE');
  });

  it('hasSpace reports free space against a minimum', async () => {
    const ok = await hasSpace(env.dir, 1);
    assert.equal(ok.ok, true);
    assert.ok(ok.freeBytes > 0);
    assert.equal((await hasSpace(env.dir, Number.MAX_SAFE_INTEGER)).ok, false);
  });
});
