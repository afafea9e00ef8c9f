import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { CallbackScheduler, type CallbackRequest } from '../../callbacks/callback-scheduler';
import { CallbackStore, type CallbackRecord } from '../../callbacks/callback-store';
import type { CallEndCause, DeskCall } from '../../calls/contract';
import { configSchema, type Config } from '../../config/schema';
import type { Logger } from '../../logging';
import { Db } from '../../store/db';

/*
 * The callback scheduler and its store on the real sqlite Db (a temp directory). The calls it
 * queues are DeskCalls (calls/contract.ts, an interface of ours): here a stand-in whose attempt
 * the test ends, writing to the store what a CallbackCall writes (attempts, state).
 */

const silent: Logger = pino({ level: 'silent' });

class FakeCall extends EventEmitter implements DeskCall {
  readonly log = silent;
  readonly codec = 'PCMU' as const;
  readonly agent = undefined;
  readonly isHeld = false;
  readonly isMuted = false;
  closedWith: CallEndCause | undefined;

  constructor(readonly callback: CallbackRecord) {
    super();
  }
  get id(): string {
    return this.callback.id;
  }
  get caller(): { number: string; name: string | null } {
    return { number: this.callback.number, name: this.callback.callerName };
  }
  get closed(): boolean {
    return this.closedWith !== undefined;
  }
  attachAgent(): void {}
  setHold(): void {}
  setMute(): void {}
  sendDtmf(): boolean {
    return false;
  }
  record(): void {}
  close(cause: CallEndCause): Promise<void> {
    if (this.closedWith) return Promise.resolve();
    this.closedWith = cause;
    this.emit('closed', cause);
    return Promise.resolve();
  }
}

function config(callbacks: Record<string, unknown> = {}, trunks: unknown[] = [{ name: 'pbx', allow: ['127.0.0.1/32'], outbound: { host: '127.0.0.1' } }]): Config {
  return configSchema.parse({ site: { deviceId: 'unit' }, trunks, callbacks: { retryAfterS: 1, maxAttempts: 2, ...callbacks } });
}

async function until(what: string, pred: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`not met: ${what}`);
}

function req(over: Partial<CallbackRequest> = {}): CallbackRequest {
  return { number: '5550100', name: 'Ada', queue: 'support', queuedAt: Date.parse('2026-01-02T03:04:05.000Z'), originCallId: 'origin-1', ...over };
}

describe('CallbackScheduler with the sqlite store', function () {
  this.timeout(20_000);
  let dir: string;
  let db: Db;
  let store: CallbackStore;
  let schedulers: CallbackScheduler[] = [];
  let made: FakeCall[];
  let enqueued: Array<{ call: DeskCall; queue: string; queuedAt: number }>;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ccedge-callbacks-'));
    db = await Db.open(join(dir, 'ccedge.db'));
    store = new CallbackStore(db);
    made = [];
    enqueued = [];
  });
  afterEach(async () => {
    for (const s of schedulers) await s.close();
    schedulers = [];
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function scheduler(cfg: Config = config(), onStore: CallbackStore = store): CallbackScheduler {
    const s = new CallbackScheduler({
      config: cfg,
      store: onStore,
      enqueue: (call, queue, queuedAt) => void enqueued.push({ call, queue, queuedAt }),
      makeCall: (record) => {
        const c = new FakeCall(record);
        made.push(c);
        return c;
      },
      log: silent,
    });
    schedulers.push(s);
    return s;
  }

  /** What a CallbackCall does on an attempt that did not reach the caller. */
  async function attemptFailed(call: FakeCall, cause: CallEndCause = 'callback-failed'): Promise<void> {
    const now = await store.get(call.id);
    assert.ok(now);
    await store.update(call.id, { attempts: now.attempts + 1, state: 'failed', lastError: cause });
    await call.close(cause);
  }

  it('uses callbacks.trunk, else the first trunk with an outbound address; without one it is disabled', () => {
    const trunks = [
      { name: 'in-only', allow: ['127.0.0.1/32'] },
      { name: 'out', allow: ['127.0.0.2/32'], outbound: { host: '127.0.0.2' } },
      { name: 'out2', allow: ['127.0.0.3/32'], outbound: { host: '127.0.0.3' } },
    ];
    assert.equal(scheduler(config({}, trunks)).trunk, 'out');
    assert.equal(scheduler(config({ trunk: 'out2' }, trunks)).trunk, 'out2');
    assert.throws(() => config({ trunk: 'in-only' }, trunks), /no outbound address for callbacks/, 'config refuses a callbacks.trunk that cannot dial');
    const off = scheduler(config({}, [trunks[0]]));
    assert.equal(off.enabled, false);
    assert.equal(off.trunk, undefined);
    assert.equal(off.key, '9');
    assert.equal(scheduler(config({ key: '#' })).key, '#');
  });

  it('request() stores a pending record and queues its call with the caller\'s original place', async () => {
    const s = scheduler();
    const record = await s.request(req());
    assert.equal(record.state, 'pending');
    assert.equal(record.attempts, 0);
    assert.equal(record.queuedAt, '2026-01-02T03:04:05.000Z');
    assert.deepEqual(await store.get(record.id), record, 'the store holds exactly what was returned');
    assert.equal(made.length, 1);
    assert.equal(made[0].id, record.id);
    assert.equal(enqueued.length, 1);
    assert.equal(enqueued[0].call, made[0]);
    assert.equal(enqueued[0].queue, 'support');
    assert.equal(enqueued[0].queuedAt, Date.parse('2026-01-02T03:04:05.000Z'));
  });

  it('an attempt that did not reach the caller is owed again (pending) and queued again after retryAfterS', async () => {
    const s = scheduler();
    const record = await s.request(req());
    await attemptFailed(made[0]);
    await until('the record is pending again', async () => (await store.get(record.id))?.state === 'pending');
    await until('a second attempt is queued', () => enqueued.length === 2);
    assert.equal(made[1].id, record.id);
    assert.equal(made[1].callback.attempts, 1, 'the retry carries the stored attempt count');
    assert.equal(enqueued[1].queuedAt, Date.parse(record.queuedAt), 'still the original place');
  });

  it('gives up after maxAttempts: failed, with the count and last cause; no further attempt', async () => {
    const s = scheduler(config({ maxAttempts: 1 }));
    const record = await s.request(req());
    await attemptFailed(made[0]);
    await until('the record failed for good', async () => (await store.get(record.id))?.lastError?.startsWith('gave up') === true);
    const now = await store.get(record.id);
    assert.equal(now?.state, 'failed');
    assert.equal(now?.lastError, 'gave up after 1 attempts (callback-failed)');
    assert.deepEqual(await store.outstanding(), []);
    assert.equal(enqueued.length, 1);
  });

  it('a callback that was done is not retried', async () => {
    const s = scheduler();
    const record = await s.request(req());
    await store.update(record.id, { state: 'done', completedAt: new Date().toISOString(), attempts: 1 });
    await made[0].close('caller-hangup');
    // Past retryAfterS: a retry would have set it pending and queued it again by now.
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal((await store.get(record.id))?.state, 'done');
    assert.equal(enqueued.length, 1);
  });

  it('close() ends live calls with shutdown and they stay owed; a request after close is stored but not queued', async () => {
    const s = scheduler();
    const record = await s.request(req());
    await s.close();
    assert.equal(made[0].closedWith, 'shutdown');
    assert.equal((await store.get(record.id))?.state, 'pending');
    const late = await s.request(req({ number: '5550199' }));
    assert.equal((await store.get(late.id))?.state, 'pending');
    assert.equal(made.length, 1);
    assert.deepEqual((await store.outstanding()).map((r) => r.id).sort(), [record.id, late.id].sort());
  });

  it('close() cancels a retry that was waiting', async () => {
    const s = scheduler();
    const record = await s.request(req());
    await attemptFailed(made[0]);
    await until('the record is pending again', async () => (await store.get(record.id))?.state === 'pending');
    await s.close();
    // Past retryAfterS: had the timer survived, a second attempt would be queued by now.
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal(enqueued.length, 1);
  });

  it('restore() after a restart queues every owed callback (pending, dialing, connected) in queue order, not done or failed ones', async () => {
    const base = { number: '1', callerName: null, queue: 'support', originCallId: null, createdAt: new Date().toISOString(), attempts: 0, lastError: null, agent: null, completedAt: null };
    const rows: CallbackRecord[] = [
      { ...base, id: 'late', queuedAt: '2026-01-01T10:05:00.000Z', state: 'pending' },
      { ...base, id: 'dialing', queuedAt: '2026-01-01T10:01:00.000Z', state: 'dialing', attempts: 1 },
      { ...base, id: 'connected', queuedAt: '2026-01-01T10:03:00.000Z', state: 'connected', attempts: 1, agent: 'alice' },
      { ...base, id: 'done', queuedAt: '2026-01-01T10:00:00.000Z', state: 'done', attempts: 1 },
      { ...base, id: 'failed', queuedAt: '2026-01-01T10:02:00.000Z', state: 'failed', attempts: 3 },
    ];
    for (const r of rows) await store.create(r);
    // The restart: the database file is closed and opened again.
    await db.close();
    db = await Db.open(join(dir, 'ccedge.db'));
    store = new CallbackStore(db);
    const s = scheduler(config(), store);
    assert.equal(await s.restore(), 3);
    assert.deepEqual(enqueued.map((e) => e.call.id), ['dialing', 'connected', 'late']);
    assert.deepEqual(enqueued.map((e) => e.queuedAt), [Date.parse('2026-01-01T10:01:00.000Z'), Date.parse('2026-01-01T10:03:00.000Z'), Date.parse('2026-01-01T10:05:00.000Z')]);
    for (const id of ['dialing', 'connected', 'late']) assert.equal((await store.get(id))?.state, 'pending');
    assert.equal((await store.get('done'))?.state, 'done');
    assert.equal((await store.get('failed'))?.state, 'failed');
    assert.equal((await store.get('dialing'))?.attempts, 1, 'attempts survive the restart');
  });
});

describe('CallbackStore', () => {
  let dir: string;
  let db: Db;
  let store: CallbackStore;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ccedge-callback-store-'));
    db = await Db.open(join(dir, 'ccedge.db'));
    store = new CallbackStore(db);
  });
  after(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const record = (id: string, createdAt: string): CallbackRecord => ({
    id, number: '5550100', callerName: 'Ada', queue: 'support', originCallId: null, queuedAt: createdAt, createdAt,
    state: 'pending', attempts: 0, lastError: null, agent: null, completedAt: null,
  });

  it('update() changes only the fields given (undefined ones are left alone); no fields is no write', async () => {
    await store.create(record('u1', '2026-01-01T00:00:00.000Z'));
    await store.update('u1', { state: 'dialing', attempts: 1, agent: undefined });
    await store.update('u1', {});
    await store.update('u1', { agent: 'alice', lastError: 'x' });
    const r = await store.get('u1');
    assert.deepEqual(r, { ...record('u1', '2026-01-01T00:00:00.000Z'), state: 'dialing', attempts: 1, agent: 'alice', lastError: 'x' });
    assert.equal(await store.get('nope'), undefined);
  });

  it('list() is newest first and bounded by limit', async () => {
    await store.create(record('l1', '2026-02-01T00:00:00.000Z'));
    await store.create(record('l2', '2026-03-01T00:00:00.000Z'));
    assert.deepEqual((await store.list(2)).map((r) => r.id), ['l2', 'l1']);
    assert.equal((await store.list()).length, 3);
  });
});
