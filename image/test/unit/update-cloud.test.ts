import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Commands } from '../../../sync/commands';
import { Db } from '../../../gateway/store/db';
import { buildBundle, generateSigningKey } from '../../bundle';
import { loadUpdateSettings } from '../../settings';
import { Slots } from '../../slots';
import { registerUpdateCommands, type UpdateCommands } from '../../update-cloud';
import { planRollout, FailureBudget } from '../../../scripts/fleet-console/rollout';
import type { DeviceInfo } from '../../../scripts/fleet-console/fleet-console';
import { scratchDir } from '../helpers';

/** A device's slots with a factory version, its database, and the real command dispatcher. */
async function device(): Promise<{
  dir: string;
  slots: Slots;
  commands: Commands;
  db: Db;
  published: Array<{ suffix: string; payload: Record<string, unknown> }>;
  restarts: number[];
  updates: UpdateCommands;
  signing: string;
}> {
  const dir = scratchDir('cloud');
  const keys = generateSigningKey(path.join(dir, 'signing'), 'release');
  mkdirSync(path.join(dir, 'trusted'));
  writeFileSync(path.join(dir, 'trusted', 'release.pub'), readFileSync(keys.publicKey));
  generateSigningKey(path.join(dir, 'rogue'), 'rogue');
  const settings = loadUpdateSettings({ CCEDGE_UPDATE_CONF: '/nonexistent' }, { root: path.join(dir, 'opt'), keysDir: path.join(dir, 'trusted') });
  const slots = new Slots(settings);
  writeFileSync(path.join(dir, 'factory'), '#!/bin/sh\necho factory\n', { mode: 0o755 });
  slots.init(path.join(dir, 'factory'), { version: '1.0.0' });
  mkdirSync(path.join(dir, 'data'));
  const db = await Db.open(path.join(dir, 'data', 'ccedge.db'));
  const commands = new Commands(db);
  const published: Array<{ suffix: string; payload: Record<string, unknown> }> = [];
  const restarts: number[] = [];
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const updates = registerUpdateCommands(commands, {
    dataDir: path.join(dir, 'data'),
    version: '1.0.0',
    settings,
    log,
    publish: (suffix, payload) => void published.push({ suffix, payload: payload as Record<string, unknown> }),
    restart: () => restarts.push(Date.now()),
    restartDelayMs: 10,
    statusIntervalMs: 50,
  });
  return { dir, slots, commands, db, published, restarts, updates, signing: keys.privateKey };
}

function bundle(dir: string, key: string, version: string, name = version): string {
  const payload = path.join(dir, `payload-${name}`);
  // Big enough for many chunks and download progress steps.
  writeFileSync(payload, `#!/bin/sh\necho ${version}\n#${'x'.repeat(300_000)}\n`, { mode: 0o755 });
  const out = path.join(dir, `${name}.bundle`);
  buildBundle({ out, version, compatible: 'ccedge-appliance-linux-x64', signingKey: key, payloads: { ccedge: payload }, entry: 'ccedge' });
  return out;
}

describe('image: cloud-driven update (cmd/update.apply, update.chunk) through the real command dispatcher', function () {
  this.timeout(60_000);
  let server: Server;
  let base: string;
  const files = new Map<string, string>();

  before(async () => {
    server = createServer((req, res) => {
      const f = files.get(req.url ?? '');
      if (!f) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': String(statSync(f).size) });
      res.end(readFileSync(f));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('downloads from a URL, applies to the inactive slot with progress events, replies and restarts; update/status reports the trial', async () => {
    const d = await device();
    try {
      const b = bundle(d.dir, d.signing, '1.1.0');
      files.set('/b/1.1.0', b);
      const sha256 = (await import('node:crypto')).createHash('sha256').update(readFileSync(b)).digest('hex');
      const id = randomUUID();
      const r = await d.commands.handle('update.apply', JSON.stringify({ id, url: `${base}/b/1.1.0`, version: '1.1.0', sha256, size: statSync(b).size }));
      assert.deepEqual(r, { id, ok: true, result: { version: '1.1.0', slot: 'b', from: '1.0.0', state: 'restarting' } });
      const phases = d.published.filter((p) => p.suffix === 'update/progress').map((p) => `${String(p.payload.phase)}:${String(p.payload.percent)}`);
      assert.ok(phases.includes('download:100'), phases.join(' '));
      assert.ok(phases.includes('write:100'), phases.join(' '));
      assert.ok(phases.includes('db-backup:0'), phases.join(' '));
      assert.equal(phases[phases.length - 1], 'restart:100');
      assert.equal(d.slots.current(), 'b');
      assert.equal(d.slots.state().trial?.version, '1.1.0');
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(d.restarts.length, 1, 'asked to restart into the new slot');
      const status = d.published.filter((p) => p.suffix === 'update/status').pop();
      assert.deepEqual(status?.payload.trial, { version: '1.1.0', boots: 0 });
      // The same command id again: the stored result, nothing applied twice.
      const again = await d.commands.handle('update.apply', JSON.stringify({ id, url: `${base}/b/1.1.0`, version: '1.1.0' }));
      assert.deepEqual(again, r);
    } finally {
      d.updates.close();
      await d.db.close();
    }
  });

  it('assembles a bundle sent in chunks over MQTT commands, then applies it', async () => {
    const d = await device();
    try {
      const data = readFileSync(bundle(d.dir, d.signing, '1.2.0'));
      const size = 45 * 1024;
      const count = Math.ceil(data.length / size);
      assert.ok(count > 3);
      for (let i = 0; i < count; i++) {
        const chunk = JSON.stringify({ id: `c-${i}`, transfer: 't1', index: i, count, data: data.subarray(i * size, (i + 1) * size).toString('base64') });
        assert.ok(Buffer.byteLength(chunk) < 64 * 1024, 'fits the 64 KiB command limit');
        const r = await d.commands.handle('update.chunk', chunk);
        assert.equal(r.ok, true, r.error);
        if (i === 1) {
          // A resent chunk (new id) is acknowledged and ignored; one out of order is refused.
          assert.equal((await d.commands.handle('update.chunk', chunk.replace('"c-1"', '"c-1b"'))).ok, true);
          const skip = await d.commands.handle('update.chunk', JSON.stringify({ id: 'c-x', transfer: 't1', index: 5, count, data: 'AA==' }));
          assert.equal(skip.code, 'UPDATE_DOWNLOAD_FAILED');
        }
      }
      const r = await d.commands.handle('update.apply', JSON.stringify({ id: 'apply-1', transfer: 't1', version: '1.2.0' }));
      assert.equal(r.ok, true, r.error);
      assert.equal(d.slots.state().trial?.version, '1.2.0');
    } finally {
      d.updates.close();
      await d.db.close();
    }
  });

  it('refuses with the verification code: untrusted key, damaged download, version mismatch', async () => {
    const d = await device();
    try {
      const rogue = path.join(d.dir, 'rogue', 'rogue.key');
      files.set('/rogue', bundle(d.dir, rogue, '1.1.0', 'rogue'));
      files.set('/good', bundle(d.dir, d.signing, '1.1.0', 'good'));
      let r = await d.commands.handle('update.apply', JSON.stringify({ id: 'x1', url: `${base}/rogue`, version: '1.1.0' }));
      assert.deepEqual([r.ok, r.code], [false, 'UPDATE_UNTRUSTED_KEY']);
      r = await d.commands.handle('update.apply', JSON.stringify({ id: 'x2', url: `${base}/good`, version: '1.1.0', sha256: '0'.repeat(64) }));
      assert.deepEqual([r.ok, r.code], [false, 'UPDATE_DOWNLOAD_FAILED']);
      r = await d.commands.handle('update.apply', JSON.stringify({ id: 'x3', url: `${base}/good`, version: '1.3.0' }));
      assert.deepEqual([r.ok, r.code], [false, 'UPDATE_APPLY_FAILED']);
      r = await d.commands.handle('update.apply', JSON.stringify({ id: 'x4', url: `${base}/missing`, version: '1.1.0' }));
      assert.deepEqual([r.ok, r.code], [false, 'UPDATE_DOWNLOAD_FAILED']);
      assert.equal(d.slots.current(), 'a');
      assert.equal(d.slots.state().trial, undefined);
      assert.equal(d.restarts.length, 0);
    } finally {
      d.updates.close();
      await d.db.close();
    }
  });
});

describe('fleet console: staged rollout plan and failure budget', () => {
  const fleet = (n: number, version = '1.0.0'): DeviceInfo[] => Array.from({ length: n }, (_, i) => ({ site: `s${i % 7}`, device: `d${i}`, online: i % 10 !== 9, version }));

  it('takes a stable percentage of the online devices not yet on the version; more percent extends the same cohort', () => {
    const devices = [...fleet(100), { site: 's1', device: 'done', online: true, version: '1.1.0' }];
    const p10 = planRollout(devices, '1.1.0', 10);
    const p50 = planRollout(devices, '1.1.0', 50);
    assert.equal(p10.offline.length, 10);
    assert.equal(p10.upToDate.length, 1);
    assert.equal(p10.cohort.length, 9);
    assert.equal(p50.cohort.length, 45);
    for (const d of p10.cohort) assert.ok(p50.cohort.includes(d));
    assert.deepEqual(planRollout(devices, '1.1.0', 10).cohort, p10.cohort);
    assert.throws(() => planRollout(devices, '1.1.0', 0));
  });

  it('aborts once failures exceed the allowed rate', () => {
    const b = new FailureBudget(0.2);
    for (const ok of [true, true, true, true, false]) b.record(ok);
    assert.equal(b.exceeded(), false, '1 of 5 is 20 %: allowed');
    b.record(false);
    assert.equal(b.exceeded(), true, '2 of 6 is above 20 %');
  });
});
