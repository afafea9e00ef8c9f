import type { Log } from '../lib/log';

/**
 * The narrow database interface sync/ needs. gateway/store/db.ts's `Db` satisfies it structurally,
 * so sync/ never imports gateway/ (DESIGN.md: dependencies point one way).
 *
 * Contract relied on (Db's): `transaction()` runs its work after every earlier transaction's work has
 * finished, one at a time on one connection, and settles only after the COMMIT that holds it (works
 * queued together may share one COMMIT); reads that must not see another flow's uncommitted rows
 * therefore go through `transaction()` too: what they read is committed by the time they resolve, and
 * they reject if that COMMIT fails.
 */
export type SqlParam = string | number | bigint | null | Buffer;

export interface SqlExec {
  run(sql: string, params?: SqlParam[]): Promise<{ lastID: number; changes: number }>;
  get<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T | undefined>;
  all<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T[]>;
}

export interface SqlDb extends SqlExec {
  transaction<T>(work: (tx: SqlExec) => Promise<T>): Promise<T>;
}

/** The JSON-lines logger sync/ writes to: the tree's one Log (lib/log.ts). */
export type SyncLog = Log;
export { SILENT_LOG } from '../lib/log';
