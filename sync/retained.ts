import type { MqttLink } from './mqtt-link';
import { SILENT_LOG, type SqlDb, type SyncLog } from './sql';

/** Empty retained messages sent at once while pruning (each waits for its PUBACK). */
const PRUNE_BATCH = 50;

/**
 * Which topics hold a retained message of ours on the broker (`sync_retained`), so that one whose
 * subject is gone — a queue removed by a push or by a restart with a smaller config file — can be
 * cleared with an empty retained message; otherwise the broker keeps serving a dead queue's last
 * snapshot to every new subscriber, forever (issue 13 left 34,000 of them).
 *
 * The table survives restarts: a queue dropped from the config file while the box was off is
 * still known here and cleared on the next connect. A clear that gets no PUBACK stays in the
 * table and is retried by the next prune.
 */
export class RetainedTopics {
  /** Topics already written to the table this run (live snapshots repeat every few seconds). */
  private readonly noted = new Set<string>();
  private pruning: Promise<string[]> = Promise.resolve([]);
  private readonly log: SyncLog;

  constructor(
    private readonly db: SqlDb,
    private readonly link: MqttLink | undefined,
    log?: SyncLog,
  ) {
    this.log = log ?? SILENT_LOG;
  }

  /** Records that `suffix` now holds a retained message (called for every retained live publish). */
  note(suffix: string): void {
    if (this.noted.has(suffix)) return;
    this.noted.add(suffix);
    this.db.run('INSERT OR IGNORE INTO sync_retained (topic) VALUES (?)', [suffix]).catch((err: unknown) => {
      this.noted.delete(suffix);
      this.log.warn({ err, suffix }, 'retained topic not recorded');
    });
  }

  /** The recorded topics under `prefix`. */
  async list(prefix: string): Promise<string[]> {
    const rows = await this.db.all<{ topic: string }>('SELECT topic FROM sync_retained WHERE substr(topic, 1, ?) = ? ORDER BY topic', [prefix.length, prefix]);
    return rows.map((r) => r.topic);
  }

  /**
   * Clears (empty retained publish) every recorded topic under `prefix` that is not in `keep`, and
   * forgets it once the broker acknowledged. Offline: nothing happens (the caller prunes again on
   * the next connect). Runs one at a time; resolves with the topics cleared.
   */
  prune(prefix: string, keep: ReadonlySet<string>): Promise<string[]> {
    const next = this.pruning.then(() => this.pruneNow(prefix, keep));
    this.pruning = next.catch(() => []);
    return next;
  }

  private async pruneNow(prefix: string, keep: ReadonlySet<string>): Promise<string[]> {
    const link = this.link;
    if (!link?.connected) return [];
    const stale = (await this.list(prefix)).filter((t) => !keep.has(t));
    const cleared: string[] = [];
    for (let i = 0; i < stale.length; i += PRUNE_BATCH) {
      const batch = stale.slice(i, i + PRUNE_BATCH);
      const results = await Promise.allSettled(batch.map((t) => link.publishAsync(t, '', { qos: 1, retain: true })));
      const done = batch.filter((_, j) => results[j].status === 'fulfilled');
      for (const t of done) {
        await this.db.run('DELETE FROM sync_retained WHERE topic = ?', [t]);
        this.noted.delete(t);
      }
      cleared.push(...done);
      if (done.length < batch.length) {
        this.log.warn({ failed: batch.length - done.length }, 'some retained topics not cleared; retried on the next prune');
        break;
      }
    }
    if (cleared.length > 0) this.log.info({ cleared: cleared.length, prefix }, 'retained messages of removed subjects cleared on the broker');
    return cleared;
  }
}
