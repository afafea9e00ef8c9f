import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { CcedgeError } from '../errors';
import { MIGRATIONS } from './migrations';

export type SqlParam = string | number | bigint | null | Buffer;
export type Row = Record<string, unknown>;

/**
 * One sqlite3 connection with promises. Writes go through `transaction()`, which serialises them:
 * sqlite3's own serialize() cannot keep an async transaction's statements together.
 */
export class Db {
  private writeChain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly db: sqlite3.Database,
    readonly file: string,
  ) {}

  static async open(file: string): Promise<Db> {
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
    const handle = await new Promise<sqlite3.Database>((resolve, reject) => {
      const d = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(d)));
    }).catch((e: Error) => {
      throw new CcedgeError('DB_FAILED', `cannot open database ${file}: ${e.message}`, { file });
    });
    handle.configure('busyTimeout', 5000);
    const db = new Db(handle, file);
    try {
      await db.checkVersion();
      await db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
      await db.migrate();
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
    return db;
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  run(sql: string, params: SqlParam[] = []): Promise<{ lastID: number; changes: number }> {
    return new Promise((resolve, reject) =>
      this.db.run(sql, params, function (err) {
        if (err) reject(err);
        else resolve({ lastID: this.lastID, changes: this.changes });
      }),
    );
  }

  get<T = Row>(sql: string, params: SqlParam[] = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => this.db.get(sql, params, (err, row) => (err ? reject(err) : resolve(row as T | undefined))));
  }

  all<T = Row>(sql: string, params: SqlParam[] = []): Promise<T[]> {
    return new Promise((resolve, reject) => this.db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows as T[]))));
  }

  /** Runs `work` inside BEGIN IMMEDIATE … COMMIT, after every earlier write has finished. */
  transaction<T>(work: (db: Db) => Promise<T>): Promise<T> {
    const next = this.writeChain.then(async () => {
      if (this.closed) throw new CcedgeError('DB_FAILED', 'database is closed');
      await this.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(this);
        await this.exec('COMMIT');
        return result;
      } catch (e) {
        await this.exec('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
    this.writeChain = next.catch(() => undefined);
    return next;
  }

  /**
   * Runs `work` after every earlier write, with no transaction open on this connection, and
   * holds later writes until it is done (a backup step: sqlite refuses one mid-transaction).
   */
  betweenWrites<T>(work: () => Promise<T>): Promise<T> {
    const next = this.writeChain.then(() => {
      if (this.closed) throw new CcedgeError('DB_FAILED', 'database is closed');
      return work();
    });
    this.writeChain = next.catch(() => undefined);
    return next;
  }

  /**
   * sqlite's online backup of this connection's database into `file` (gateway/backup/snapshot.ts
   * steps it). Writes through this same connection update the copy as it goes, so the result is
   * one consistent state however long the backup takes.
   */
  onlineBackup(file: string, ready: (err: Error | null) => void): sqlite3.Backup {
    if (this.closed) throw new CcedgeError('DB_FAILED', 'database is closed');
    return this.db.backup(file, ready);
  }

  /** Waits for queued writes, then closes the connection (checkpointing the WAL). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.writeChain;
    this.closed = true;
    await new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }

  /** Refuses, before writing anything, a database made by a newer ccedge. */
  private async checkVersion(): Promise<number> {
    const row = await this.get<{ user_version: number }>('PRAGMA user_version');
    const current = row?.user_version ?? 0;
    if (current > MIGRATIONS.length) {
      throw new CcedgeError(
        'DB_MIGRATION_FAILED',
        `database ${this.file} is at schema version ${current}, newer than this build knows (${MIGRATIONS.length}); refusing to run an older ccedge on it`,
      );
    }
    return current;
  }

  private async migrate(): Promise<void> {
    const current = await this.checkVersion();
    for (let v = current; v < MIGRATIONS.length; v++) {
      try {
        await this.transaction(async (db) => {
          await db.exec(MIGRATIONS[v]);
          await db.exec(`PRAGMA user_version = ${v + 1}`);
        });
      } catch (e) {
        throw new CcedgeError('DB_MIGRATION_FAILED', `migration ${v + 1} failed: ${(e as Error).message}`);
      }
    }
  }
}

/**
 * The database file of an existing data dir, for commands that only read: they must never create
 * a data dir (a new database and keys in ./var because the command ran in the wrong directory).
 */
export function existingDbFile(dataDir: string): string {
  const file = path.join(dataDir, 'ccedge.db');
  if (!existsSync(file)) {
    throw new CcedgeError(
      'CLI_NO_DATA_DIR',
      `no ccedge data at ${dataDir} (${existsSync(dataDir) ? 'the directory has no ccedge.db' : 'the directory does not exist'}); nothing was created. Run this where ccedge.yaml is, or give --config FILE`,
    );
  }
  return file;
}
