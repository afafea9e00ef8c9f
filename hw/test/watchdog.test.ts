import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { SYSTEM_CLOCK } from '../clock';
import { watchdogConfigSchema } from '../config';
import type { HwError } from '../errors';
import { SILENT_LOG } from '../log';
import { Watchdog } from '../watchdog/watchdog';
import { FIXTURES, killAll, killChild, rmDir, sleep, tmpDir, until } from './helpers';

describe('hw/watchdog', function () {
  this.timeout(30_000);
  let dir: string;
  let wd: Watchdog | undefined;
  beforeEach(() => {
    dir = tmpDir('wd');
  });
  afterEach(async () => {
    await wd?.close();
    wd = undefined;
    await killAll();
    rmDir(dir);
  });

  it('feeds a watchdog device (a fifo) only while the checks pass, says why it stops, and magic-closes with V', async () => {
    const fifo = path.join(dir, 'watchdog');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const bytes: number[] = [];
    let ended = false;
    const reader = createReadStream(fifo);
    reader.on('data', (c) => bytes.push(...(c as Buffer)));
    reader.on('end', () => (ended = true));
    let dbOk = true;
    wd = new Watchdog({
      config: watchdogConfigSchema.parse({ device: fifo, deviceIntervalMs: 100, systemd: 'off', checkTimeoutMs: 300 }),
      checks: { db: () => dbOk, sip: async () => true },
      clock: SYSTEM_CLOCK,
      log: SILENT_LOG,
    });
    const starving: { check: string; reason: string }[][] = [];
    let fed = 0;
    wd.on('starving', (s) => starving.push(s.failed));
    wd.on('fed', () => fed++);
    await wd.start();
    await until(() => bytes.length >= 3, 'keepalives');
    assert.ok(bytes.every((b) => b === 0));
    dbOk = false;
    await until(() => starving.length === 1, 'starving');
    assert.deepEqual(starving[0], [{ check: 'db', reason: 'reported unhealthy' }]);
    const n = bytes.length;
    await sleep(500);
    assert.equal(bytes.length, n, 'not fed while the db check fails');
    assert.equal(starving.length, 1, 'said once');
    dbOk = true;
    await until(() => fed === 1 && bytes.length > n, 'fed again');
    await wd.close();
    wd = undefined;
    await until(() => ended, 'device closed');
    assert.equal(bytes[bytes.length - 1], 'V'.charCodeAt(0), 'magic close');
    assert.ok(bytes.slice(0, -1).every((b) => b === 0));
  });

  it('a check that throws or hangs counts as failed, with its reason', async () => {
    const fifo = path.join(dir, 'watchdog');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const reader = createReadStream(fifo);
    reader.on('data', () => undefined);
    wd = new Watchdog({
      config: watchdogConfigSchema.parse({ device: fifo, deviceIntervalMs: 100, systemd: 'off', checkTimeoutMs: 100 }),
      checks: { sip: () => Promise.reject(new Error('SIP listener closed')), db: () => new Promise(() => undefined) },
      clock: SYSTEM_CLOCK,
      log: SILENT_LOG,
    });
    const starving: { check: string; reason: string }[][] = [];
    wd.on('starving', (s) => starving.push(s.failed));
    await wd.start();
    await until(() => starving.length === 1, 'starving');
    assert.deepEqual(
      [...(starving[0] ?? [])].sort((a, b) => a.check.localeCompare(b.check)),
      [{ check: 'db', reason: 'no answer in 100 ms' }, { check: 'sip', reason: 'SIP listener closed' }],
    );
    await wd.close();
    wd = undefined;
    reader.destroy();
  });

  it('a missing device is a fault, and no file is created in its place', async () => {
    const dev = path.join(dir, 'no-watchdog');
    wd = new Watchdog({ config: watchdogConfigSchema.parse({ device: dev, systemd: 'off' }), clock: SYSTEM_CLOCK, log: SILENT_LOG });
    const faults: HwError[] = [];
    wd.on('fault', (e) => faults.push(e));
    await wd.start();
    assert.equal(faults[0]?.code, 'HW_WATCHDOG_OPEN_FAILED');
    assert.equal(existsSync(dev), false);
  });

  it('sends READY=1, WATCHDOG=1 every WATCHDOG_USEC/2 and STOPPING=1 through systemd-notify', async function () {
    if (spawnSync('python3', ['--version']).status !== 0 || spawnSync('systemd-notify', ['--version']).status !== 0) this.skip();
    const sock = path.join(dir, 'notify.sock');
    const rx = spawn('python3', [path.join(FIXTURES, 'notify-receiver.py'), sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    let got = '';
    rx.stdout.on('data', (c: Buffer) => (got += c.toString()));
    try {
      await until(() => got.includes('listening'), 'receiver');
      const env = { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '600000', WATCHDOG_PID: String(process.pid) };
      wd = new Watchdog({ config: watchdogConfigSchema.parse({}), clock: SYSTEM_CLOCK, log: SILENT_LOG, env });
      assert.equal(wd.systemdIntervalMs, 300);
      await wd.start();
      await wd.ready('ccedge ready');
      await until(() => got.includes('READY=1') && (got.match(/WATCHDOG=1/g)?.length ?? 0) >= 2, 'READY and two WATCHDOG=1');
      assert.match(got, /STATUS=ccedge ready/);
      await wd.close();
      wd = undefined;
      await until(() => got.includes('STOPPING=1'), 'STOPPING=1');
      // A WATCHDOG_PID for another process: the keepalive is not ours to send.
      const other = new Watchdog({ config: watchdogConfigSchema.parse({}), clock: SYSTEM_CLOCK, log: SILENT_LOG, env: { ...env, WATCHDOG_PID: '1' } });
      assert.equal(other.enabled, false);
    } finally {
      await killChild(rx);
    }
  });
});
