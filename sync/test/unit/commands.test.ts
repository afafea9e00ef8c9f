import assert from 'node:assert/strict';
import path from 'node:path';
import { z } from 'zod';
import { Commands } from '../../commands';
import { ConfigSync } from '../../config-sync';
import { Outbox } from '../../outbox';
import { Policy } from '../../policy';
import { openSyncDb, tempDir } from '../helpers/db';

type Db = Awaited<ReturnType<typeof openSyncDb>>;

describe('sync/commands and config push (no broker)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let db: Db;
  beforeEach(async () => {
    tmp = tempDir();
    db = await openSyncDb(path.join(tmp.dir, 'ccedge.db'));
  });
  afterEach(async () => {
    await db.close();
    tmp.cleanup();
  });

  it('validates with zod, runs once per id, returns the stored result for a repeated id', async () => {
    const cmds = new Commands(db);
    let runs = 0;
    cmds.register('queue.pause', z.object({ queue: z.string().min(1), paused: z.boolean() }).strict(), async (args) => {
      runs++;
      return { queue: args.queue, paused: args.paused, run: runs };
    });
    const first = await cmds.handle('queue.pause', JSON.stringify({ id: 'a1', queue: 'support', paused: true }));
    assert.deepEqual(first, { id: 'a1', ok: true, result: { queue: 'support', paused: true, run: 1 } });
    const again = await cmds.handle('queue.pause', JSON.stringify({ id: 'a1', queue: 'other', paused: false }));
    assert.deepEqual(again, first);
    const concurrent = await Promise.all([1, 2, 3].map(() => cmds.handle('queue.pause', JSON.stringify({ id: 'a2', queue: 's', paused: false }))));
    assert.equal(runs, 2);
    assert.deepEqual(concurrent[0], concurrent[2]);
  });

  it('garbage, unknown and invalid commands get error results, never an exception', async () => {
    const cmds = new Commands(db);
    cmds.register('agent.setState', z.object({ agent: z.string(), state: z.enum(['ready', 'break']) }).strict(), () => undefined);
    cmds.register('boom', z.object({}), () => {
      throw Object.assign(new Error('nope'), { code: 'ACD_UNKNOWN_AGENT' });
    });
    assert.deepEqual(pick(await cmds.handle('agent.setState', Buffer.from([0xff, 0x00, 0x7b]))), { id: null, ok: false, code: 'CMD_MALFORMED' });
    assert.deepEqual(pick(await cmds.handle('agent.setState', '[1,2]')), { id: null, ok: false, code: 'CMD_MALFORMED' });
    assert.deepEqual(pick(await cmds.handle('agent.setState', '{"id":"a/b#"}')), { id: null, ok: false, code: 'CMD_MALFORMED' });
    assert.deepEqual(pick(await cmds.handle('nope', '{"id":"u1"}')), { id: 'u1', ok: false, code: 'CMD_UNKNOWN' });
    const bad = await cmds.handle('agent.setState', '{"id":"v1","agent":"alice","state":"asleep"}');
    assert.deepEqual(pick(bad), { id: 'v1', ok: false, code: 'CMD_INVALID_ARGS' });
    assert.match(bad.error ?? '', /state/);
    assert.deepEqual(pick(await cmds.handle('boom', '{"id":"b1"}')), { id: 'b1', ok: false, code: 'ACD_UNKNOWN_AGENT' });
    assert.deepEqual(await cmds.handle('agent.setState', '{"id":"v1","agent":"alice","state":"ready"}'), bad, 'stored error result for a repeated id');
    assert.deepEqual(await cmds.handle('agent.setState', '{"id":"ok1","agent":"alice","state":"ready"}'), { id: 'ok1', ok: true });
  });

  it('stored results survive a restart and are pruned by age', async () => {
    let now = new Date('2025-01-01T00:00:00Z');
    const cmds = new Commands(db, { now: () => now });
    let runs = 0;
    cmds.register('diagnostics', z.object({}), () => ++runs);
    await cmds.handle('diagnostics', '{"id":"d1"}');
    const reopened = new Commands(db, { now: () => now });
    reopened.register('diagnostics', z.object({}), () => ++runs);
    assert.deepEqual(await reopened.handle('diagnostics', '{"id":"d1"}'), { id: 'd1', ok: true, result: 1 });
    now = new Date('2025-02-01T00:00:00Z');
    assert.equal(await reopened.prune(7 * 86_400), 1);
  });

  it('config/desired: validate, apply atomically, store version, report; bad and older versions', async () => {
    const applied: Array<{ v: number; value: unknown }> = [];
    const outbox = new Outbox(db, { deviceId: 'd', bootId: 'b', policy: new Policy() });
    const cs = new ConfigSync<{ queues: string[] }>(
      db,
      {
        validate: (c) => {
          const r = z.object({ queues: z.array(z.string()).min(1) }).strict().safeParse(c);
          return r.success ? { ok: true, value: r.data } : { ok: false, error: r.error.issues.map((i) => i.message).join('; ') };
        },
        apply: (value, v) => void applied.push({ v, value }),
      },
      { outbox },
    );
    const good = await cs.onMessage(JSON.stringify({ version: 3, config: { queues: ['support'] } }));
    assert.equal(good?.version, 3);
    assert.ok(good?.appliedAt && !good.error);
    const bad = await cs.onMessage(JSON.stringify({ version: 4, config: { queues: [] } }));
    assert.equal(bad?.version, 4);
    assert.ok(bad?.error);
    assert.equal(await cs.onMessage(JSON.stringify({ version: 2, config: { queues: ['old'] } })), undefined, 'older than applied: ignored');
    assert.deepEqual(await cs.onMessage(JSON.stringify({ version: 3, config: { queues: ['support'] } })), good, 'same version: not applied twice');
    assert.deepEqual((await cs.onMessage('not json'))?.error, undefined);
    assert.deepEqual(applied, [{ v: 3, value: { queues: ['support'] } }]);
    assert.deepEqual((await cs.applied())?.config, { queues: ['support'] });
    const events = (await outbox.pending(10)).map((r) => JSON.parse(r.payload));
    assert.deepEqual(events.map((e) => [e.type, e.version]), [['config.applied', 3]]);
  });
});

function pick(r: { id: string | null; ok: boolean; code?: string }): { id: string | null; ok: boolean; code?: string } {
  return { id: r.id, ok: r.ok, code: r.code };
}
