import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { BackupService, backupConfigSchema, listBackups, type BackupConfig } from '../../backup';
import { CcedgeError } from '../../errors';
import { Db } from '../../store/db';
import { ManualClock } from './manual-clock';

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !pred(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(pred(), 'condition not reached');
}

describe('BackupService: the daemon schedule, status, metrics and cloud events', function () {
  this.timeout(60_000);
  let dir: string;
  let db: Db;
  let cfg: BackupConfig;
  let events: Array<{ type: string; data: Record<string, unknown> }>;
  let registry: Registry;
  let clock: ManualClock;
  let service: BackupService;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ccedge-backup-svc-'));
    db = await Db.open(path.join(dir, 'data', 'ccedge.db'));
    writeFileSync(path.join(dir, 'pass'), 'a long enough passphrase');
    cfg = backupConfigSchema.parse({ enabled: true, path: path.join(dir, 'share'), everyS: 3600, passphraseFile: path.join(dir, 'pass') });
    events = [];
    registry = new Registry();
    clock = new ManualClock(Date.now());
    service = new BackupService({
      config: () => cfg, db, dataDir: path.join(dir, 'data'), site: 's', device: 'd', version: 't',
      log: pino({ level: 'silent' }), registry, emit: ({ type, data }) => events.push({ type, data: { ...data } }), clock,
    });
  });
  afterEach(async () => {
    await service.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs on schedule, reports success and failure, retries sooner after a failure, and stops on close', async () => {
    await service.start();
    assert.equal(service.status().nextAt, new Date(clock.now() + 60_000).toISOString(), 'the first run a minute after start');
    clock.advance(60_000);
    await until(() => events.length === 1);
    assert.equal(events[0].type, 'backup.completed');
    assert.equal(events[0].data.trigger, 'schedule');
    const st = service.status();
    assert.ok(st.lastSuccessAt && st.lastBytes && st.lastBytes > 0);
    assert.equal(st.nextAt, new Date(clock.now() + 3600_000).toISOString());
    assert.equal((await listBackups(cfg.path as string)).length, 1);
    const text = await registry.metrics();
    assert.match(text, /^ccedge_backup_last_success_timestamp_seconds [1-9]/m);
    assert.match(text, /^ccedge_backup_runs_total 1$/m);

    cfg = { ...cfg, passphraseFile: path.join(dir, 'missing') };
    clock.advance(3600_000);
    await until(() => events.length === 2);
    assert.deepEqual(events[1], { type: 'backup.failed', data: { code: 'BACKUP_NOT_CONFIGURED', trigger: 'schedule' } });
    assert.equal(service.status().failures, 1);
    assert.equal(service.status().lastErrorCode, 'BACKUP_NOT_CONFIGURED');
    assert.equal(service.status().nextAt, new Date(clock.now() + 15 * 60_000).toISOString(), 'a failed run is retried after 15 min');
    assert.match(await registry.metrics(), /^ccedge_backup_failures_total\{code="BACKUP_NOT_CONFIGURED"\} 1$/m);

    await service.close();
    assert.equal(clock.pending, 0, 'no timer left after close');
    await assert.rejects(service.runNow(), (e: CcedgeError) => e.code === 'BACKUP_FAILED');
  });

  it('one run at a time: a second is BACKUP_BUSY; a later start picks up the schedule from the last backup', async () => {
    const first = service.runNow();
    await assert.rejects(service.runNow(), (e: CcedgeError) => e.code === 'BACKUP_BUSY');
    const r = await first;
    assert.equal(service.status().running, false);
    const again = new BackupService({
      config: () => cfg, db, dataDir: path.join(dir, 'data'), site: 's', device: 'd', version: 't',
      log: pino({ level: 'silent' }), registry: new Registry(), emit: () => undefined, clock,
    });
    clock.advance(10 * 60_000);
    await again.start();
    assert.equal(again.status().lastId, r.id);
    assert.equal(again.status().nextAt, new Date(Date.parse(r.createdAt) + 3600_000).toISOString(), 'due an interval after the last backup');
    await again.close();
  });
});
