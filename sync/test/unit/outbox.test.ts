import assert from 'node:assert/strict';
import path from 'node:path';
import { Outbox } from '../../outbox';
import { Policy } from '../../policy';
import { dbIsSqlDb, openSyncDb, tempDir } from '../helpers/db';

type Db = Awaited<ReturnType<typeof openSyncDb>>;

describe('sync/outbox', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  let db: Db;
  const policy = new Policy();
  const make = (limits: ConstructorParameters<typeof Outbox>[1]['limits'] = {}, now?: () => Date, bootId = 'boot-1'): Outbox =>
    new Outbox(dbIsSqlDb(db), { deviceId: 'dev-1', bootId, policy, limits, now });

  beforeEach(async () => {
    tmp = tempDir();
    file = path.join(tmp.dir, 'ccedge.db');
    db = await openSyncDb(file);
  });
  afterEach(async () => {
    await db.close();
    tmp.cleanup();
  });

  it('appends inside the caller transaction: committed with the state change, or not at all', async () => {
    const ob = make();
    await ob.check();
    await db.exec('CREATE TABLE t (x TEXT)');
    await db.transaction(async (tx) => {
      await tx.run('INSERT INTO t VALUES (?)', ['a']);
      assert.equal(await ob.append(tx, 'call.answered', { callId: 'c1' }), 1);
    });
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.run('INSERT INTO t VALUES (?)', ['b']);
        await ob.append(tx, 'call.answered', { callId: 'c2' });
        throw new Error('state change failed');
      }),
      /state change failed/,
    );
    const rows = await ob.pending(10);
    assert.deepEqual(rows.map((r) => r.seq), [1]);
    assert.deepEqual(JSON.parse(rows[0].payload), { id: 'dev-1:1', seq: 1, ts: rows[0].ts, bootId: 'boot-1', type: 'call.answered', callId: 'c1' });
    assert.equal(await db.transaction((tx) => ob.append(tx, 'call.answered', { callId: 'c3' })), 2, 'the rolled-back seq is reused: it never left');
  });

  it('applies the residency policy at append: nothing else reaches the row', async () => {
    const ob = make();
    // Untyped input (the compiler refuses envelope fields in a literal): the policy still keeps the envelope.
    const data: Record<string, unknown> = { callId: 'c', from: 'sip:+15551234567@pbx', fromName: 'Jane', seq: 99, type: 'x' };
    await db.transaction((tx) => ob.append(tx, 'call.offered', data));
    const [row] = await ob.pending(1);
    assert.ok(!row.payload.includes('5551234567'));
    assert.ok(!row.payload.includes('Jane'));
    assert.equal(JSON.parse(row.payload).seq, 1);
  });

  it('seq survives a restart and an empty outbox; bootId changes per boot', async () => {
    let ob = make();
    for (let i = 0; i < 3; i++) await db.transaction((tx) => ob.append(tx, 'call.answered', { callId: `c${i}` }));
    assert.equal(await ob.ack([1, 2, 3]), 3);
    await db.close();
    db = await openSyncDb(file);
    ob = make({}, undefined, 'boot-2');
    const seq = await db.transaction((tx) => ob.append(tx, 'call.answered', { callId: 'c9' }));
    assert.equal(seq, 4);
    const [row] = await ob.pending(5);
    assert.equal(JSON.parse(row.payload).bootId, 'boot-2');
    const s = await ob.stats();
    assert.deepEqual({ depth: s.depth, lastSeq: s.lastSeq, lastAckedSeq: s.lastAckedSeq }, { depth: 1, lastSeq: 4, lastAckedSeq: 3 });
  });

  it('pending(limit, after) pages in seq order; ack keeps depth and bytes exact', async () => {
    const ob = make();
    for (let i = 0; i < 10; i++) await db.transaction((tx) => ob.append(tx, 'call.answered', { callId: `c${i}` }));
    assert.deepEqual((await ob.pending(3)).map((r) => r.seq), [1, 2, 3]);
    assert.deepEqual((await ob.pending(3, 3)).map((r) => r.seq), [4, 5, 6]);
    assert.equal(await ob.ack([2, 4, 4, 99]), 2);
    const s = await ob.stats();
    const real = await db.get<{ n: number; b: number }>('SELECT COUNT(*) AS n, SUM(bytes) AS b FROM sync_outbox');
    assert.equal(s.depth, 8);
    assert.equal(s.bytes, real?.b);
    assert.equal(s.lastAckedSeq, 99);
  });

  it('max rows: drops the oldest, counts them, and reports them as one sync.dropped event', async () => {
    const ob = make({ maxRows: 10 });
    for (let i = 0; i < 25; i++) await db.transaction((tx) => ob.append(tx, 'call.answered', { callId: `c${i}` }));
    let s = await ob.stats();
    assert.equal(s.depth, 10);
    assert.equal(s.droppedTotal, 15);
    assert.equal(s.unreportedDrops, 15);
    assert.deepEqual((await ob.pending(100)).map((r) => r.seq), [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    const reportSeq = await ob.reportDrops();
    assert.equal(reportSeq, 26);
    const rows = await ob.pending(100);
    assert.equal(rows.length, 10, 'the report itself pushed one more old row out');
    const report = JSON.parse(rows[rows.length - 1].payload);
    assert.deepEqual({ type: report.type, count: report.count, byLimit: report.byLimit, fromSeq: report.fromSeq, toSeq: report.toSeq }, { type: 'sync.dropped', count: 15, byLimit: 15, fromSeq: 1, toSeq: 15 });
    s = await ob.stats();
    assert.equal(s.droppedTotal, 16);
    assert.equal(s.unreportedDrops, 1);
    assert.equal(await ob.reportDrops(), 27);
  });

  it('max bytes: drops the oldest until the new row fits', async () => {
    const ob = make({ maxBytes: 64 * 1024, maxEventBytes: 1024 });
    const big = 'x'.repeat(200);
    for (let i = 0; i < 1000; i++) await db.transaction((tx) => ob.append(tx, 'call.ended', { callId: `c${i}`, cause: big }));
    const s = await ob.stats();
    assert.ok(s.bytes <= 64 * 1024, String(s.bytes));
    assert.ok(s.droppedTotal > 0);
    assert.equal(s.depth + s.droppedTotal, 1000);
    const rows = await ob.pending(100_000);
    assert.equal(rows[rows.length - 1].seq, 1000);
    assert.equal(rows[0].seq, s.droppedTotal + 1, 'the oldest went first');
  });

  it('oversized events leave as envelope + truncated', async () => {
    const ob = make({ maxEventBytes: 256 });
    const skills = Array.from({ length: 32 }, (_, i) => `skill-number-${i}`);
    await db.transaction((tx) => ob.append(tx, 'call.queued', { callId: 'c', queue: 'q', intent: skills }));
    const [row] = await ob.pending(1);
    const p = JSON.parse(row.payload);
    assert.equal(p.truncated, true);
    assert.equal(p.intent, undefined);
  });

  it('TTL: rows older than ttlS are dropped and reported', async () => {
    let now = Date.parse('2025-01-01T00:00:00Z');
    const ob = make({ ttlS: 60 }, () => new Date(now));
    for (let i = 0; i < 5; i++) await db.transaction((tx) => ob.append(tx, 'call.answered', { callId: `old${i}` }));
    now += 61_000;
    for (let i = 0; i < 2; i++) await db.transaction((tx) => ob.append(tx, 'call.answered', { callId: `new${i}` }));
    assert.equal(await ob.prune(), 5);
    assert.deepEqual((await ob.pending(10)).map((r) => r.seq), [6, 7]);
    await ob.reportDrops();
    const rows = await ob.pending(10);
    const report = JSON.parse(rows[rows.length - 1].payload);
    assert.equal(report.byTtl, 5);
  });

  it('pending() never sees rows of a transaction still open (they may roll back)', async () => {
    const ob = make();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tx = db.transaction(async (t) => {
      await ob.append(t, 'call.answered', { callId: 'c' });
      await gate;
      throw new Error('rollback');
    });
    const seen = ob.pending(10);
    await new Promise((r) => setTimeout(r, 20));
    release();
    await assert.rejects(tx);
    assert.deepEqual(await seen, []);
  });

  it('refuses to run without the sync tables', async () => {
    const tmp2 = tempDir();
    const { Db } = await import('../../../gateway/store/db');
    const bare = await Db.open(path.join(tmp2.dir, 'x.db'));
    // The gateway's migrations create the sync tables; take one away to see the check refuse.
    await bare.exec('DROP TABLE sync_outbox');
    try {
      await assert.rejects(new Outbox(bare, { deviceId: 'd', bootId: 'b', policy }).check(), /SYNC_SCHEMA_SQL/);
    } finally {
      await bare.close();
      tmp2.cleanup();
    }
  });
});
