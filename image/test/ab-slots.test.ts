import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Slots, backupDb, readUserVersion } from '../slots';
import { loadUpdateSettings } from '../settings';
import { binaryWithVersion, nextVersions, cleanEnv, copyBinary, ensureBinary, eventually, freePort, run, scratchDir, sipOptions, spawnDaemon, type BinDaemon, type Ran } from './helpers';

interface Status {
  current: string;
  committed: string;
  slots: Record<string, { version: string }>;
  trial?: { version: string; boots: number };
  last?: { outcome: string; version: string; from: string; reason?: string; message?: string };
}

describe('image: A/B slots — apply, commit, automatic rollback', function () {
  this.timeout(180_000);
  const v = nextVersions();
  let dir: string;
  let tool: string;
  let env: Record<string, string>;
  let sup: BinDaemon;
  let sipPort: number;
  let httpPort: number;
  const cli = (args: string[]): Promise<Ran> => run(tool, args, { cwd: dir, env });
  const status = async (): Promise<Status> => {
    const r = await cli(['update', 'status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Status;
  };
  const health = async (): Promise<{ version: string; pid: number } | undefined> =>
    fetch(`http://127.0.0.1:${httpPort}/healthz`).then(
      (r) => (r.ok ? (r.json() as Promise<{ version: string; pid: number }>) : undefined),
      () => undefined,
    );

  before(async () => {
    const [cur, next] = await Promise.all([ensureBinary(), binaryWithVersion(v.next)]);
    dir = scratchDir('ab');
    // The operator's tool (any ccedge binary) and the factory binary in slot a.
    tool = copyBinary(cur.file, dir, 'ccedge-tool');
    copyBinary(next.file, dir, 'ccedge-next');
    sipPort = await freePort();
    httpPort = await freePort();
    env = cleanEnv({
      CCEDGE_UPDATE_ROOT: path.join(dir, 'opt'),
      CCEDGE_UPDATE_KEYS: path.join(dir, 'trusted'),
      CCEDGE_UPDATE_CONF: '/nonexistent',
      CCEDGE_UPDATE_HEALTH_WINDOW_S: '3',
      CCEDGE_UPDATE_HEALTH_DEADLINE_S: '40',
      CCEDGE_UPDATE_MAX_BOOTS: '3',
      CCEDGE_DATA_DIR: path.join(dir, 'data'),
      CCEDGE_SIP_HOST: '127.0.0.1',
      CCEDGE_SIP_PORT: String(sipPort),
      CCEDGE_HTTP_HOST: '127.0.0.1',
      CCEDGE_HTTP_PORT: String(httpPort),
      CCEDGE_RTP_PORTS: '32000-32999',
      CCEDGE_ADMIN_TOKEN: 'image-test-admin-token-0123',
    });
    mkdirSync(path.join(dir, 'trusted'));
    for (const args of [
      ['update', 'keygen', '--out', path.join(dir, 'signing'), '--name', 'release'],
      ['update', 'init', '--binary', path.join(dir, 'ccedge-tool'), '--version', v.current],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 0, r.stderr);
    }
    copyFileSync(path.join(dir, 'signing', 'release.pub'), path.join(dir, 'trusted', 'release.pub'));
    // Runs the daemon as the systemd unit would: boot check from `committed`, ExecStart from `current`.
    sup = spawnDaemon(tool, ['update', 'supervise', '--restart-sec', '0.3'], { cwd: dir, env });
    const h = await eventually(health, 30_000);
    assert.equal(h.version, v.current);
  });

  after(async () => {
    const code = await sup?.stop();
    assert.equal(code, 0, sup.out().slice(-3000));
  });

  it('applies a signed bundle to the inactive slot, restarts into it on trial and commits after the health window', async () => {
    const bundle = path.join(dir, 'next.bundle');
    let r = await cli(['update', 'build', '--key', path.join(dir, 'signing', 'release.key'), '--version', v.next, '--payload', `ccedge=${path.join(dir, 'ccedge-next')}`, '--out', bundle]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['update', 'apply', bundle]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${v.next.replace(/\./g, '\\.')} is in slot b on trial`));
    assert.match(r.stdout, /asked the supervisor/);
    assert.ok(existsSync(path.join(dir, 'data', 'updates', `db-before-${v.next}.db`)), 'database copied before the switch');
    // The new version answers, still on trial, then commits itself.
    await eventually(async () => (await health())?.version === v.next, 30_000);
    assert.match(await sipOptions(sipPort), /^SIP\/2\.0 200/);
    const s = await eventually(async () => {
      const x = await status();
      return x.last?.outcome === 'committed' ? x : undefined;
    }, 30_000);
    assert.equal(s.current, 'b');
    assert.equal(s.committed, 'b');
    assert.equal(s.slots.b.version, v.next);
    assert.equal(s.last?.version, v.next);
    assert.equal(s.trial, undefined);
    assert.match(sup.out(), /"update committed: health window passed"/);
  });

  it('rolls back a version whose daemon exits at start, after the boot limit, and reports why', async () => {
    // A "daemon" that dies at once, every time (a real process, not a mock).
    const broken = path.join(dir, 'broken-ccedge');
    writeFileSync(broken, '#!/bin/sh\necho "broken build: cannot start" >&2\nexit 3\n', { mode: 0o755 });
    const bundle = path.join(dir, 'broken.bundle');
    let r = await cli(['update', 'build', '--key', path.join(dir, 'signing', 'release.key'), '--version', v.later, '--payload', `ccedge=${broken}`, '--out', bundle]);
    assert.equal(r.code, 0, r.stderr);
    const before = await health();
    r = await cli(['update', 'apply', bundle]);
    assert.equal(r.code, 0, r.stderr);
    const s = await eventually(async () => {
      const x = await status();
      return x.last?.outcome === 'rolled-back' ? x : undefined;
    }, 60_000);
    assert.equal(s.last?.reason, 'BOOT_LIMIT');
    assert.equal(s.last?.version, v.later);
    assert.equal(s.last?.from, v.next);
    assert.match(s.last?.message ?? '', /started 3 times without passing its health window/);
    assert.equal(s.current, 'b');
    assert.equal(s.committed, 'b');
    assert.equal(readlinkSync(path.join(dir, 'opt', 'current')), 'slots/b');
    // The previous version runs again (a new process) and answers.
    const after = await eventually(async () => {
      const h = await health();
      return h && h.pid !== before?.pid ? h : undefined;
    }, 30_000);
    assert.equal(after.version, v.next);
    assert.match(await sipOptions(sipPort), /^SIP\/2\.0 200/);
    assert.equal((sup.out().match(/broken build: cannot start/g) ?? []).length, 3, 'three starts of the broken version');
    const human = await cli(['update', 'status']);
    assert.match(human.stdout, /"outcome":"rolled-back".*"reason":"BOOT_LIMIT"/);
  });

  it('refuses to apply the version that is already installed', async () => {
    const r = await cli(['update', 'apply', path.join(dir, 'next.bundle')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ccedge: UPDATE_DOWNGRADE: version .* is already installed/);
  });
});

describe('image: rollback restores the database copy when the trial version migrated it', function () {
  this.timeout(30_000);
  it('sets the migrated database aside and puts back the copy from before the switch', async () => {
    const dir = scratchDir('dbrestore');
    const settings = loadUpdateSettings({ CCEDGE_UPDATE_CONF: '/nonexistent' }, { root: path.join(dir, 'opt'), keysDir: path.join(dir, 'keys') });
    const slots = new Slots(settings);
    writeFileSync(path.join(dir, 'fake-ccedge'), '#!/bin/sh\n', { mode: 0o755 });
    slots.init(path.join(dir, 'fake-ccedge'), { version: '1.0.0' });
    const dataDir = path.join(dir, 'data');
    mkdirSync(dataDir);
    const db = path.join(dataDir, 'ccedge.db');
    // A real sqlite database at schema 5.
    await new Promise<void>((resolve, reject) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const sqlite3 = require('sqlite3') as typeof import('sqlite3');
      const d = new sqlite3.Database(db);
      d.exec('PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1); PRAGMA user_version = 5;', (err) => d.close(() => (err ? reject(err) : resolve())));
    });
    const backup = path.join(dataDir, 'updates', 'db-before-2.0.0.db');
    assert.equal(await backupDb(db, backup), 5);
    // What apply records, then the trial version migrates to schema 6.
    writeFileSync(
      path.join(settings.root, 'state.json'),
      JSON.stringify({ format: 1, history: [], trial: { slot: 'b', version: '2.0.0', from: { slot: 'a', version: '1.0.0' }, appliedAt: '', boots: 1, maxBoots: 3, keyId: 'x', dbBackup: { file: backup, userVersion: 5 }, dataDir } }),
    );
    await new Promise<void>((resolve, reject) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const sqlite3 = require('sqlite3') as typeof import('sqlite3');
      const d = new sqlite3.Database(db);
      d.exec('PRAGMA user_version = 6;', (err) => d.close(() => (err ? reject(err) : resolve())));
    });
    const s = await slots.rollback('HEALTH_FAILED', 'test');
    assert.equal(await readUserVersion(db), 5);
    assert.match(s.last?.message ?? '', /schema 6\) was set aside as db-from-failed-2\.0\.0-\d+\.db and the copy from before the switch \(schema 5\) restored/);
  });
});

describe('image: A/B slots — a version that fails its health checks rolls back (HEALTH_FAILED)', function () {
  this.timeout(180_000);
  const v = nextVersions();
  let dir: string;
  let tool: string;
  let env: Record<string, string>;
  let sup: BinDaemon;
  let httpPort: number;
  const cli = (args: string[]): Promise<Ran> => run(tool, args, { cwd: dir, env });

  before(async () => {
    const [cur, next] = await Promise.all([ensureBinary(), binaryWithVersion(v.next)]);
    dir = scratchDir('ab-health');
    tool = copyBinary(cur.file, dir, 'ccedge-tool');
    copyBinary(next.file, dir, 'ccedge-next');
    httpPort = await freePort();
    env = cleanEnv({
      CCEDGE_UPDATE_ROOT: path.join(dir, 'opt'),
      CCEDGE_UPDATE_KEYS: path.join(dir, 'trusted'),
      CCEDGE_UPDATE_CONF: '/nonexistent',
      CCEDGE_UPDATE_HEALTH_WINDOW_S: '2',
      CCEDGE_UPDATE_HEALTH_DEADLINE_S: '6',
      CCEDGE_DATA_DIR: path.join(dir, 'data'),
      CCEDGE_SIP_HOST: '127.0.0.1',
      CCEDGE_SIP_PORT: String(await freePort()),
      CCEDGE_HTTP_HOST: '127.0.0.1',
      CCEDGE_HTTP_PORT: String(httpPort),
      CCEDGE_RTP_PORTS: '34000-34999',
      CCEDGE_ADMIN_TOKEN: 'image-test-admin-token-0123',
      // The cloud broker is configured but unreachable: "sync connected" never passes.
      CCEDGE_MQTT_URL: `mqtt://127.0.0.1:${await freePort()}`,
    });
    mkdirSync(path.join(dir, 'trusted'));
    for (const args of [
      ['update', 'keygen', '--out', path.join(dir, 'signing'), '--name', 'release'],
      ['update', 'init', '--binary', tool, '--version', v.current],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 0, r.stderr);
    }
    copyFileSync(path.join(dir, 'signing', 'release.pub'), path.join(dir, 'trusted', 'release.pub'));
    sup = spawnDaemon(tool, ['update', 'supervise', '--restart-sec', '0.3'], { cwd: dir, env });
    await eventually(() => fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.ok, () => false), 30_000);
  });

  after(async () => {
    assert.equal(await sup?.stop(), 0, sup.out().slice(-3000));
  });

  it('rolls back after the health deadline with the failing probe as the reason, and the old version runs again', async () => {
    const bundle = path.join(dir, 'next.bundle');
    let r = await cli(['update', 'build', '--key', path.join(dir, 'signing', 'release.key'), '--version', v.next, '--payload', `ccedge=${path.join(dir, 'ccedge-next')}`, '--out', bundle]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['update', 'apply', bundle]);
    assert.equal(r.code, 0, r.stderr);
    const s = await eventually(async () => {
      const x = await cli(['update', 'status', '--json']);
      const st = JSON.parse(x.stdout) as Status;
      return st.last?.outcome === 'rolled-back' ? st : undefined;
    }, 60_000);
    assert.equal(s.last?.reason, 'HEALTH_FAILED');
    assert.match(s.last?.message ?? '', /sync: not connected to the broker/);
    assert.deepEqual([s.current, s.committed], ['a', 'a']);
    await eventually(
      () => fetch(`http://127.0.0.1:${httpPort}/healthz`).then((x) => (x.ok ? (x.json() as Promise<{ version: string }>) : undefined), () => undefined).then((x) => x?.version === v.current),
      30_000,
    );
    assert.match(sup.out(), /"update rolled back"/);
  });
});
