import assert from 'node:assert/strict';
import path from 'node:path';
import { SyncError } from '../../errors';
import { CLOUD_EVENTS, isCloudEventType, type CloudEventType, type EventFieldKind } from '../../events';
import { Outbox } from '../../outbox';
import { DEFAULT_EVENT_FIELDS, Policy } from '../../policy';
import { Sender } from '../../sender';
import type { SyncLog } from '../../sql';
import { dbIsSqlDb, openSyncDb, tempDir } from '../helpers/db';

/** A value of the field's kind that survives the policy when the field is allowed. */
const SAMPLE: Record<EventFieldKind, string> = { plain: 'v', number: '+15551234567', text: 'typed by a person', local: 'kept on site' };
/** The catalogue as data (its literal type is one object type per event). */
const CATALOGUE: Readonly<Record<string, Readonly<Record<string, { readonly kind: EventFieldKind }>>>> = CLOUD_EVENTS;

describe('sync/events: the cloud event catalogue', () => {
  it('every catalogued type has a policy entry and every policy entry is catalogued', () => {
    assert.deepEqual(Object.keys(DEFAULT_EVENT_FIELDS).sort(), Object.keys(CLOUD_EVENTS).sort());
    assert.deepEqual(new Policy().eventTypes(), Object.keys(CLOUD_EVENTS).sort(), 'the policy in force knows exactly the catalogue');
    assert.ok(Object.keys(CLOUD_EVENTS).length >= 80, 'the catalogue holds the appliance\'s events');
  });

  it('each policy entry is its type\'s catalogued fields minus the local ones, with the same kinds', () => {
    for (const [type, fields] of Object.entries(CATALOGUE)) {
      const expected = Object.fromEntries(Object.entries(fields).flatMap(([field, f]) => (f.kind === 'local' ? [] : [[field, f.kind]])));
      assert.deepEqual({ ...DEFAULT_EVENT_FIELDS[type] }, expected, type);
      assert.ok(Object.isFrozen(DEFAULT_EVENT_FIELDS[type]), `${type}: the built-in allow-list cannot be edited at runtime`);
    }
  });

  it('with the default policy, a payload with every catalogued field leaves with plain and number fields only', () => {
    const p = new Policy();
    for (const [type, fields] of Object.entries(CATALOGUE)) {
      const data = Object.fromEntries(Object.entries(fields).map(([field, f]) => [field, SAMPLE[f.kind]]));
      const out = p.apply(type, data);
      for (const [field, f] of Object.entries(fields)) {
        if (f.kind === 'local' || f.kind === 'text') assert.ok(!(field in out), `${type}.${field} (${f.kind}) stays on site`);
        else assert.ok(field in out, `${type}.${field} (${f.kind}) leaves`);
      }
      assert.ok(!JSON.stringify(out).includes('5551234567'), `${type}: numbers leave masked`);
    }
  });

  it('isCloudEventType narrows untyped input', () => {
    assert.equal(isCloudEventType('call.offered'), true);
    assert.equal(isCloudEventType('call.offerd'), false);
    assert.equal(isCloudEventType('toString'), false, 'not fooled by Object.prototype');
    assert.equal(isCloudEventType(''), false);
  });
});

describe('sync/events: the outbox refuses an uncatalogued type', () => {
  let tmp: ReturnType<typeof tempDir>;
  let db: Awaited<ReturnType<typeof openSyncDb>>;
  beforeEach(async () => {
    tmp = tempDir();
    db = await openSyncDb(path.join(tmp.dir, 'ccedge.db'));
  });
  afterEach(async () => {
    await db.close();
    tmp.cleanup();
  });

  it('with a coded SyncError, writing nothing, counted, and logged once per type', async () => {
    const warned: object[] = [];
    const log: SyncLog = { debug() {}, info() {}, warn: (o) => warned.push(o), error() {} };
    const ob = new Outbox(dbIsSqlDb(db), { deviceId: 'dev-1', bootId: 'boot-1', policy: new Policy(), log });
    await ob.check();
    // What a cloud command or a JSON file could carry: the compiler cannot see it, so the outbox checks.
    const fromJson = JSON.parse('{"type":"call.offerd","data":{"callId":"c1"}}') as { type: CloudEventType; data: Record<string, unknown> };
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        db.transaction((tx) => ob.append(tx, fromJson.type, fromJson.data)),
        (e: unknown) => e instanceof SyncError && e.code === 'SYNC_EVENT_UNKNOWN' && e.message.includes('call.offerd'),
      );
    }
    assert.deepEqual(await ob.pending(10), [], 'no row, not even an empty event');
    assert.equal((await ob.stats()).lastSeq, 0, 'no seq was used');
    assert.equal(ob.refusedTotal, 3);
    assert.equal((await new Sender({ outbox: ob }).status()).refusedTotal, 3, 'GET /api/v1/sync shows the count');
    assert.deepEqual(warned, [{ code: 'SYNC_EVENT_UNKNOWN', type: 'call.offerd', refusedTotal: 1 }], 'logged once for the type, not per event');

    // A catalogued type still goes through after the refusals.
    assert.equal(await db.transaction((tx) => ob.append(tx, 'call.answered', { callId: 'c1' })), 1);
    const [row] = await ob.pending(10);
    assert.equal(JSON.parse(row.payload).type, 'call.answered');
  });
});
