import { copyFile, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { CcedgeError } from '../errors';
import { Db } from '../store/db';
import { MIGRATIONS } from '../store/migrations';
import { decryptFrom, deriveKeys } from './crypto';
import { restoreKeys } from './key-bundle';
import { checkManifest, verifyFiles, type Manifest } from './manifest';

/**
 * Events the old box may have sent after the backup, per second since: far above what one box
 * writes, so a restored box never reuses a seq the cloud has seen (it deduplicates on seq).
 */
export const SEQ_PER_SECOND_BOUND = 1000;
export const MIN_SEQ_GAP = 1_000_000;

export function restoredSeq(m: Pick<Manifest, 'createdAt' | 'outbox'>, now: Date): number {
  const elapsedS = Math.max(0, Math.ceil((now.getTime() - Date.parse(m.createdAt)) / 1000));
  return m.outbox.lastSeq + Math.max(MIN_SEQ_GAP, elapsedS * SEQ_PER_SECOND_BOUND);
}

export interface RestoreResult {
  id: string;
  recordings: number;
  keys: number;
  lastSeqBefore: number;
  lastSeqAfter: number;
}

/** Entries that make a data dir "in use" (a restore over them needs --force). */
async function dataDirInUse(dataDir: string): Promise<string[]> {
  const names = await readdir(dataDir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [] as string[];
    throw e;
  });
  // The config file an installer put there first is not data.
  return names.filter((n) => !/\.ya?ml$/.test(n) && n !== 'lost+found' && !n.startsWith('before-restore-'));
}

/**
 * Restores backup `m` from `root` into `dataDir`: every file checked against the manifest first,
 * then the database, keys and recordings written, and the outbox seq moved on (restoredSeq).
 */
export async function restoreBackup(opts: { root: string; manifest: Manifest; dataDir: string; passphrase: string; force: boolean; now?: Date }): Promise<RestoreResult> {
  const { root, manifest: m, dataDir } = opts;
  const inUse = await dataDirInUse(dataDir);
  if (inUse.length && !opts.force) {
    throw new CcedgeError('BACKUP_TARGET_NOT_EMPTY', `data dir ${dataDir} is not empty (${inUse.slice(0, 5).join(', ')}${inUse.length > 5 ? ', …' : ''}); restore into a new one, or pass --force to replace it (stop the daemon first)`);
  }
  if (m.db.schemaVersion > MIGRATIONS.length) {
    throw new CcedgeError('BACKUP_FAILED', `backup ${m.id} was made by a newer ccedge (${m.version}, database schema ${m.db.schemaVersion}; this build knows ${MIGRATIONS.length}): restore it with that version or newer`);
  }
  const keys = await deriveKeys(opts.passphrase, m.kdf);
  checkManifest(m, keys);
  const problems = await verifyFiles(root, m);
  if (problems.length) throw new CcedgeError('BACKUP_CORRUPT', `backup ${m.id} is damaged: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (inUse.length) {
    // --force: what was there is moved aside, not deleted (old keys next to restored ones would
    // confuse the vault; a wrong restore can still be undone by hand).
    const aside = path.join(dataDir, `before-restore-${(opts.now ?? new Date()).toISOString().replace(/[-:.]/g, '')}`);
    await mkdir(aside, { mode: 0o700 });
    for (const n of inUse) await rename(path.join(dataDir, n), path.join(aside, n));
  }
  const dbEntry = m.files.find((f) => f.kind === 'db');
  const keyEntry = m.files.find((f) => f.kind === 'keys');
  if (!dbEntry || !keyEntry) throw new CcedgeError('BACKUP_CORRUPT', `backup ${m.id} has no database or no keys`);

  // Decrypt fully to a temp name first: a damaged chunk must not leave half a database behind.
  const dbFile = path.join(dataDir, 'ccedge.db');
  const tmpDb = `${dbFile}.restore`;
  const out = await open(tmpDb, 'w', 0o600);
  try {
    await decryptFrom(path.join(root, dbEntry.path), 'ccedge.db', keys.enc, async (b) => {
      await out.write(b);
    });
    await out.sync();
  } catch (e) {
    await out.close();
    await rm(tmpDb, { force: true });
    throw e;
  }
  await out.close();
  const keyParts: Buffer[] = [];
  await decryptFrom(path.join(root, keyEntry.path), 'keys', keys.enc, async (b) => {
    keyParts.push(Buffer.from(b));
  });

  for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(`${dbFile}${suffix}`, { force: true });
  await rename(tmpDb, dbFile);
  const keyCount = await restoreKeys(dataDir, Buffer.concat(keyParts));

  const recDir = path.join(dataDir, 'recordings');
  await mkdir(recDir, { recursive: true, mode: 0o700 });
  let recordings = 0;
  for (const f of m.files) {
    if (f.kind !== 'recording' && f.kind !== 'recording-open') continue;
    await copyFile(path.join(root, f.path), path.join(recDir, path.basename(f.path)));
    recordings++;
  }

  // The outbox position: rows not yet acknowledged are sent again (the cloud drops repeats by
  // seq), and new events start far past anything the old box can have sent since the backup.
  const next = restoredSeq(m, opts.now ?? new Date());
  const db = await Db.open(dbFile);
  let before = m.outbox.lastSeq;
  try {
    const row = await db.get<{ last_seq: number }>('SELECT last_seq FROM sync_state WHERE id = 1');
    before = row?.last_seq ?? before;
    await db.transaction((tx) => tx.run('UPDATE sync_state SET last_seq = ? WHERE id = 1 AND last_seq < ?', [next, next]));
  } finally {
    await db.close();
  }
  return { id: m.id, recordings, keys: keyCount, lastSeqBefore: before, lastSeqAfter: Math.max(next, before) };
}
