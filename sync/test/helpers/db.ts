import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
// Tests only: the gateway's Db is the real SqlDb sync/ runs on (production code never imports gateway/).
import { Db } from '../../../gateway/store/db';
import { SYNC_SCHEMA_SQL } from '../../schema';
import type { SqlDb } from '../../sql';

/** Compile-time proof that gateway's Db satisfies the narrow interface sync/ depends on. */
export const dbIsSqlDb = (db: Db): SqlDb => db;

export function tempDir(prefix = 'ccedge-sync-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Opens (creating or reopening) a gateway database with the sync tables, as the migration will. */
export async function openSyncDb(file: string): Promise<Db> {
  const db = await Db.open(file);
  await db.exec(SYNC_SCHEMA_SQL);
  return db;
}

/** Compile-time proof that the gateway's pino logger fits SyncLog. */
export const pinoIsSyncLog = (l: import('pino').Logger): import('../../sql').SyncLog => l;
