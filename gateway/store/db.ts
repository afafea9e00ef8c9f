import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { CcedgeError } from '../errors';
import { MIGRATIONS } from './migrations';

export type SqlParam = string | number | bigint | null | Buffer;
export type Row = Record<string, unknown>;

/** Works one commit may hold: enough to amortise the COMMIT, few enough that no batch holds the write lock long. */
export const MAX_BATCH = 256;
/** Prepared statements kept for reuse (a prepare is one more trip to sqlite's thread). */
const MAX_CACHED_STATEMENTS = 128;
/** run() caches plain writes only: they run to completion, so a cached one never holds a read open. */
const CACHEABLE = /^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i;
/** get() caches reads (and writes with RETURNING) too: each get is reset right after its row. */
const CACHEABLE_GET = /^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH)\b/i;

type Queued =
  | { kind: 'tx'; work: (db: Db) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void }
  | { kind: 'between'; work: () => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void };

/** A work of the open batch that has run, and how it ended. */
type Ran = { entry: Queued; ok: true; value: unknown } | { entry: Queued; ok: false; error: unknown };

/**
 * One sqlite3 connection with promises. Writes go through `transaction()`, which serialises them:
 * sqlite3's own serialize() cannot keep an async transaction's statements together.
 *
 * Group commit: transactions that queue up while one runs are run, in order, inside ONE
 * BEGIN IMMEDIATE … COMMIT (at most MAX_BATCH of them), each in its own SAVEPOINT: every
 * statement is a sequential trip to sqlite's thread, and BEGIN + COMMIT per event were the trips
 * (and WAL commit work) that made the call records fall behind the call rate. What a caller sees is unchanged: its work runs after every earlier one finished and
 * sees their writes; a failing work is rolled back to its savepoint alone; its promise settles only
 * after the COMMIT that holds it, and a failing COMMIT rejects every work of its batch.
 */
export class Db {
  private readonly queue: Queued[] = [];
  private draining = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly statements = new Map<string, sqlite3.Statement>();

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
    if (!this.closed && CACHEABLE.test(sql) && !/\bRETURNING\b/i.test(sql)) return this.runCached(sql, params);
    return new Promise((resolve, reject) =>
      this.db.run(sql, params, function (err) {
        if (err) reject(err);
        else resolve({ lastID: this.lastID, changes: this.changes });
      }),
    );
  }

  get<T = Row>(sql: string, params: SqlParam[] = []): Promise<T | undefined> {
    if (!this.closed && CACHEABLE_GET.test(sql)) {
      return new Promise((resolve, reject) =>
        this.withStatement(sql, reject, (stmt) => {
          stmt.get(params, (err: Error | null, row: unknown) => (err ? reject(err) : resolve(row as T | undefined)));
          // A get stops at the first row: the reset (queued behind it on this statement) ends
          // the read, so a cached statement never holds a read transaction open.
          stmt.reset();
        }),
      );
    }
    return new Promise((resolve, reject) => this.db.get(sql, params, (err, row) => (err ? reject(err) : resolve(row as T | undefined))));
  }

  all<T = Row>(sql: string, params: SqlParam[] = []): Promise<T[]> {
    return new Promise((resolve, reject) => this.db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows as T[]))));
  }

  /**
   * Runs `work` inside a transaction, after every earlier write has finished, and settles once
   * the COMMIT that holds it is done (see the class comment: it may share that COMMIT).
   */
  transaction<T>(work: (db: Db) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ kind: 'tx', work, resolve: (v) => resolve(v as T), reject });
      this.drain();
    });
  }

  /**
   * Runs `work` after every earlier write, with no transaction open on this connection, and
   * holds later writes until it is done (a backup step: sqlite refuses one mid-transaction).
   */
  betweenWrites<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ kind: 'between', work, resolve: (v) => resolve(v as T), reject });
      this.drain();
    });
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
  close(): Promise<void> {
    this.closing ??= this.betweenWrites(async () => {
      this.closed = true;
      const statements = [...this.statements.values()];
      this.statements.clear();
      await Promise.all(statements.map((st) => new Promise<void>((resolve) => st.finalize(() => resolve()))));
      await new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
    });
    return this.closing;
  }

  /** A plain write through its cached prepared statement. */
  private runCached(sql: string, params: SqlParam[]): Promise<{ lastID: number; changes: number }> {
    return new Promise((resolve, reject) =>
      this.withStatement(sql, reject, (stmt) =>
        stmt.run(params, function (err: Error | null) {
          if (err) reject(err);
          else resolve({ lastID: this.lastID, changes: this.changes });
        }),
      ),
    );
  }

  /**
   * Hands `use` the cached prepared statement of `sql`, preparing it on first use (a prepare is
   * one more trip to sqlite's thread); a statement that fails to prepare goes to `reject` and is
   * never cached.
   */
  private withStatement(sql: string, reject: (e: Error) => void, use: (stmt: sqlite3.Statement) => void): void {
    const cached = this.statements.get(sql);
    if (cached) {
      // Most recently used last, so the first is the one to evict.
      this.statements.delete(sql);
      this.statements.set(sql, cached);
      return use(cached);
    }
    const stmt = this.db.prepare(sql, (err) => {
      if (err) return reject(err);
      const raced = this.statements.get(sql);
      if (raced || this.closed) {
        // Used once, then finalized (queued behind that use): only the cache's statements live on.
        use(raced ?? stmt);
        stmt.finalize();
        return;
      }
      this.remember(sql, stmt);
      use(stmt);
    });
  }

  private remember(sql: string, stmt: sqlite3.Statement): void {
    if (this.statements.size >= MAX_CACHED_STATEMENTS) {
      const [oldest, old] = this.statements.entries().next().value as [string, sqlite3.Statement];
      this.statements.delete(oldest);
      old.finalize();
    }
    this.statements.set(sql, stmt);
  }

  /** Runs the queue: a `between` alone, consecutive transactions as one batch; one drain at a time. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    void (async () => {
      try {
        while (this.queue.length > 0) {
          const head = this.queue[0];
          if (this.closed) {
            this.queue.shift();
            head.reject(new CcedgeError('DB_FAILED', 'database is closed'));
          } else if (head.kind === 'between') {
            this.queue.shift();
            // Through then(): a work that throws before returning its promise still settles and the queue goes on.
            await Promise.resolve()
              .then(() => head.work())
              .then(head.resolve, head.reject);
          } else {
            await this.runBatch();
          }
        }
      } finally {
        this.draining = false;
      }
    })();
  }

  /**
   * Runs queued transactions (including those that queue up meanwhile) in one BEGIN … COMMIT,
   * each in SAVEPOINT w, and settles them in order after the COMMIT. Never throws.
   */
  private async runBatch(): Promise<void> {
    const first = this.queue.shift() as Queued;
    try {
      await this.exec('BEGIN IMMEDIATE; SAVEPOINT w');
    } catch (e) {
      await this.exec('ROLLBACK').catch(() => undefined);
      first.reject(e);
      return;
    }
    const ran: Ran[] = [];
    let entry: Queued = first;
    for (;;) {
      let outcome: Ran;
      try {
        outcome = { entry, ok: true, value: await entry.work(this) };
      } catch (error) {
        outcome = { entry, ok: false, error };
      }
      ran.push(outcome);
      const next = ran.length < MAX_BATCH && this.queue[0]?.kind === 'tx' ? (this.queue.shift() as Queued) : undefined;
      // One trip to sqlite's thread closes this work's savepoint and opens the next one (or commits).
      const close = outcome.ok ? 'RELEASE w' : 'ROLLBACK TO w; RELEASE w';
      try {
        await this.exec(next ? `${close}; SAVEPOINT w` : `${close}; COMMIT`);
      } catch (e) {
        // A failed COMMIT (or sqlite having ended the transaction itself, e.g. on a full disk):
        // nothing of the batch is durable, so every work of it fails.
        await this.exec('ROLLBACK').catch(() => undefined);
        const err = e instanceof Error ? e : new Error(String(e));
        for (const r of ran) r.entry.reject(r.ok ? err : r.error);
        if (next) this.queue.unshift(next);
        return;
      }
      if (!next) break;
      entry = next;
    }
    for (const r of ran) {
      if (r.ok) r.entry.resolve(r.value);
      else r.entry.reject(r.error);
    }
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
