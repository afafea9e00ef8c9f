import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigSync, versionAtEnds } from '../../config-sync';
import type { SyncLog } from '../../sql';
import { openSyncDb, tempDir } from '../helpers/db';

type Db = Awaited<ReturnType<typeof openSyncDb>>;

/** A SyncLog that keeps its warn lines. */
function recordingLog(): SyncLog & { warns: Array<{ obj: Record<string, unknown>; msg?: string }> } {
  const warns: Array<{ obj: Record<string, unknown>; msg?: string }> = [];
  return { warns, debug() {}, info() {}, error() {}, warn: (obj, msg) => void warns.push({ obj: obj as Record<string, unknown>, msg }) };
}

describe('sync/config push: hostile payloads (no broker)', () => {
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

  function configSync(log: SyncLog, maxBytes = 4096) {
    let validated = 0;
    const cs = new ConfigSync<unknown>(
      db,
      {
        validate: (c) => {
          validated++;
          return typeof c === 'object' && c !== null && 'bad' in c ? { ok: false, error: 'bad: refused' } : { ok: true, value: c };
        },
        apply: () => undefined,
      },
      { log, maxBytes },
    );
    return { cs, validated: () => validated };
  }

  it('a payload over maxBytes is refused unread with CONFIG_TOO_LARGE, logged once per push', async () => {
    const log = recordingLog();
    const { cs, validated } = configSync(log);
    // Not JSON past its head: proof that it is never parsed.
    const huge = Buffer.from(`{"version":7,"config":{"queues":[${'{"name":"q"},'.repeat(1000)}`);
    const r = await cs.onMessage(huge);
    assert.deepEqual(r, { version: 7, error: `config/desired is ${huge.length} bytes, more than the 4096 allowed (sync.maxConfigBytes)`, code: 'CONFIG_TOO_LARGE' });
    assert.deepEqual(await cs.onMessage(huge), r, 'redelivered: the same report');
    assert.equal(log.warns.length, 1, 'logged once');
    assert.equal(log.warns[0].obj.code, 'CONFIG_TOO_LARGE');
    assert.equal(validated(), 0);
    const ok = await cs.onMessage(JSON.stringify({ version: 8, config: { queues: [] } }));
    assert.ok(ok?.appliedAt, 'a later push within the bound applies');
  });

  it('a refused schema check is reported with CONFIG_INVALID, logged and validated once per push', async () => {
    const log = recordingLog();
    const { cs, validated } = configSync(log);
    const push = JSON.stringify({ version: 3, config: { bad: true } });
    const r = await cs.onMessage(push);
    assert.deepEqual(r, { version: 3, error: 'bad: refused', code: 'CONFIG_INVALID' });
    assert.deepEqual(await cs.onMessage(push), r);
    assert.equal(validated(), 1);
    assert.equal(log.warns.length, 1);
    const malformed = await cs.onMessage('{"version":4,"config":');
    assert.equal(malformed?.code, 'CONFIG_INVALID');
    assert.match(malformed?.error ?? '', /^malformed config\/desired/);
  });

  it('versionAtEnds reads the top-level version at the start or the end only', () => {
    assert.equal(versionAtEnds('{"version":12,"config":{}}'), 12);
    assert.equal(versionAtEnds(' { "version" : 5 , "config": {"a":1}}'), 5);
    assert.equal(versionAtEnds(`{"config":{"x":"${'y'.repeat(200)}"},"version":9}`), 9);
    assert.equal(versionAtEnds(`{"config":{"x":{"version":9}}}`), undefined, 'a nested version is not the top-level one');
    assert.equal(versionAtEnds(`{"config":"${'y'.repeat(200)}"}`), undefined);
    assert.equal(versionAtEnds('{"version":0,"config":{}}'), undefined);
  });
});
