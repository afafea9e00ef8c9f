import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { CcedgeError } from '../../errors';
import { Db, MAX_BATCH } from '../../store/db';

/** Reads through a second connection: it sees only what was committed. */
function committed<T>(file: string, sql: string): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const other = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      other.all(sql, (e, rows) => other.close(() => (e ? reject(e) : resolve(rows as T[]))));
    });
  });
}

describe('Db group commit (transactions queued together share one COMMIT, each in its own savepoint)', () => {
  let dir: string;
  let file: string;
  let db: Db | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ccedge-groupcommit-'));
    file = path.join(dir, 'ccedge.db');
    db = await Db.open(file);
    await db.exec(`
      CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL UNIQUE, seen INTEGER NOT NULL);
      CREATE TABLE parent (id INTEGER PRIMARY KEY);
      CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
    `);
  });
  afterEach(async () => {
    await db?.close();
    db = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** Inserts n, recording how many rows the work saw before it (what ran before it in order). */
  function insert(d: Db, n: number): Promise<number> {
    return d.transaction(async (tx) => {
      const before = await tx.get<{ c: number }>('SELECT COUNT(*) AS c FROM t');
      await tx.run('INSERT INTO t (n, seen) VALUES (?, ?)', [n, before?.c ?? -1]);
      return n;
    });
  }

  it('commits every one of many concurrent transactions, in the order they were asked for, each seeing the ones before it', async () => {
    const d = db as Db;
    const total = 3 * MAX_BATCH + 17;
    const results = await Promise.all(Array.from({ length: total }, (_, n) => insert(d, n)));
    assert.deepEqual(results, Array.from({ length: total }, (_, n) => n));
    const rows = await committed<{ n: number; seen: number }>(file, 'SELECT n, seen FROM t ORDER BY id');
    assert.equal(rows.length, total);
    rows.forEach((r, i) => {
      assert.equal(r.n, i, 'rows are in the order the transactions were asked for');
      assert.equal(r.seen, i, 'each transaction saw every earlier one');
    });
  });

  it('rolls back only the failing transaction among many; the others commit and do not see its writes', async () => {
    const d = db as Db;
    const works = Array.from({ length: 100 }, (_, n) =>
      n === 50
        ? d.transaction(async (tx) => {
            await tx.run('INSERT INTO t (n, seen) VALUES (?, -1)', [50]);
            await tx.run('INSERT INTO t (n, seen) VALUES (?, -1)', [49]); // duplicate n: fails
          })
        : insert(d, n),
    );
    const settled = await Promise.allSettled(works);
    assert.deepEqual(
      settled.map((s, i) => (s.status === 'fulfilled' ? i : -1)).filter((i) => i >= 0),
      Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 50),
    );
    const failed = settled[50];
    assert.ok(failed.status === 'rejected' && /UNIQUE/.test(String((failed.reason as Error).message)), 'the failing one rejects with its own error');
    const rows = await committed<{ n: number; seen: number }>(file, 'SELECT n, seen FROM t ORDER BY id');
    assert.deepEqual(
      rows.map((r) => r.n),
      Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 50),
      'the failing transaction left no row, not even its first statement',
    );
    assert.equal(rows.find((r) => r.n === 51)?.seen, 50, 'the next transaction did not see the rolled-back row');
  });

  it('rejects every transaction of a batch whose COMMIT fails (deferred foreign key) and commits none of them', async () => {
    const d = db as Db;
    const works = Array.from({ length: 10 }, (_, n) =>
      n === 5 ? d.transaction((tx) => tx.run('INSERT INTO child (id, parent) VALUES (1, 999)')) : insert(d, n),
    );
    const settled = await Promise.allSettled(works);
    for (const s of settled) assert.equal(s.status, 'rejected', 'nothing of the batch is durable, so no caller is told it is');
    assert.match(String(((settled[0] as PromiseRejectedResult).reason as Error).message), /FOREIGN KEY/);
    assert.deepEqual(await committed(file, 'SELECT n FROM t'), []);
    assert.deepEqual(await committed(file, 'SELECT id FROM child'), []);
    // No transaction is left open: the next one commits.
    assert.equal(await insert(d, 100), 100);
    assert.deepEqual(await committed(file, 'SELECT n FROM t'), [{ n: 100 }]);
  });

  it(`holds at most ${MAX_BATCH} transactions in one COMMIT: a failing COMMIT rejects only its batch`, async () => {
    const d = db as Db;
    const total = MAX_BATCH + 44;
    const works = Array.from({ length: total }, (_, n) =>
      n === 0 ? d.transaction((tx) => tx.run('INSERT INTO child (id, parent) VALUES (1, 999)')) : insert(d, n),
    );
    const settled = await Promise.allSettled(works);
    assert.deepEqual(
      settled.map((s) => s.status),
      Array.from({ length: total }, (_, i) => (i < MAX_BATCH ? 'rejected' : 'fulfilled')),
    );
    const rows = await committed<{ n: number }>(file, 'SELECT n FROM t ORDER BY id');
    assert.deepEqual(
      rows.map((r) => r.n),
      Array.from({ length: 44 }, (_, i) => MAX_BATCH + i),
    );
  });

  it('runs betweenWrites after the earlier transactions committed, with no transaction open, and before the later ones', async () => {
    const d = db as Db;
    const before = Array.from({ length: 5 }, (_, n) => insert(d, n));
    const between = d.betweenWrites(async () => {
      // sqlite refuses BEGIN inside a transaction: this proves none is open.
      await d.exec('BEGIN IMMEDIATE; ROLLBACK');
      return committed<{ n: number }>(file, 'SELECT n FROM t ORDER BY id');
    });
    const after = Array.from({ length: 5 }, (_, n) => insert(d, 10 + n));
    const seen = await between;
    assert.deepEqual(
      seen.map((r) => r.n),
      [0, 1, 2, 3, 4],
      'the earlier five were committed and the later five had not run',
    );
    await Promise.all([...before, ...after]);
    assert.equal((await committed(file, 'SELECT n FROM t')).length, 10);
  });

  it('goes on after a betweenWrites work that throws before returning a promise', async () => {
    const d = db as Db;
    const bad = d.betweenWrites((): Promise<void> => {
      throw new Error('thrown at once');
    });
    await assert.rejects(bad, /thrown at once/);
    assert.equal(await insert(d, 7), 7);
  });

  it('commits the writes queued before close and refuses later ones with DB_FAILED', async () => {
    const d = db as Db;
    const queued = Array.from({ length: 20 }, (_, n) => insert(d, n));
    const closing = d.close();
    const late = insert(d, 99);
    await Promise.all(queued);
    await closing;
    await assert.rejects(late, (e: unknown) => e instanceof CcedgeError && e.code === 'DB_FAILED');
    db = undefined;
    assert.equal((await committed(file, 'SELECT n FROM t')).length, 20);
  });

  it('keeps working past the prepared-statement cache size and with a statement that cannot be prepared', async () => {
    const d = db as Db;
    await assert.rejects(d.transaction((tx) => tx.run('INSERT INTO no_such_table VALUES (1)')), /no such table/);
    // 300 distinct statement texts: more than are cached, so some are evicted while others run.
    await Promise.all(Array.from({ length: 300 }, (_, n) => d.transaction((tx) => tx.run(`INSERT INTO t (n, seen) VALUES (${n}, ?)`, [n]))));
    assert.equal((await committed(file, 'SELECT n FROM t')).length, 300);
  });
});
