import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../store/db';
import { deriveKeys, encryptTo, passphraseCheck } from './crypto';
import { collectKeys } from './key-bundle';
import { listBackups, MANIFEST_FILE, POOL_DIR, signManifest, type Manifest, type ManifestFile } from './manifest';
import { copyRecordings } from './recordings-copy';
import { backupsToDelete } from './retention';
import { snapshotDatabase } from './snapshot';
import { sweepPool } from './pool';

export interface BackupJob {
  db: Db;
  dataDir: string;
  /** The backup path (local directory or mounted share). */
  root: string;
  passphrase: string;
  keep: { count: number; days: number };
  /** Pages per online-backup step; -1: all in one step (a process with no calls to keep going). */
  pagesPerStep: number;
  site: string;
  device: string;
  version: string;
  now?: () => Date;
}

export interface BackupResult {
  id: string;
  dir: string;
  createdAt: string;
  durationMs: number;
  /** Bytes written to the backup path by this run (database, keys, new recordings). */
  bytes: number;
  recordings: number;
  recordingsCopied: number;
  lastSeq: number;
  deleted: string[];
}

export function backupId(at: Date): string {
  return `ccedge-${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/**
 * One backup: an online snapshot of the database, the keys, and the vault's recordings, then the
 * manifest (written last: a directory without one is an unfinished run), then retention. The
 * database and keys leave the data dir only encrypted with the passphrase; the plain snapshot
 * exists only inside the data dir while it is encrypted.
 */
export async function runBackup(job: BackupJob): Promise<BackupResult> {
  const now = job.now ?? (() => new Date());
  const started = now();
  const t0 = process.hrtime.bigint();
  const id = backupId(started);
  const dir = path.join(job.root, id);
  const partial = path.join(job.root, `.${id}.partial`);
  const tmpDir = path.join(job.dataDir, 'backup-tmp');
  const plainDb = path.join(tmpDir, `${id}.db`);
  await mkdir(partial, { recursive: true, mode: 0o700 });
  await removeStalePartials(job.root, started);
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  try {
    const keys = await deriveKeys(job.passphrase);
    const previous = await listBackups(job.root);
    const known = new Map<string, { bytes: number; sha256: string }>();
    for (const m of previous) for (const f of m.files) if (f.kind === 'recording') known.set(f.path, { bytes: f.bytes, sha256: f.sha256 });

    const snap = await snapshotDatabase(job.db, plainDb, job.pagesPerStep);
    const files: ManifestFile[] = [];
    const dbFile = await encryptTo({ file: plainDb }, path.join(partial, 'ccedge.db.enc'), 'ccedge.db', keys.enc);
    files.push({ path: `${id}/ccedge.db.enc`, kind: 'db', ...dbFile });
    await rm(plainDb, { force: true });
    await rm(`${plainDb}-journal`, { force: true });
    const bundle = await collectKeys(job.dataDir);
    const keyFile = await encryptTo({ data: bundle.data }, path.join(partial, 'keys.enc'), 'keys', keys.enc);
    files.push({ path: `${id}/keys.enc`, kind: 'keys', ...keyFile });
    // Open recordings are copied under the final name's directory; the rename below keeps the paths right.
    const recs = await copyRecordings(path.join(job.dataDir, 'recordings'), job.root, partial, snap.recordings, known);
    for (const f of recs.files) files.push(f.kind === 'recording-open' ? { ...f, path: f.path.replace(/^[^/]+\//, `${id}/`) } : f);

    const finished = now();
    const manifest: Manifest = signManifest(
      {
        format: 'ccedge-backup',
        v: 1,
        id,
        createdAt: started.toISOString(),
        finishedAt: finished.toISOString(),
        site: job.site,
        device: job.device,
        version: job.version,
        kdf: keys.kdf,
        check: passphraseCheck(keys),
        db: { schemaVersion: snap.schemaVersion, pages: snap.pages, calls: snap.calls },
        outbox: { lastSeq: snap.lastSeq, lastAckedSeq: snap.lastAckedSeq },
        files,
      },
      keys,
    );
    const text = `${JSON.stringify(manifest, null, 2)}\n`;
    await writeFile(path.join(partial, MANIFEST_FILE), text, { mode: 0o600 });
    await rename(partial, dir);

    const deleted = backupsToDelete([...previous, manifest], job.keep, finished).map((m) => m.id);
    for (const d of deleted) await rm(path.join(job.root, d), { recursive: true, force: true });
    if (deleted.length) await sweepPool(job.root);
    return {
      id,
      dir,
      createdAt: manifest.createdAt,
      durationMs: Number((process.hrtime.bigint() - t0) / 1_000_000n),
      bytes: dbFile.bytes + keyFile.bytes + recs.copiedBytes + Buffer.byteLength(text),
      recordings: recs.files.length,
      recordingsCopied: recs.copied,
      lastSeq: snap.lastSeq,
      deleted,
    };
  } catch (e) {
    await rm(partial, { recursive: true, force: true });
    throw e;
  } finally {
    await rm(plainDb, { force: true });
    await rm(`${plainDb}-journal`, { force: true });
  }
}

/** A run that died (power cut, kill) leaves `.ccedge-….partial`; a day later it is surely not running. */
async function removeStalePartials(root: string, now: Date): Promise<void> {
  for (const n of await readdir(root).catch(() => [] as string[])) {
    if (!/^\.ccedge-.*\.partial$/.test(n)) continue;
    const st = await stat(path.join(root, n)).catch(() => undefined);
    if (st && now.getTime() - st.mtimeMs > 86_400_000) await rm(path.join(root, n), { recursive: true, force: true });
  }
}

export { POOL_DIR };
