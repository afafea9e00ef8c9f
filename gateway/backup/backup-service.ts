import type { Registry } from 'prom-client';
import type { CloudEvent } from '../../sync/events';
import { realClock, type Clock, type Timer } from '../acd/clock';
import { CcedgeError } from '../errors';
import type { Logger } from '../logging';
import type { Db } from '../store/db';
import type { BackupConfig } from './config';
import { listBackups } from './manifest';
import { BackupMetrics } from './metrics';
import { resolvePassphrase } from './passphrase';
import { runBackup, type BackupResult } from './run-backup';

/** A scheduled backup that finds a previous one overdue waits this long after start. */
const START_DELAY_MS = 60_000;
/** After a failure the next attempt comes this soon (or at the schedule, if sooner). */
const RETRY_MS = 15 * 60_000;

export interface BackupStatus {
  enabled: boolean;
  running: boolean;
  lastId: string | null;
  lastSuccessAt: string | null;
  lastDurationMs: number | null;
  lastBytes: number | null;
  failures: number;
  lastFailureAt: string | null;
  lastErrorCode: string | null;
  nextAt: string | null;
}

export interface BackupServiceDeps {
  config: () => BackupConfig;
  db: Db;
  dataDir: string;
  site: string;
  device: string;
  version: string;
  log: Logger;
  registry: Registry;
  /** Cloud events (backup.completed / backup.failed); the residency policy filters them. */
  emit: (event: CloudEvent<'backup.completed' | 'backup.failed'>) => void;
  /** Time and the schedule's timer (tests pass a manual clock). */
  clock?: Clock;
}

/**
 * The daemon's backups: the `backup.everyS` schedule, `ccedge backup now` through the admin API,
 * one run at a time, status for health, metrics and cloud events.
 */
export class BackupService {
  private timer: Timer | undefined;
  private running: Promise<BackupResult> | undefined;
  private closed = false;
  private readonly metrics: BackupMetrics;
  private readonly clock: Clock;
  private readonly now: () => Date;
  private readonly state: BackupStatus = {
    enabled: false, running: false, lastId: null, lastSuccessAt: null, lastDurationMs: null, lastBytes: null, failures: 0, lastFailureAt: null, lastErrorCode: null, nextAt: null,
  };

  constructor(private readonly deps: BackupServiceDeps) {
    this.metrics = new BackupMetrics(deps.registry);
    this.clock = deps.clock ?? realClock;
    this.now = () => new Date(this.clock.now());
  }

  /** Reads the last backup from the backup path and arms the schedule (when backup.enabled). */
  async start(): Promise<void> {
    const cfg = this.deps.config();
    this.state.enabled = cfg.enabled;
    if (!cfg.enabled) return;
    if (!cfg.path) {
      this.deps.log.error({ code: 'BACKUP_NOT_CONFIGURED' }, 'backup.enabled is set without backup.path: no scheduled backups');
      return;
    }
    try {
      resolvePassphrase({ configFile: cfg.passphraseFile });
    } catch (err) {
      this.deps.log.error({ err, code: (err as CcedgeError).code }, 'scheduled backups will fail until the passphrase is set');
    }
    const last = (await listBackups(cfg.path).catch(() => [])).at(-1);
    if (last) {
      this.state.lastId = last.id;
      this.state.lastSuccessAt = last.createdAt;
      this.metrics.lastSuccess.set(Date.parse(last.createdAt) / 1000);
    }
    const due = last ? Date.parse(last.createdAt) + cfg.everyS * 1000 - this.now().getTime() : 0;
    this.arm(Math.max(START_DELAY_MS, due));
  }

  status(): BackupStatus {
    return { ...this.state, running: this.running !== undefined };
  }

  /** One backup now, to `to` or backup.path. A run already under way is BACKUP_BUSY. */
  runNow(to?: string, trigger: 'schedule' | 'manual' = 'manual'): Promise<BackupResult> {
    if (this.closed) return Promise.reject(new CcedgeError('BACKUP_FAILED', 'the daemon is stopping'));
    if (this.running) return Promise.reject(new CcedgeError('BACKUP_BUSY', 'a backup is already running; try again when it is done'));
    const cfg = this.deps.config();
    const root = to ?? cfg.path;
    const run = (async () => {
      if (!root) throw new CcedgeError('BACKUP_NOT_CONFIGURED', 'no backup path: set backup.path or pass --to DIR');
      const passphrase = resolvePassphrase({ configFile: cfg.passphraseFile }) as string;
      return runBackup({
        db: this.deps.db, dataDir: this.deps.dataDir, root, passphrase, keep: cfg.keep, pagesPerStep: cfg.pagesPerStep,
        site: this.deps.site, device: this.deps.device, version: this.deps.version, now: this.now,
      });
    })();
    this.running = run;
    return run.then(
      (r) => {
        this.running = undefined;
        Object.assign(this.state, { lastId: r.id, lastSuccessAt: r.createdAt, lastDurationMs: r.durationMs, lastBytes: r.bytes });
        this.metrics.lastSuccess.set(Date.parse(r.createdAt) / 1000);
        this.metrics.lastDuration.set(r.durationMs / 1000);
        this.metrics.lastBytes.set(r.bytes);
        this.metrics.runs.inc();
        this.deps.log.info({ backup: r.id, durationMs: r.durationMs, bytes: r.bytes, recordings: r.recordings, recordingsCopied: r.recordingsCopied, deleted: r.deleted, trigger }, 'backup completed');
        this.deps.emit({ type: 'backup.completed', data: { backupId: r.id, trigger, durationMs: r.durationMs, bytes: r.bytes, recordings: r.recordings, recordingsCopied: r.recordingsCopied, deleted: r.deleted.length } });
        return r;
      },
      (err: unknown) => {
        this.running = undefined;
        const code = err instanceof CcedgeError ? err.code : 'BACKUP_FAILED';
        this.state.failures++;
        this.state.lastFailureAt = this.now().toISOString();
        this.state.lastErrorCode = code;
        this.metrics.failures.inc({ code });
        this.deps.log.error({ err, code, trigger }, 'backup failed');
        this.deps.emit({ type: 'backup.failed', data: { code, trigger } });
        throw err;
      },
    );
  }

  /** Stops the schedule and waits for a run under way (the database closes after this). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.state.nextAt = null;
    await this.running?.catch(() => undefined);
  }

  private arm(delayMs: number): void {
    if (this.closed) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.state.nextAt = new Date(this.now().getTime() + delayMs).toISOString();
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      const every = this.deps.config().everyS * 1000;
      this.runNow(undefined, 'schedule').then(
        () => this.arm(every),
        (err: unknown) => this.arm(err instanceof CcedgeError && err.code === 'BACKUP_BUSY' ? every : Math.min(every, RETRY_MS)),
      );
    }, delayMs);
  }
}
