import sqlite3 from 'sqlite3';
import { TRANSCRIPTS_MIGRATION_SQL, VAULT_MIGRATION_SQL, type VaultDb, type VaultSqlParam } from '../../schema';

/**
 * A real sqlite3 database for vault tests, with the same contract as gateway's Db (serialised
 * transactions). media/ never imports gateway/, so the tests carry this small copy.
 */
export class TestDb implements VaultDb {
  private chain: Promise<unknown> = Promise.resolve();
  private constructor(readonly handle: sqlite3.Database) {}

  static async open(file: string): Promise<TestDb> {
    const handle = await new Promise<sqlite3.Database>((resolve, reject) => {
      const d = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(d)));
    });
    const db = new TestDb(handle);
    await db.exec(`PRAGMA journal_mode = WAL; ${VAULT_MIGRATION_SQL} ${TRANSCRIPTS_MIGRATION_SQL}`);
    return db;
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.handle.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  run(sql: string, params: VaultSqlParam[] = []): Promise<{ changes: number }> {
    return new Promise((resolve, reject) =>
      this.handle.run(sql, params, function (err) {
        if (err) reject(err);
        else resolve({ changes: this.changes });
      }),
    );
  }

  get<T = Record<string, unknown>>(sql: string, params: VaultSqlParam[] = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => this.handle.get(sql, params, (err, row) => (err ? reject(err) : resolve(row as T | undefined))));
  }

  all<T = Record<string, unknown>>(sql: string, params: VaultSqlParam[] = []): Promise<T[]> {
    return new Promise((resolve, reject) => this.handle.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows as T[]))));
  }

  transaction<T>(work: (db: VaultDb) => Promise<T>): Promise<T> {
    const next = this.chain.then(async () => {
      await this.exec('BEGIN IMMEDIATE');
      try {
        const r = await work(this);
        await this.exec('COMMIT');
        return r;
      } catch (e) {
        await this.exec('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  close(): Promise<void> {
    return this.chain.then(() => new Promise<void>((resolve, reject) => this.handle.close((err) => (err ? reject(err) : resolve()))));
  }
}

export const silentLog = { info(): void {}, warn(): void {}, error(): void {} };
