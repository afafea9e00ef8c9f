import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { SyncService } from '../../index';
import { Cloud, waitFor } from '../helpers/cloud';
import { openSyncDb, tempDir } from '../helpers/db';
import { Mosquitto } from '../helpers/mosquitto';

const PREFIX = 'ccedge/v1/site-t/dev-1/';

describe('sync: daemon kill -9 (real mosquitto, child process)', function () {
  this.timeout(60_000);
  let tmp: ReturnType<typeof tempDir>;
  let broker: Mosquitto;
  let cloud: Cloud;

  beforeEach(async () => {
    tmp = tempDir('ccedge-sync-kill-');
    broker = await Mosquitto.start(tmp.dir);
    cloud = await Cloud.connect(broker.port, [`${PREFIX}#`]);
  });
  afterEach(async () => {
    await cloud.close().catch(() => undefined);
    await broker.stop();
    tmp.cleanup();
  });

  it('kill -9 mid-drain with 1,000 events pending: LWT seen; after restart every seq arrives, in order', async () => {
    const file = path.join(tmp.dir, 'ccedge.db');
    const child = spawn(process.execPath, [path.join(__dirname, '../helpers/device-process.js'), file, String(broker.port), '1000', '300'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await waitFor(() => out.includes('"appended":1000'), 30_000, 'child appended 1000');
      await cloud.until(() => cloud.on('/events').length >= 100, 20_000, 'first events');
      child.kill('SIGKILL');
      await exited;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const before = new Set(cloud.json<{ seq: number }>('/events').map((e) => e.seq)).size;
    assert.ok(before < 1000, `the kill left events pending (${before} delivered)`);
    await cloud.until(() => cloud.json('/status').some((s) => s.online === false), 20_000, 'LWT after kill -9');

    const db = await openSyncDb(file);
    const sync = new SyncService({
      db,
      siteId: 'site-t',
      deviceId: 'dev-1',
      version: '0.1.0-test',
      bootId: randomUUID(),
      startedAt: new Date(),
      mqtt: { url: `mqtt://127.0.0.1:${broker.port}`, drainRatePerS: 5000, backoff: { minMs: 50, maxMs: 400 } },
    });
    try {
      const pending = (await sync.status()).outboxDepth;
      assert.ok(pending > 0 && pending <= 1000 - before + 100, `pending after kill: ${pending}`);
      await sync.start();
      await waitFor(async () => (await sync.status()).outboxDepth === 0, 20_000, 'outbox drained');
      await cloud.until(() => new Set(cloud.json<{ seq: number }>('/events').map((e) => e.seq)).size >= 1000, 10_000, 'all 1000');
      const firsts: number[] = [];
      const seen = new Set<number>();
      for (const e of cloud.json<{ seq: number }>('/events')) if (!seen.has(e.seq)) (seen.add(e.seq), firsts.push(e.seq));
      assert.deepEqual(firsts, Array.from({ length: 1000 }, (_, i) => i + 1), 'deduplicated on seq: each once, in order');
      const dups = cloud.on('/events').length - 1000;
      assert.ok(dups <= 100, `at most the in-flight window is sent twice (${dups})`);
    } finally {
      await sync.close();
      await db.close();
    }
  });
});
