import { rm } from 'node:fs/promises';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import sqlite3 from 'sqlite3';
import { CcedgeError } from '../errors';
import type { Db } from '../store/db';

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
/** A step refused for BUSY/LOCKED this many times in a row fails the snapshot (~1 min). */
const MAX_RETRIES = 600;

/** What the restore and the manifest need from the snapshot, read from the copy itself. */
export interface SnapshotInfo {
  pages: number;
  schemaVersion: number;
  lastSeq: number;
  lastAckedSeq: number;
  calls: number;
  recordings: Array<{ id: string; file: string; state: string }>;
}

/**
 * Copies the live database into `file` with sqlite's online backup API, `pagesPerStep` pages at
 * a time with the event loop free between steps, so calls go on. The copy is then made a
 * stand-alone rollback-journal file (no -wal/-shm beside it) and described.
 */
export async function snapshotDatabase(db: Db, file: string, pagesPerStep: number): Promise<SnapshotInfo> {
  await rm(file, { force: true });
  let backup: sqlite3.Backup | undefined;
  await new Promise<void>((resolve, reject) => {
    backup = db.onlineBackup(file, (err) => (err ? reject(new CcedgeError('BACKUP_FAILED', `database snapshot could not start: ${err.message}`)) : resolve()));
  });
  const b = backup as sqlite3.Backup;
  b.retryErrors = [SQLITE_BUSY, SQLITE_LOCKED];
  let retries = 0;
  try {
    while (!b.completed) {
      if (b.failed) throw new CcedgeError('BACKUP_FAILED', 'database snapshot failed');
      // Each step waits for the write under way and holds the next for its few pages: a step
      // taken while this connection is inside a transaction would be refused (SQLITE_LOCKED).
      const err = await db.betweenWrites(() => new Promise<(Error & { errno?: number }) | null>((resolve) => b.step(pagesPerStep, (e) => resolve(e))));
      if (err) {
        if ((err.errno === SQLITE_BUSY || err.errno === SQLITE_LOCKED) && !b.failed && ++retries < MAX_RETRIES) {
          await sleep(100);
          continue;
        }
        throw new CcedgeError('BACKUP_FAILED', `database snapshot failed: ${err.message}`);
      }
      retries = 0;
      await yieldToLoop();
    }
  } finally {
    await new Promise<void>((resolve) => b.finish(() => resolve()));
  }
  return describeSnapshot(file);
}

function q<T>(d: sqlite3.Database, sql: string): Promise<T[]> {
  return new Promise((resolve, reject) => d.all<T>(sql, (err, rows) => (err ? reject(err) : resolve(rows))));
}

async function describeSnapshot(file: string): Promise<SnapshotInfo> {
  const d = await new Promise<sqlite3.Database>((resolve, reject) => {
    const h = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(h)));
  });
  try {
    await q(d, 'PRAGMA journal_mode = DELETE');
    const [ver] = await q<{ user_version: number }>(d, 'PRAGMA user_version');
    const [pages] = await q<{ page_count: number }>(d, 'PRAGMA page_count');
    const [state] = await q<{ last_seq: number; last_acked_seq: number }>(d, 'SELECT last_seq, last_acked_seq FROM sync_state WHERE id = 1').catch(() => []);
    const [calls] = await q<{ n: number }>(d, 'SELECT COUNT(*) AS n FROM calls');
    const recordings: Array<{ id: string; file: string; state: string }> = await q<{ id: string; file: string; state: string }>(d, "SELECT id, file, state FROM recordings WHERE state != 'deleted' ORDER BY created_at").catch(() => []);
    // Transcripts are vault files beside the recordings (written once, final): backed up and restored the same way.
    recordings.push(...(await q<{ id: string; file: string; state: string }>(d, "SELECT id, file, state FROM transcripts WHERE state != 'deleted' ORDER BY created_at").catch(() => [])));
    return { pages: pages.page_count, schemaVersion: ver.user_version, lastSeq: state?.last_seq ?? 0, lastAckedSeq: state?.last_acked_seq ?? 0, calls: calls.n, recordings };
  } finally {
    await new Promise<void>((resolve) => d.close(() => resolve()));
  }
}
