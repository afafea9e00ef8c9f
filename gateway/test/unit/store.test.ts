import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { CcedgeError } from '../../errors';
import { CallStore, type CallRecord } from '../../store/call-store';
import { Db } from '../../store/db';
import { MIGRATIONS } from '../../store/migrations';

let seq = 0;
function record(over: Partial<CallRecord> = {}): CallRecord {
  seq++;
  return {
    id: `call-${seq}`,
    sipCallId: `sip-${seq}@192.0.2.10`,
    trunk: 'pbx',
    direction: 'inbound',
    fromUri: 'sip:1001@192.0.2.10',
    fromUser: '1001',
    fromName: 'Alice',
    toUri: 'sip:support@192.0.2.1',
    toUser: 'support',
    remoteAddr: '192.0.2.10:5060',
    transport: 'UDP',
    codec: null,
    state: 'ringing',
    createdAt: new Date(Date.UTC(2025, 0, 1, 12, 0, seq)).toISOString(),
    answeredAt: null,
    endedAt: null,
    endCause: null,
    sipStatus: null,
    dtmf: '',
    rtpLocalPort: null,
    rtpRemote: null,
    rtpPacketsSent: 0,
    rtpPacketsReceived: 0,
    rtpPacketsDropped: 0,
    queue: null,
    agent: null,
    callerSource: null,
    assertedIdentity: null,
    privacy: null,
    originalCalled: null,
    ...over,
  };
}

/** Sets user_version on a file with plain sqlite3, outside the code under test. */
function rawExec(file: string, sql: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, (err) => {
      if (err) return reject(err);
      db.exec(sql, (e) => db.close((e2) => (e || e2 ? reject(e ?? e2) : resolve())));
    });
  });
}

describe('Db and CallStore on a sqlite file', () => {
  let dir: string;
  let file: string;
  let db: Db | undefined;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ccedge-store-'));
    file = path.join(dir, 'nested', 'ccedge.db');
  });
  afterEach(async () => {
    await db?.close();
    db = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the file (and its directory) and runs the migrations, setting user_version', async () => {
    db = await Db.open(file);
    const v = await db.get<{ user_version: number }>('PRAGMA user_version');
    assert.equal(v?.user_version, MIGRATIONS.length);
    assert.ok(MIGRATIONS.length >= 1);
    const tables = (await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")).map((t) => t.name);
    assert.ok(tables.includes('calls') && tables.includes('call_events'), tables.join(','));
    const mode = await db.get<{ journal_mode: string }>('PRAGMA journal_mode');
    assert.equal(mode?.journal_mode, 'wal');
  });

  it('creates, gets, updates and lists calls, with events in order', async () => {
    db = await Db.open(file);
    const store = new CallStore(db);
    const a = record();
    const b = record({ trunk: 'pbx-2', fromName: null, fromUser: null });
    await store.create(a, 'call.offered', { from: '1001' });
    await store.create(b, 'call.offered', {});
    assert.deepEqual(await store.get(a.id), a);
    assert.deepEqual(await store.get(b.id), b);
    assert.equal(await store.get('no-such-call'), undefined);

    await store.update(a.id, { state: 'answered', answeredAt: '2025-01-01T12:00:10.000Z', codec: 'PCMU', rtpLocalPort: 20002, sipStatus: 200 }, 'call.media-answered', { codec: 'PCMU' });
    await store.update(a.id, { dtmf: '12#', fromName: undefined }, 'call.dtmf', { digit: '12#' });
    await store.update(a.id, {}, 'call.confirmed', {});
    const got = await store.get(a.id);
    assert.equal(got?.state, 'answered');
    assert.equal(got?.codec, 'PCMU');
    assert.equal(got?.rtpLocalPort, 20002);
    assert.equal(got?.sipStatus, 200);
    assert.equal(got?.dtmf, '12#');
    assert.equal(got?.fromName, 'Alice', 'an undefined field is left alone');

    const events = await store.events(a.id);
    assert.deepEqual(
      events.map((e) => [e.type, e.data, e.callId]),
      [
        ['call.offered', { from: '1001' }, a.id],
        ['call.media-answered', { codec: 'PCMU' }, a.id],
        ['call.dtmf', { digit: '12#' }, a.id],
        ['call.confirmed', {}, a.id],
      ],
    );
    assert.ok(events.every((e) => !Number.isNaN(Date.parse(e.ts))));
    assert.ok(events[0].id < events[1].id && events[1].id < events[2].id);
    assert.deepEqual((await store.events(b.id)).map((e) => e.type), ['call.offered']);

    assert.deepEqual((await store.list()).map((c) => c.id), [b.id, a.id], 'newest first');
    assert.deepEqual((await store.list({ limit: 1 })).map((c) => c.id), [b.id]);
    assert.deepEqual((await store.list({ state: 'answered' })).map((c) => c.id), [a.id]);
    assert.deepEqual(await store.list({ state: 'failed' }), []);
    assert.equal(await store.count(), 2);
  });

  it('countFrom counts earlier calls from a number in the window, not this one, and stops at the cap', async () => {
    db = await Db.open(file);
    const store = new CallStore(db);
    const mine = Array.from({ length: 6 }, () => record({ fromUser: '5551234' }));
    for (const r of mine) await store.create(r, 'call.offered', {});
    await store.create(record({ fromUser: '5559999' }), 'call.offered', {});
    const since = '2025-01-01T00:00:00.000Z';
    assert.equal(await store.countFrom('5551234', since, mine[5].id, 100), 5, 'the other five, not this call');
    assert.equal(await store.countFrom('5551234', since, mine[5].id, 3), 3, 'a busy number stops at the cap');
    assert.equal(await store.countFrom('5551234', mine[4].createdAt, mine[5].id, 100), 1, 'only calls since the window start');
    assert.equal(await store.countFrom('0000', since, mine[5].id, 100), 0);
  });

  it('orders calls created in the same millisecond by insertion, newest first', async () => {
    db = await Db.open(file);
    const store = new CallStore(db);
    const ts = '2025-02-02T00:00:00.000Z';
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = record({ createdAt: ts });
      ids.push(r.id);
      await store.create(r, 'call.offered', {});
    }
    assert.deepEqual((await store.list()).map((c) => c.id), ids.reverse());
  });

  it('rolls back the call row when its event cannot be written (create)', async () => {
    db = await Db.open(file);
    const store = new CallStore(db);
    const r = record();
    // JSON.stringify throws on a BigInt: the event insert fails after the calls INSERT ran.
    // Untyped input (the compiler would refuse the field): the store must still roll back.
    const bad: Record<string, unknown> = { big: 1n };
    await assert.rejects(store.create(r, 'call.offered', bad), TypeError);
    assert.equal(await store.get(r.id), undefined, 'no calls row');
    assert.deepEqual(await store.events(r.id), [], 'no event');
    assert.equal(await store.count(), 0);
    // The connection is usable afterwards (no transaction left open).
    await store.create(record(), 'call.offered', {});
    assert.equal(await store.count(), 1);
  });

  it('rolls back the state change when its event cannot be written (update)', async () => {
    db = await Db.open(file);
    const store = new CallStore(db);
    const r = record();
    await store.create(r, 'call.offered', {});
    const bad: Record<string, unknown> = { big: 2n };
    await assert.rejects(store.update(r.id, { state: 'ended', endCause: 'normal' }, 'call.ended', bad));
    const after = await store.get(r.id);
    assert.equal(after?.state, 'ringing');
    assert.equal(after?.endCause, null);
    assert.deepEqual((await store.events(r.id)).map((e) => e.type), ['call.offered']);
  });

  it('rolls back every statement of a failing transaction and serialises concurrent ones', async () => {
    db = await Db.open(file);
    const store = new CallStore(db);
    const ok1 = record();
    const ok2 = record();
    const bad = record({ id: ok1.id }); // duplicate primary key
    const results = await Promise.allSettled([
      store.create(ok1, 'call.offered', {}),
      db.transaction(async (tx) => {
        // Succeeds (ok1 is committed by now: transactions run one after another), then the next fails.
        await tx.run("INSERT INTO call_events (call_id, ts, type, data) VALUES (?, 'x', 'ghost.event', '{}')", [ok1.id]);
        await tx.run('INSERT INTO nope VALUES (1)');
      }),
      store.create(bad, 'call.offered', {}),
      store.create(ok2, 'call.offered', {}),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    assert.equal(await store.count(), 2);
    assert.deepEqual((await store.events(ok1.id)).map((e) => e.type), ['call.offered'], 'neither the ghost event nor the duplicate left an event');
    // An event for a call that does not exist is refused (foreign key), so update() of one fails.
    await assert.rejects(store.update('no-such-call', { state: 'ended' }, 'call.ended', {}));
    assert.deepEqual(await store.events('no-such-call'), []);
  });

  it('closeOrphans ends ringing and answered calls with the cause and leaves finished ones alone', async () => {
    db = await Db.open(file);
    const store = new CallStore(db);
    const ringing = record({ state: 'ringing' });
    const answered = record({ state: 'answered', answeredAt: '2025-01-01T12:00:30.000Z' });
    const ended = record({ state: 'ended', endedAt: '2025-01-01T12:01:00.000Z', endCause: 'normal' });
    const failed = record({ state: 'failed', endedAt: '2025-01-01T12:01:00.000Z', endCause: 'rejected' });
    for (const r of [ringing, answered, ended, failed]) await store.create(r, 'call.offered', {});

    const before = Date.now();
    assert.equal(await store.closeOrphans('restart'), 2);
    for (const r of [ringing, answered]) {
      const got = await store.get(r.id);
      assert.equal(got?.state, 'ended');
      assert.equal(got?.endCause, 'restart');
      assert.ok(got?.endedAt && Date.parse(got.endedAt) >= before - 1000, `ended_at set: ${String(got?.endedAt)}`);
      const events = await store.events(r.id);
      assert.deepEqual(events.at(-1)?.type, 'call.ended');
      assert.deepEqual(events.at(-1)?.data, { cause: 'restart' });
    }
    assert.equal((await store.get(answered.id))?.answeredAt, answered.answeredAt);
    assert.deepEqual(await store.get(ended.id), ended);
    assert.deepEqual(await store.get(failed.id), failed);
    assert.deepEqual((await store.events(ended.id)).map((e) => e.type), ['call.offered']);
    assert.equal(await store.closeOrphans('restart'), 0, 'nothing left to close');
  });

  it('keeps calls and events across close and reopen, without re-running migrations', async () => {
    db = await Db.open(file);
    let store = new CallStore(db);
    const r = record();
    await store.create(r, 'call.offered', { trunk: 'pbx-1' });
    await store.update(r.id, { state: 'answered' }, 'call.answered', {});
    await db.close();

    db = await Db.open(file);
    store = new CallStore(db);
    assert.deepEqual(await store.get(r.id), { ...r, state: 'answered' });
    assert.deepEqual((await store.events(r.id)).map((e) => e.type), ['call.offered', 'call.answered']);
    const v = await db.get<{ user_version: number }>('PRAGMA user_version');
    assert.equal(v?.user_version, MIGRATIONS.length);
  });

  it('refuses a database at a newer schema version with DB_MIGRATION_FAILED and leaves it untouched', async () => {
    db = await Db.open(file);
    await db.close();
    db = undefined;
    const newer = MIGRATIONS.length + 1;
    await rawExec(file, `PRAGMA user_version = ${newer}`);
    await assert.rejects(Db.open(file), (e: unknown) => {
      assert.ok(e instanceof CcedgeError);
      assert.equal(e.code, 'DB_MIGRATION_FAILED');
      assert.match(e.message, new RegExp(`version ${newer}`));
      return true;
    });
    // Still at the newer version: nothing was downgraded or re-migrated.
    await new Promise<void>((resolve, reject) => {
      const raw = new sqlite3.Database(file, (err) => {
        if (err) return reject(err);
        raw.get('PRAGMA user_version', (e, row: { user_version: number }) => {
          raw.close();
          if (e) return reject(e);
          try {
            assert.equal(row.user_version, newer);
            resolve();
          } catch (a) {
            reject(a as Error);
          }
        });
      });
    });
  });

  it('refuses writes after close with DB_FAILED', async () => {
    db = await Db.open(file);
    const store = new CallStore(db);
    await db.close();
    await assert.rejects(store.create(record(), 'call.offered', {}), (e: unknown) => e instanceof CcedgeError && e.code === 'DB_FAILED');
  });
});
