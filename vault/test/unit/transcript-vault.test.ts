import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VaultError } from '../../errors';
import { Vault } from '../..';
import { silentLog, TestDb } from './vault-test-db';

const SECRET = 'zanzibar';
const doc = { format: 'ccedge-transcript/1', utterances: [{ speaker: 'caller', text: `my account number is ${SECRET} please`, startMs: 0, endMs: 1200 }] };

describe('vault transcripts', () => {
  let dir: string;
  let db: TestDb;
  let vault: Vault;
  const clock = { now: Date.parse('2025-01-01T10:00:00Z') };
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ccedge-txvault-'));
    db = await TestDb.open(path.join(dir, 'ccedge.db'));
    clock.now = Date.parse('2025-01-01T10:00:00Z');
    vault = Vault.open({ dataDir: dir, db, log: silentLog, now: () => new Date(clock.now) });
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function grepDir(word: string): string[] {
    const hits: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const f = path.join(d, e.name);
        if (e.isDirectory()) walk(f);
        else if (readFileSync(f).includes(word)) hits.push(f);
      }
    };
    walk(dir);
    return hits;
  }

  it('stores encrypted (no plaintext on disk), reads back for a reason, audits both', async () => {
    const w = await vault.create({ callId: 'c1', codec: 'PCMU' });
    const rec = await w.finalize();
    const info = await vault.transcripts.store({ callId: 'c1', recordingId: rec.id, document: doc, utterances: 1, source: 'builtin:pocketsphinx', quality: 'keyword-grade', retentionDays: 30 });
    assert.equal(info.recordingId, rec.id);
    assert.equal(info.retentionUntil, '2025-01-31T10:00:00.000Z');
    assert.deepEqual(grepDir(SECRET), [], 'the spoken word is nowhere on disk in plain text');
    await assert.rejects(vault.transcripts.read(rec.id, { actor: 'carol', reason: '' }), (e: unknown) => e instanceof VaultError && e.code === 'VAULT_REASON_REQUIRED');
    for (const ref of [info.id, rec.id, 'c1']) {
      const r = await vault.transcripts.read(ref, { actor: 'carol', reason: 'complaint review' });
      assert.deepEqual(r.transcript, doc);
      assert.equal(r.info.id, info.id);
    }
    const audit = await vault.audit.list({ recordingId: info.id, limit: 100 });
    assert.deepEqual(audit.map((a) => a.action), ['transcript-stored', 'transcript-read', 'transcript-read', 'transcript-read']);
    assert.equal(audit[1].actor, 'carol');
    assert.equal(audit[1].reason, 'complaint review');
    assert.deepEqual(await vault.verify(), []);
  });

  it('verify names a tampered, truncated or missing transcript file', async () => {
    const a = await vault.transcripts.store({ callId: 'c1', document: doc, utterances: 1, source: 's' });
    const b = await vault.transcripts.store({ callId: 'c2', document: doc, utterances: 1, source: 's' });
    const c = await vault.transcripts.store({ callId: 'c3', document: doc, utterances: 1, source: 's' });
    const fa = vault.transcripts.filePath(a.id);
    const buf = readFileSync(fa);
    buf[buf.length - 20] ^= 1;
    writeFileSync(fa, buf);
    const fb = vault.transcripts.filePath(b.id);
    writeFileSync(fb, readFileSync(fb).subarray(0, 40));
    rmSync(vault.transcripts.filePath(c.id));
    const problems = await vault.verify();
    assert.deepEqual(problems.map((p) => [p.code, p.recordingId]).sort(), [['VAULT_FILE_MISSING', c.id], ['VAULT_TAMPERED', a.id], ['VAULT_TRUNCATED', b.id]].sort());
    await assert.rejects(vault.transcripts.read(a.id, { actor: 'carol', reason: 'review' }), (e: unknown) => e instanceof VaultError && e.code === 'VAULT_TAMPERED');
  });

  it('retention deletes expired transcripts except under legal hold; the hold follows the call', async () => {
    const held = await vault.transcripts.store({ callId: 'held', document: doc, utterances: 1, source: 's', retentionDays: 1 });
    const gone = await vault.transcripts.store({ callId: 'free', document: doc, utterances: 1, source: 's', retentionDays: 1 });
    await vault.setLegalHold('held', true, 'carol', 'litigation 42');
    assert.equal((await vault.transcripts.require(held.id)).legalHold, true);
    const deleted = await vault.sweepExpired(new Date(clock.now + 2 * 86_400_000));
    assert.deepEqual(deleted, [gone.id]);
    assert.equal((await vault.transcripts.require(gone.id)).state, 'deleted');
    await assert.rejects(vault.transcripts.read(gone.id, { actor: 'carol', reason: 'review' }), (e: unknown) => e instanceof VaultError && e.code === 'VAULT_NOT_FOUND');
    assert.equal((await vault.transcripts.read(held.id, { actor: 'carol', reason: 'review' })).info.id, held.id);
    await assert.rejects(vault.transcripts.deleteTranscript(held.id, 'carol', 'tidy up'), (e: unknown) => e instanceof VaultError && e.code === 'VAULT_LEGAL_HOLD');
    // A transcript stored after the hold was set is held too.
    const later = await vault.transcripts.store({ callId: 'held', document: doc, utterances: 1, source: 's', retentionDays: 1 });
    assert.equal(later.legalHold, true);
    assert.deepEqual(await vault.verify(), []);
  });

  it('a site key rotation re-wraps transcript keys; they stay readable', async () => {
    const t = await vault.transcripts.store({ callId: 'c1', document: doc, utterances: 1, source: 's' });
    const r = await vault.rotateSiteKey('admin', 'yearly rotation');
    assert.equal(r.rewrapped, 1);
    const after = await vault.transcripts.require(t.id);
    assert.equal(after.keyId, r.to);
    assert.deepEqual((await vault.transcripts.read(t.id, { actor: 'carol', reason: 'after rotation' })).transcript, doc);
    assert.deepEqual(await vault.verify(), []);
  });
});
