import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readSync, rmSync, statSync, truncateSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditLog, GENESIS_HASH } from '../../audit-log';
import { NONCE_SIZE, TAG_SIZE } from '../../file-format';
import { Vault } from '../..';
import { silentLog, TestDb } from './vault-test-db';

const C = 4096;

describe('audit log and verify', () => {
  let dir: string;
  let db: TestDb;
  let vault: Vault;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ccedge-audit-'));
    db = await TestDb.open(path.join(dir, 'ccedge.db'));
    vault = Vault.open({ dataDir: dir, db, log: silentLog, chunkSize: C });
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function record(bytes: number, callId = 'call-1'): Promise<string> {
    const w = await vault.create({ callId, codec: 'PCMA' });
    const data = randomBytes(bytes);
    w.write(data, 0, data.length);
    return (await w.finalize()).id;
  }

  it('chains entries: each hash covers the entry and the previous hash; a clean vault verifies', async () => {
    const id = await record(C * 2 + 10);
    const w = await vault.create({ callId: 'call-2', codec: 'PCMU' });
    w.onRecorderEvent({ type: 'paused', reason: 'card number', actor: 'alice', atMs: 1200 });
    w.onRecorderEvent({ type: 'resumed', actor: 'alice', atMs: 9000, pausedMs: 7800 });
    await new Promise((r) => setTimeout(r, 50));
    await w.finalize({ pausedMs: 7800 });
    const entries = await vault.audit.list();
    assert.deepEqual(entries.map((e) => e.action), ['created', 'finalized', 'created', 'paused', 'resumed', 'finalized']);
    assert.equal(entries[0].prevHash, GENESIS_HASH);
    for (let i = 1; i < entries.length; i++) assert.equal(entries[i].prevHash, entries[i - 1].hash);
    assert.equal(entries[0].recordingId, id);
    assert.equal(entries[3].reason, 'card number');
    assert.equal(entries[3].actor, 'alice');
    assert.equal((await vault.require(w.id)).pausedMs, 7800);
    assert.deepEqual(await vault.verify(), []);
  });

  it('the table refuses UPDATE and DELETE (append-only triggers)', async () => {
    await record(10);
    await assert.rejects(db.run("UPDATE recording_audit SET actor = 'x' WHERE seq = 1"), /append-only/);
    await assert.rejects(db.run('DELETE FROM recording_audit WHERE seq = 1'), /append-only/);
  });

  it('an edited entry is named by its seq', async () => {
    await record(10);
    await record(10);
    await db.exec('DROP TRIGGER recording_audit_no_update');
    await db.run("UPDATE recording_audit SET actor = 'mallory' WHERE seq = 3");
    const problems = await vault.verify();
    assert.deepEqual(problems.map((p) => [p.code, p.seq]), [['AUDIT_ENTRY_ALTERED', 3]]);
    assert.match(problems[0].message, /seq 3/);
  });

  it('a deleted entry breaks the chain at its seq', async () => {
    await record(10);
    await record(10);
    await record(10);
    await db.exec('DROP TRIGGER recording_audit_no_delete');
    await db.run('DELETE FROM recording_audit WHERE seq = 4');
    const problems = await new AuditLog(db).verifyChain();
    assert.deepEqual(problems.map((p) => [p.code, p.seq]), [['AUDIT_CHAIN_BROKEN', 4]]);
    assert.match(problems[0].message, /chain broken at seq 4/);
  });

  it('a tail cut off with the triggers dropped passes the chain check but not the anchor the cloud kept', async () => {
    await record(10);
    await record(10);
    const anchor = await vault.audit.head();
    assert.ok(anchor);
    assert.deepEqual(await vault.audit.verifyAnchor(anchor), []);
    await db.exec('DROP TRIGGER recording_audit_no_delete');
    await db.run('DELETE FROM recording_audit WHERE seq >= ?', [anchor.seq - 1]);
    assert.deepEqual(await vault.audit.verifyChain(), [], 'the chain alone cannot see a cut tail');
    const problems = await vault.audit.verifyAnchor(anchor);
    assert.deepEqual(problems.map((p) => [p.code, p.seq]), [['AUDIT_ANCHOR_MISMATCH', anchor.seq]]);
    assert.match(problems[0].message, /missing .*entries were removed/);
    const wrong = await vault.audit.verifyAnchor({ seq: 1, hash: 'f'.repeat(64) });
    assert.match(wrong[0].message, /no longer has the anchored hash/);
  });

  it('a rewritten entry with a recomputed hash still breaks the chain after it', async () => {
    await record(10);
    await record(10);
    await db.exec('DROP TRIGGER recording_audit_no_update');
    // Forge seq 2 consistently (new content, its own hash recomputed): seq 3 no longer links.
    await db.run("UPDATE recording_audit SET hash = 'f' || substr(hash, 2) WHERE seq = 2");
    const codes = (await vault.verify()).map((p) => `${p.code}@${p.seq}`);
    assert.deepEqual(codes, ['AUDIT_ENTRY_ALTERED@2', 'AUDIT_CHAIN_BROKEN@3']);
  });

  it('one flipped byte in a chunk: verify names the recording, its file and the chunk', async () => {
    const good = await record(C * 3);
    const id = await record(C * 3 + 100);
    const file = vault.filePath(id);
    const fd = openSync(file, 'r+');
    const headerLen = statSync(file).size - (3 * (NONCE_SIZE + C + TAG_SIZE) + NONCE_SIZE + 100 + TAG_SIZE);
    const pos = headerLen + (NONCE_SIZE + C + TAG_SIZE) + 500; // inside chunk 1
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, pos);
    b[0] ^= 0x01;
    writeSync(fd, b, 0, 1, pos);
    closeSync(fd);
    const problems = await vault.verify();
    assert.equal(problems.length, 1);
    assert.equal(problems[0].code, 'VAULT_TAMPERED');
    assert.equal(problems[0].recordingId, id);
    assert.equal(problems[0].chunk, 1);
    assert.ok(problems[0].message.includes(id) && problems[0].message.includes(`${id}.ccrec`) && problems[0].message.includes('chunk 1'));
    assert.ok(!problems.some((p) => p.recordingId === good));
    // Reading it errors the stream at that chunk instead of serving altered audio.
    const r = await vault.openReader(id, { actor: 'carol', reason: 'check tamper' });
    await assert.rejects(async () => {
      for await (const _ of r.stream) void _;
    }, /chunk 1 failed authentication/);
  });

  it('names a truncated file, a missing file, and an index hash that was changed', async () => {
    const truncated = await record(C * 2 + 50);
    const missing = await record(100);
    const edited = await record(100);
    truncateSync(vault.filePath(truncated), statSync(vault.filePath(truncated)).size - 30);
    unlinkSync(vault.filePath(missing));
    await db.run("UPDATE recordings SET sha256 = '00' || substr(sha256, 3) WHERE id = ?", [edited]);
    const problems = await vault.verify();
    const by = (id: string): string[] => problems.filter((p) => p.recordingId === id).map((p) => p.code);
    assert.deepEqual(by(truncated), ['VAULT_TRUNCATED']);
    assert.deepEqual(by(missing), ['VAULT_FILE_MISSING']);
    assert.deepEqual(by(edited), ['VAULT_HASH_MISMATCH', 'VAULT_METADATA_MISMATCH']);
    assert.match(problems.find((p) => p.recordingId === truncated)?.message ?? '', /truncated at chunk 2/);
  });
});
