import { EventEmitter } from 'node:events';
import { z } from 'zod';
import { SyncError } from './errors';
import { type CloudEventData, type CloudEventType, isCloudEventType } from './events';
import { ENVELOPE_FIELDS, type Policy } from './policy';
import { SILENT_LOG, type SqlDb, type SqlExec, type SyncLog } from './sql';

export const outboxLimitsSchema = z
  .object({
    /** Rows kept while the cloud is unreachable; beyond that the oldest are dropped (counted, reported). */
    maxRows: z.number().int().min(10).max(100_000_000).default(1_000_000),
    maxBytes: z.number().int().min(64 * 1024).default(512 * 1024 * 1024),
    /** Rows older than this are dropped (0: never). */
    ttlS: z.number().int().min(0).default(30 * 86_400),
    /** An event bigger than this after the policy leaves as its envelope plus `truncated: true`. */
    maxEventBytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024),
  })
  .strict();
export type OutboxLimits = z.infer<typeof outboxLimitsSchema>;

export interface OutboxRow {
  seq: number;
  type: string;
  ts: string;
  /** The exact JSON published on `events`: `{id, seq, ts, bootId, type, ...fields}`. */
  payload: string;
}

export interface OutboxStats {
  depth: number;
  bytes: number;
  lastSeq: number;
  lastAckedSeq: number;
  droppedTotal: number;
  unreportedDrops: number;
  oldestTs: string | null;
}

interface StateRow {
  last_seq: number;
  last_acked_seq: number;
  depth: number;
  depth_bytes: number;
  dropped_total: number;
  unreported_limit: number;
  unreported_ttl: number;
  unreported_from_seq: number | null;
  unreported_to_seq: number | null;
}

export interface OutboxOptions {
  deviceId: string;
  bootId: string;
  policy: Policy;
  limits?: Partial<OutboxLimits>;
  log?: SyncLog;
  now?: () => Date;
}

/**
 * The durable outbox: one row per event for the cloud, written in the caller's transaction, with a
 * per-device `seq` that never repeats (kept in `sync_state`, so it survives restarts and an empty
 * outbox). Rows leave only through the residency policy; they are deleted on PUBACK (`ack`).
 *
 * Emits `appended` (after the caller's transaction was handed the row; reading through
 * `pending()` queues behind that transaction, so only committed rows are seen).
 */
export class Outbox extends EventEmitter {
  readonly limits: OutboxLimits;
  private readonly log: SyncLog;
  private readonly now: () => Date;
  private notifyScheduled = false;
  private refused = 0;
  private readonly refusedTypes = new Set<string>();

  constructor(
    private readonly db: SqlDb,
    private readonly opts: OutboxOptions,
  ) {
    super();
    this.limits = outboxLimitsSchema.parse(opts.limits ?? {});
    if (this.limits.maxEventBytes * 2 > this.limits.maxBytes) throw new SyncError('SYNC_CONFIG_INVALID', 'outbox maxBytes must be at least twice maxEventBytes');
    this.log = opts.log ?? SILENT_LOG;
    this.now = opts.now ?? (() => new Date());
  }

  get policy(): Policy {
    return this.opts.policy;
  }

  /** Fails clearly when the sync tables are missing (the migration did not run). */
  async check(): Promise<void> {
    const row = await this.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('sync_outbox', 'sync_state', 'sync_commands', 'sync_config')").catch(() => undefined);
    const state = row?.n === 4 ? await this.db.get('SELECT id FROM sync_state WHERE id = 1') : undefined;
    if (!state) throw new SyncError('SYNC_SCHEMA_MISSING', 'the sync tables are missing: apply the sync migration (sync/schema.ts SYNC_SCHEMA_SQL)');
  }

  /**
   * Writes one event for the cloud. Call it INSIDE the transaction that writes the state change,
   * with that transaction's handle, so both commit or neither does. The data passes the residency
   * policy here. Returns the event's seq.
   */
  async append<T extends CloudEventType>(tx: SqlExec, type: T, data: CloudEventData<T>): Promise<number> {
    // The compiler checks typed callers; a type from untyped input (JSON, a command) is refused
    // here rather than leaving as an empty event nobody notices.
    if (!isCloudEventType(type)) throw this.refuse(type);
    const at = this.now().toISOString();
    // Takes the seq; depth and bytes are those before this row (the insert's trigger adds it).
    const state = await tx.get<StateRow>('UPDATE sync_state SET last_seq = last_seq + 1 WHERE id = 1 RETURNING *');
    if (!state) throw new SyncError('SYNC_SCHEMA_MISSING', 'sync_state has no row: apply the sync migration');
    const seq = state.last_seq;
    const fields = this.opts.policy.apply(type, data as Readonly<Record<string, unknown>>);
    for (const k of ENVELOPE_FIELDS) delete fields[k];
    const envelope = { id: `${this.opts.deviceId}:${seq}`, seq, ts: at, bootId: this.opts.bootId, type };
    let payload = JSON.stringify({ ...envelope, ...fields });
    let bytes = Buffer.byteLength(payload);
    if (bytes > this.limits.maxEventBytes) {
      this.log.warn({ type, seq, bytes, maxEventBytes: this.limits.maxEventBytes }, 'outbox event too large after the residency policy; sending its envelope only');
      payload = JSON.stringify({ ...envelope, truncated: true, bytes });
      bytes = Buffer.byteLength(payload);
    }
    // sync_outbox_depth (sync/schema.ts) adds the row to depth and depth_bytes.
    await tx.run('INSERT INTO sync_outbox (seq, boot_id, ts, type, payload, bytes) VALUES (?, ?, ?, ?, ?, ?)', [seq, this.opts.bootId, at, type, payload, bytes]);
    const overRows = state.depth + 1 - this.limits.maxRows;
    const overBytes = state.depth_bytes + bytes - this.limits.maxBytes;
    if (overRows > 0 || overBytes > 0) await this.dropOldest(tx, Math.max(overRows, 0), Math.max(overBytes, 0), seq, 'limit');
    this.scheduleNotify();
    return seq;
  }

  /** Rows not yet acknowledged, in seq order, with seq > afterSeq. Sees committed rows only. */
  pending(limit: number, afterSeq = 0): Promise<OutboxRow[]> {
    return this.db.transaction((tx) =>
      tx.all<OutboxRow>('SELECT seq, type, ts, payload FROM sync_outbox WHERE seq > ? ORDER BY seq LIMIT ?', [afterSeq, Math.max(1, Math.floor(limit))]),
    );
  }

  /** Deletes delivered rows (PUBACK received). Returns how many rows it deleted. */
  async ack(seqs: number | number[]): Promise<number> {
    const list = (Array.isArray(seqs) ? seqs : [seqs]).filter((s) => Number.isSafeInteger(s) && s > 0);
    if (list.length === 0) return 0;
    return this.db.transaction(async (tx) => {
      let deleted = 0;
      for (let i = 0; i < list.length; i += 500) {
        const chunk = list.slice(i, i + 500);
        const marks = chunk.map(() => '?').join(', ');
        const sum = await tx.get<{ n: number; b: number | null }>(`SELECT COUNT(*) AS n, SUM(bytes) AS b FROM sync_outbox WHERE seq IN (${marks})`, chunk);
        if (sum && sum.n > 0) {
          await tx.run(`DELETE FROM sync_outbox WHERE seq IN (${marks})`, chunk);
          await tx.run('UPDATE sync_state SET depth = depth - ?, depth_bytes = depth_bytes - ? WHERE id = 1', [sum.n, sum.b ?? 0]);
          deleted += sum.n;
        }
      }
      await tx.run('UPDATE sync_state SET last_acked_seq = MAX(last_acked_seq, ?) WHERE id = 1', [Math.max(...list)]);
      return deleted;
    });
  }

  /** Drops rows older than the TTL (oldest first; counted and reported like limit drops). */
  async prune(): Promise<number> {
    if (this.limits.ttlS === 0) return 0;
    const cutoff = new Date(this.now().getTime() - this.limits.ttlS * 1000).toISOString();
    return this.db.transaction(async (tx) => {
      const last = await tx.get<{ seq: number | null }>('SELECT MAX(seq) AS seq FROM (SELECT seq, ts FROM sync_outbox ORDER BY seq LIMIT 100000) WHERE ts < ?', [cutoff]);
      if (last?.seq == null) return 0;
      return this.dropThrough(tx, last.seq, 'ttl');
    });
  }

  /**
   * If rows were dropped since the last report, appends one `sync.dropped` event
   * `{count, byLimit, byTtl, fromSeq, toSeq}` and returns its seq. The sender calls this when connected.
   */
  reportDrops(): Promise<number | null> {
    return this.db.transaction(async (tx) => {
      const s = await this.state(tx);
      const count = s.unreported_limit + s.unreported_ttl;
      if (count === 0) return null;
      await tx.run('UPDATE sync_state SET unreported_limit = 0, unreported_ttl = 0, unreported_from_seq = NULL, unreported_to_seq = NULL WHERE id = 1');
      const data = { count, byLimit: s.unreported_limit, byTtl: s.unreported_ttl, fromSeq: s.unreported_from_seq, toSeq: s.unreported_to_seq };
      this.log.warn(data, 'outbox rows were dropped before they reached the cloud');
      return this.append(tx, 'sync.dropped', data);
    });
  }

  stats(): Promise<OutboxStats> {
    return this.db.transaction(async (tx) => {
      const s = await this.state(tx);
      const oldest = await tx.get<{ ts: string }>('SELECT ts FROM sync_outbox ORDER BY seq LIMIT 1');
      return {
        depth: s.depth,
        bytes: s.depth_bytes,
        lastSeq: s.last_seq,
        lastAckedSeq: s.last_acked_seq,
        droppedTotal: s.dropped_total,
        unreportedDrops: s.unreported_limit + s.unreported_ttl,
        oldestTs: oldest?.ts ?? null,
      };
    });
  }

  /** Appends refused because their type is not catalogued (since start). */
  get refusedTotal(): number {
    return this.refused;
  }

  /** Counts and logs (once per type, a bounded set) an append of an uncatalogued type. */
  private refuse(type: unknown): SyncError {
    this.refused++;
    const shown = String(type).slice(0, 64);
    if (this.refusedTypes.size < 32 && !this.refusedTypes.has(shown)) {
      this.refusedTypes.add(shown);
      this.log.warn({ code: 'SYNC_EVENT_UNKNOWN', type: shown, refusedTotal: this.refused }, 'outbox refused an event of an uncatalogued type');
    }
    return new SyncError('SYNC_EVENT_UNKNOWN', `not a cloud event type: ${JSON.stringify(shown)} (sync/events.ts lists them)`);
  }

  private async state(tx: SqlExec): Promise<StateRow> {
    const s = await tx.get<StateRow>('SELECT * FROM sync_state WHERE id = 1');
    if (!s) throw new SyncError('SYNC_SCHEMA_MISSING', 'sync_state has no row: apply the sync migration');
    return s;
  }

  /** Drops the oldest rows (never `keepSeq`) until `rows` rows and `bytes` bytes are freed. */
  private async dropOldest(tx: SqlExec, rows: number, bytes: number, keepSeq: number, reason: 'limit' | 'ttl'): Promise<void> {
    let freedRows = 0;
    let freedBytes = 0;
    let through = 0;
    while (freedRows < rows || freedBytes < bytes) {
      const batch = await tx.all<{ seq: number; bytes: number }>('SELECT seq, bytes FROM sync_outbox WHERE seq > ? AND seq <> ? ORDER BY seq LIMIT ?', [
        through,
        keepSeq,
        Math.min(Math.max(rows - freedRows, 16), 1000),
      ]);
      if (batch.length === 0) break;
      for (const r of batch) {
        through = r.seq;
        freedRows++;
        freedBytes += r.bytes;
        if (freedRows >= rows && freedBytes >= bytes) break;
      }
    }
    if (through > 0) await this.dropThrough(tx, Math.min(through, keepSeq - 1), reason);
  }

  private async dropThrough(tx: SqlExec, throughSeq: number, reason: 'limit' | 'ttl'): Promise<number> {
    const sum = await tx.get<{ n: number; b: number | null; lo: number | null; hi: number | null }>(
      'SELECT COUNT(*) AS n, SUM(bytes) AS b, MIN(seq) AS lo, MAX(seq) AS hi FROM sync_outbox WHERE seq <= ?',
      [throughSeq],
    );
    if (!sum || sum.n === 0) return 0;
    await tx.run('DELETE FROM sync_outbox WHERE seq <= ?', [throughSeq]);
    await tx.run(
      `UPDATE sync_state SET depth = depth - ?, depth_bytes = depth_bytes - ?, dropped_total = dropped_total + ?,
         ${reason === 'limit' ? 'unreported_limit = unreported_limit' : 'unreported_ttl = unreported_ttl'} + ?,
         unreported_from_seq = COALESCE(unreported_from_seq, ?), unreported_to_seq = ? WHERE id = 1`,
      [sum.n, sum.b ?? 0, sum.n, sum.n, sum.lo, sum.hi],
    );
    this.log.debug({ dropped: sum.n, fromSeq: sum.lo, toSeq: sum.hi, reason }, 'outbox rows dropped');
    return sum.n;
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      this.emit('appended');
    });
  }
}
