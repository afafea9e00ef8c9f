import { Counter, Gauge, type Registry } from 'prom-client';

/** The backup's Prometheus series, on the daemon's registry. */
export class BackupMetrics {
  readonly lastSuccess: Gauge;
  readonly lastDuration: Gauge;
  readonly lastBytes: Gauge;
  readonly failures: Counter<'code'>;
  readonly runs: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.lastSuccess = new Gauge({ name: 'ccedge_backup_last_success_timestamp_seconds', help: 'Unix time the last successful backup started (0: none yet)', registers });
    this.lastDuration = new Gauge({ name: 'ccedge_backup_last_duration_seconds', help: 'How long the last successful backup took', registers });
    this.lastBytes = new Gauge({ name: 'ccedge_backup_last_bytes', help: 'Bytes the last successful backup wrote to the backup path', registers });
    this.failures = new Counter({ name: 'ccedge_backup_failures_total', help: 'Backups that failed, by error code', labelNames: ['code'] as const, registers });
    this.runs = new Counter({ name: 'ccedge_backup_runs_total', help: 'Backups completed', registers });
  }
}
