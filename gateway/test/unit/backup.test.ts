import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { backupsToDelete, listBackups, readManifest, restoreBackup, runBackup, verifyFiles, type BackupJob } from '../../backup';
import { snapshotDatabase } from '../../backup/snapshot';
import { AgentStore } from '../../store/agent-store';
import { Db } from '../../store/db';
import { CcedgeError } from '../../errors';
import { Vault } from '../../../vault';
import pino from 'pino';

const PASS = 'correct horse battery staple';

function tmp(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `ccedge-backup-${prefix}-`));
}

async function query<T>(file: string, sql: string): Promise<T[]> {
  const d = await new Promise<sqlite3.Database>((resolve, reject) => {
    const h = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => (err ? reject(err) : resolve(h)));
  });
  try {
    return await new Promise<T[]>((resolve, reject) => d.all<T>(sql, (err, rows) => (err ? reject(err) : resolve(rows))));
  } finally {
    await new Promise<void>((resolve) => d.close(() => resolve()));
  }
}

function insertRecording(db: Db, id: string, state: 'open' | 'final'): Promise<unknown> {
  return db.transaction((tx) =>
    tx.run(
      `INSERT INTO recordings (id, call_id, created_at, codec, chunk_size, key_id, file, state) VALUES (?, ?, ?, 'PCMU', 65536, 'k1', ?, ?)`,
      [id, `call-${id}`, new Date().toISOString(), `${id}.ccrec`, state],
    ),
  );
}

describe('backups (gateway/backup)', function () {
  this.timeout(60_000);

  describe('retention', () => {
    const at = (h: number): { id: string; createdAt: string } => ({ id: `b${h}`, createdAt: new Date(Date.UTC(2026, 0, 10) - h * 3600_000).toISOString() });
    const now = new Date(Date.UTC(2026, 0, 10));
    const list = [at(0), at(4), at(8), at(30), at(60), at(200)];

    it('keeps the newest `count`; with days 0 deletes every older one', () => {
      assert.deepEqual(backupsToDelete(list, { count: 3, days: 0 }, now).map((b) => b.id), ['b30', 'b60', 'b200']);
    });
    it('keeps older backups while they are younger than `days`', () => {
      assert.deepEqual(backupsToDelete(list, { count: 2, days: 2 }, now).map((b) => b.id), ['b60', 'b200']);
    });
    it('never deletes the newest `count`, however old', () => {
      assert.deepEqual(backupsToDelete(list, { count: 10, days: 1 }, now), []);
      assert.deepEqual(backupsToDelete([at(5000)], { count: 1, days: 1 }, now), []);
    });
  });

  describe('backup, verify and restore of a data dir', () => {
    let dataDir: string;
    let root: string;
    let db: Db;
    let job: BackupJob;

    beforeEach(async () => {
      dataDir = tmp('data');
      root = tmp('root');
      db = await Db.open(path.join(dataDir, 'ccedge.db'));
      const agents = new AgentStore(db);
      for (let i = 0; i < 20; i++) await agents.recordState('alice', i % 2 ? 'available' : 'away', null, null, new Date());
      await db.transaction((tx) => tx.run('UPDATE sync_state SET last_seq = 42, last_acked_seq = 40 WHERE id = 1'));
      mkdirSync(path.join(dataDir, 'keys', 'imported'), { recursive: true, mode: 0o700 });
      writeFileSync(path.join(dataDir, 'keys', 'site.key'), Buffer.alloc(32, 7), { mode: 0o600 });
      writeFileSync(path.join(dataDir, 'keys', 'imported', 'server.key'), 'PRIVATE KEY PEM', { mode: 0o600 });
      writeFileSync(path.join(dataDir, 'keys', 'site-ca.crt'), 'CERT', { mode: 0o644 });
      mkdirSync(path.join(dataDir, 'recordings'), { recursive: true });
      writeFileSync(path.join(dataDir, 'recordings', 'r1.ccrec'), Buffer.alloc(200_000, 1));
      writeFileSync(path.join(dataDir, 'recordings', 'r2.ccrec'), Buffer.alloc(5000, 2));
      await insertRecording(db, 'r1', 'final');
      await insertRecording(db, 'r2', 'open');
      job = { db, dataDir, root, passphrase: PASS, keep: { count: 5, days: 0 }, pagesPerStep: 2, site: 's1', device: 'd1', version: 'test' };
    });
    afterEach(async () => {
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(root, { recursive: true, force: true });
    });

    it('restores the database, keys and recordings into a new data dir, and moves the outbox seq on', async () => {
      const r = await runBackup(job);
      assert.equal(r.recordings, 2);
      assert.equal(r.lastSeq, 42);
      const [m] = await listBackups(root);
      assert.equal(m.id, r.id);
      assert.deepEqual(await verifyFiles(root, m), []);
      // Nothing in the backup is the plain database or key.
      for (const f of m.files.filter((x) => x.kind === 'db' || x.kind === 'keys')) {
        const bytes = readFileSync(path.join(root, f.path));
        assert.equal(bytes.includes(Buffer.from('SQLite format 3')), false);
        assert.equal(bytes.includes(Buffer.from('PRIVATE KEY PEM')), false);
        assert.equal(bytes.includes(Buffer.alloc(32, 7)), false);
      }
      assert.equal(readdirSync(path.join(dataDir, 'backup-tmp')).length, 0, 'no plain snapshot left behind');

      const target = path.join(tmp('restore'), 'data');
      const res = await restoreBackup({ root, manifest: m, dataDir: target, passphrase: PASS, force: false, now: new Date(Date.parse(m.createdAt) + 10_000) });
      assert.equal(res.recordings, 2);
      assert.equal(res.lastSeqBefore, 42);
      assert.equal(res.lastSeqAfter, 42 + 1_000_000);
      const [state] = await query<{ last_seq: number; last_acked_seq: number }>(path.join(target, 'ccedge.db'), 'SELECT last_seq, last_acked_seq FROM sync_state');
      assert.deepEqual(state, { last_seq: 1_000_042, last_acked_seq: 40 });
      const [events] = await query<{ n: number }>(path.join(target, 'ccedge.db'), "SELECT COUNT(*) AS n FROM agent_events WHERE agent = 'alice'");
      assert.equal(events.n, 20);
      assert.deepEqual(readFileSync(path.join(target, 'keys', 'site.key')), Buffer.alloc(32, 7));
      assert.equal(readFileSync(path.join(target, 'keys', 'imported', 'server.key'), 'utf8'), 'PRIVATE KEY PEM');
      assert.equal(statSync(path.join(target, 'keys', 'site.key')).mode & 0o777, 0o600);
      assert.deepEqual(readFileSync(path.join(target, 'recordings', 'r1.ccrec')), Buffer.alloc(200_000, 1));
      assert.deepEqual(readFileSync(path.join(target, 'recordings', 'r2.ccrec')), Buffer.alloc(5000, 2));
      // A second restore into the same (now used) dir needs --force.
      await assert.rejects(restoreBackup({ root, manifest: m, dataDir: target, passphrase: PASS, force: false }), (e: CcedgeError) => e.code === 'BACKUP_TARGET_NOT_EMPTY');
      const again = await restoreBackup({ root, manifest: m, dataDir: target, passphrase: PASS, force: true });
      assert.equal(again.recordings, 2);
      assert.ok(readdirSync(target).some((n) => n.startsWith('before-restore-')), 'the replaced contents were moved aside');
      rmSync(path.dirname(target), { recursive: true, force: true });
    });

    it('a call transcript in the vault is backed up and restored with the recordings, still readable and verified', async () => {
      // The beforeEach rows are fake files; this vault needs a real key and real files only.
      await db.transaction((tx) => tx.run('DELETE FROM recordings'));
      rmSync(path.join(dataDir, 'keys', 'site.key'));
      const vault = Vault.open({ dataDir, db, log: pino({ level: 'silent' }) });
      const doc = { utterances: [{ speaker: 'caller', text: 'please cancel my subscription' }] };
      const t = await vault.transcripts.store({ callId: 'c1', document: doc, utterances: 1, source: 'builtin:pocketsphinx' });
      const r = await runBackup(job);
      assert.equal(r.recordings, 1);
      const [m] = await listBackups(root);
      const target = path.join(tmp('restore'), 'data');
      await restoreBackup({ root, manifest: m, dataDir: target, passphrase: PASS, force: false });
      const restored = await Db.open(path.join(target, 'ccedge.db'));
      try {
        const v2 = Vault.open({ dataDir: target, db: restored, log: pino({ level: 'silent' }) });
        assert.deepEqual(await v2.verify(), []);
        assert.deepEqual((await v2.transcripts.read(t.id, { actor: 'carol', reason: 'after restore' })).transcript, doc);
      } finally {
        await restored.close();
        rmSync(path.dirname(target), { recursive: true, force: true });
      }
    });

    it('a wrong passphrase is named as such, and nothing is written', async () => {
      await runBackup(job);
      const [m] = await listBackups(root);
      const target = path.join(tmp('restore'), 'data');
      await assert.rejects(restoreBackup({ root, manifest: m, dataDir: target, passphrase: 'not the passphrase at all', force: false }), (e: CcedgeError) => e.code === 'BACKUP_BAD_PASSPHRASE');
      assert.equal(existsSync(path.join(target, 'ccedge.db')), false);
      rmSync(path.dirname(target), { recursive: true, force: true });
    });

    it('verify names a damaged recording and a changed manifest; restore refuses the damaged backup', async () => {
      await runBackup(job);
      const [m] = await listBackups(root);
      const pooled = m.files.find((f) => f.kind === 'recording');
      assert.ok(pooled);
      const file = path.join(root, pooled.path);
      const bytes = readFileSync(file);
      bytes[1000] ^= 0xff;
      writeFileSync(file, bytes);
      const problems = await verifyFiles(root, m);
      assert.equal(problems.length, 1);
      assert.equal(problems[0].path, pooled.path);
      assert.match(problems[0].message, /SHA-256/);
      const target = path.join(tmp('restore'), 'data');
      await assert.rejects(restoreBackup({ root, manifest: m, dataDir: target, passphrase: PASS, force: false }), (e: CcedgeError) => e.code === 'BACKUP_CORRUPT' && e.message.includes(pooled.path));

      // A manifest edited to match a swapped file is caught by its seal.
      bytes[1000] ^= 0xff;
      writeFileSync(file, bytes);
      const mf = path.join(root, m.id, 'manifest.json');
      const edited = JSON.parse(readFileSync(mf, 'utf8')) as { outbox: { lastSeq: number } };
      edited.outbox.lastSeq = 1;
      writeFileSync(mf, JSON.stringify(edited));
      await assert.rejects(restoreBackup({ root, manifest: await readManifest(root, m.id), dataDir: target, passphrase: PASS, force: false }), (e: CcedgeError) => e.code === 'BACKUP_CORRUPT' && /changed/.test(e.message));
      rmSync(path.dirname(target), { recursive: true, force: true });
    });

    it('copies finished recordings once; retention deletes old backups and recordings no backup needs', async () => {
      const first = await runBackup(job);
      assert.equal(first.recordingsCopied, 2);
      const second = await runBackup(job);
      assert.equal(second.recordingsCopied, 1, 'only the open recording is copied again');
      // r1 leaves the vault (retention there); backups keep it while one of them names it.
      await db.transaction((tx) => tx.run("UPDATE recordings SET state = 'deleted' WHERE id = 'r1'"));
      rmSync(path.join(dataDir, 'recordings', 'r1.ccrec'));
      const third = await runBackup({ ...job, keep: { count: 1, days: 0 } });
      assert.deepEqual(third.deleted.sort(), [first.id, second.id].sort());
      assert.deepEqual((await listBackups(root)).map((b) => b.id), [third.id]);
      assert.deepEqual(readdirSync(path.join(root, 'recordings')), [], 'r1 is gone from the pool with the last backup that named it');
    });

    it('the online snapshot is one consistent state while writes go on through the same connection', async () => {
      const agents = new AgentStore(db);
      for (let i = 0; i < 300; i++) await agents.recordState(`agent-${i}`, 'available', 'x'.repeat(200), null, new Date());
      const [before] = await query<{ n: number }>(path.join(dataDir, 'ccedge.db'), 'SELECT COUNT(*) AS n FROM agent_events');
      let writing = true;
      let written = 0;
      const writer = (async () => {
        while (writing) {
          await agents.recordState('bob', 'away', 'y'.repeat(500), null, new Date());
          written++;
        }
      })();
      const snapFile = path.join(dataDir, 'snap.db');
      const info = await snapshotDatabase(db, snapFile, 1);
      writing = false;
      await writer;
      assert.ok(info.pages > 20, `pages ${info.pages}`);
      assert.ok(written > 0, 'writes went on during the snapshot');
      const [check] = await query<{ integrity_check: string }>(snapFile, 'PRAGMA integrity_check');
      assert.equal(check.integrity_check, 'ok');
      const [n] = await query<{ n: number }>(snapFile, 'SELECT COUNT(*) AS n FROM agent_events');
      assert.ok(n.n >= before.n && n.n <= before.n + written, `${n.n} rows, ${before.n} before, ${written} written`);
    });
  });
});

describe('backup.every', () => {
  it('reads 30m / 4h / 1d as the schedule and refuses what is out of range or unreadable', async () => {
    const { backupConfigSchema } = await import('../../backup/config');
    assert.equal(backupConfigSchema.parse({}).everyS, 14_400);
    assert.equal(backupConfigSchema.parse({ every: '30m' }).everyS, 1800);
    assert.equal(backupConfigSchema.parse({ every: '4h', everyS: 60 }).everyS, 14_400);
    assert.equal(backupConfigSchema.parse({ every: '1d' }).everyS, 86_400);
    assert.equal(backupConfigSchema.safeParse({ every: '10s' }).success, false);
    assert.equal(backupConfigSchema.safeParse({ every: '8d' }).success, false);
    assert.equal(backupConfigSchema.safeParse({ every: 'often' }).success, false);
  });
});
