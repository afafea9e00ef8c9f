import path from 'node:path';
import type { G711Codec } from '../media';
import { RECORDING_CHANNELS, RECORDING_SAMPLE_RATE } from '../media';
import type { AuditLog } from './audit-log';
import { VaultError } from './errors';
import type { SiteKeyRing } from './keys';
import type { VaultDb } from './schema';

/*
 * The recordings index: the `recordings` rows (open → final → deleted), their public shape, and the
 * data key each row wraps. Every state change here is one transaction with its audit entry.
 * Files are named by the row; this module never reads or writes them.
 */

const BYTES_PER_MS = (RECORDING_CHANNELS * RECORDING_SAMPLE_RATE) / 1000;

export type RecordingState = 'open' | 'final' | 'deleted';

export interface RecordingInfo {
  id: string;
  callId: string;
  createdAt: string;
  finalizedAt: string | null;
  codec: G711Codec;
  channels: number;
  sampleRate: number;
  durationMs: number;
  /** Bytes of audio data (the WAV is WAV_HEADER_SIZE more). */
  bytes: number;
  chunkSize: number;
  chunks: number;
  /** SHA-256 (hex) of the audio data (interleaved samples, without the WAV header). */
  sha256: string | null;
  keyId: string;
  file: string;
  state: RecordingState;
  /** completed | interrupted (crash, recovered at start) | write-failed (e.g. disk full). */
  endReason: string | null;
  recovered: boolean;
  pausedMs: number;
  legalHold: boolean;
  retentionUntil: string | null;
  deletedAt: string | null;
  queue: string | null;
  intent: string | null;
  agent: string | null;
}

export interface RecordingRow {
  id: string;
  call_id: string;
  created_at: string;
  finalized_at: string | null;
  codec: G711Codec;
  channels: number;
  sample_rate: number;
  duration_ms: number;
  bytes: number;
  chunk_size: number;
  chunks: number;
  sha256: string | null;
  wrapped_key: string | null;
  key_id: string;
  file: string;
  state: RecordingState;
  end_reason: string | null;
  recovered: number;
  paused_ms: number;
  legal_hold: number;
  retention_until: string | null;
  deleted_at: string | null;
  queue: string | null;
  intent: string | null;
  agent: string | null;
}

export function toInfo(r: RecordingRow): RecordingInfo {
  return {
    id: r.id, callId: r.call_id, createdAt: r.created_at, finalizedAt: r.finalized_at, codec: r.codec, channels: r.channels,
    sampleRate: r.sample_rate, durationMs: r.duration_ms, bytes: r.bytes, chunkSize: r.chunk_size, chunks: r.chunks, sha256: r.sha256,
    keyId: r.key_id, file: r.file, state: r.state, endReason: r.end_reason, recovered: r.recovered === 1, pausedMs: r.paused_ms,
    legalHold: r.legal_hold === 1, retentionUntil: r.retention_until, deletedAt: r.deleted_at, queue: r.queue, intent: r.intent, agent: r.agent,
  };
}

/** What may be offered to the sync layer: metadata only, never audio, keys or file paths. */
export function recordingMetadataForSync(r: RecordingInfo): { id: string; callId: string; createdAt: string; durationMs: number; bytes: number; sha256: string | null; retentionUntil: string | null; state: RecordingState } {
  return { id: r.id, callId: r.callId, createdAt: r.createdAt, durationMs: r.durationMs, bytes: r.bytes, sha256: r.sha256, retentionUntil: r.retentionUntil, state: r.state };
}

/** How a recording ended, as markFinal records it. */
export interface FinalState {
  bytes: number;
  chunks: number;
  sha256: string;
  endReason: string;
  recovered: boolean;
  pausedMs: number;
  auditAction: 'finalized' | 'recovered';
  auditData: Record<string, unknown>;
}

export interface NewRecordingRow {
  id: string;
  callId: string;
  createdAt: string;
  codec: G711Codec;
  chunkSize: number;
  wrappedKey: string;
  keyId: string;
  file: string;
  retentionUntil: string | null;
  queue?: string;
  intent?: string;
  agent?: string;
  actor: string;
}

export class RecordingCatalogue {
  constructor(
    readonly db: VaultDb,
    readonly audit: AuditLog,
    readonly keys: SiteKeyRing,
    readonly recordingsDir: string,
    readonly now: () => Date,
  ) {}

  /** Inserts the `open` row (on legal hold if its call is) and audits `created`. */
  async insertOpen(n: NewRecordingRow): Promise<void> {
    await this.db.transaction(async (tx) => {
      const hold = await tx.get<{ call_id: string }>('SELECT call_id FROM legal_holds WHERE call_id = ?', [n.callId]);
      await tx.run(
        `INSERT INTO recordings (id, call_id, created_at, codec, channels, sample_rate, chunk_size, wrapped_key, key_id, file, state, legal_hold, retention_until, queue, intent, agent)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)`,
        [n.id, n.callId, n.createdAt, n.codec, RECORDING_CHANNELS, RECORDING_SAMPLE_RATE, n.chunkSize, n.wrappedKey, n.keyId, n.file, hold ? 1 : 0, n.retentionUntil, n.queue ?? null, n.intent ?? null, n.agent ?? null],
      );
      await this.audit.appendIn(tx, { actor: n.actor, action: 'created', recordingId: n.id, data: { callId: n.callId, codec: n.codec, keyId: n.keyId, retentionUntil: n.retentionUntil, queue: n.queue, intent: n.intent, agent: n.agent } });
    });
  }

  /** State open → final, with its audit entry, in one transaction. */
  async markFinal(id: string, f: FinalState): Promise<RecordingInfo> {
    await this.db.transaction(async (tx) => {
      const r = await tx.run(
        `UPDATE recordings SET state = 'final', finalized_at = ?, bytes = ?, chunks = ?, sha256 = ?, duration_ms = ?, end_reason = ?, recovered = ?, paused_ms = ?
         WHERE id = ? AND state = 'open'`,
        [this.now().toISOString(), f.bytes, f.chunks, f.sha256, Math.round(f.bytes / BYTES_PER_MS), f.endReason, f.recovered ? 1 : 0, f.pausedMs, id],
      );
      if (r.changes !== 1) throw new VaultError('VAULT_BAD_STATE', `recording ${id} is not open`);
      await this.audit.appendIn(tx, {
        actor: 'system', action: f.auditAction, recordingId: id,
        data: { ...f.auditData, bytes: f.bytes, chunks: f.chunks, sha256: f.sha256, durationMs: Math.round(f.bytes / BYTES_PER_MS), endReason: f.endReason },
      });
    });
    return this.require(id);
  }

  async get(id: string): Promise<RecordingInfo | undefined> {
    const r = await this.db.get<RecordingRow>('SELECT * FROM recordings WHERE id = ?', [id]);
    return r ? toInfo(r) : undefined;
  }

  async require(id: string): Promise<RecordingInfo> {
    const r = await this.get(id);
    if (!r) throw new VaultError('VAULT_NOT_FOUND', `no recording ${id}`, { recordingId: id });
    return r;
  }

  async list(opts: { callId?: string; state?: RecordingState; limit?: number } = {}): Promise<RecordingInfo[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (opts.callId) {
      where.push('call_id = ?');
      params.push(opts.callId);
    }
    if (opts.state) {
      where.push('state = ?');
      params.push(opts.state);
    }
    params.push(opts.limit ?? 1000);
    const rows = await this.db.all<RecordingRow>(`SELECT * FROM recordings ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`, params);
    return rows.map(toInfo);
  }

  /** The raw row; VAULT_NOT_FOUND if there is none. */
  async row(id: string): Promise<RecordingRow> {
    const r = await this.db.get<RecordingRow>('SELECT * FROM recordings WHERE id = ?', [id]);
    if (!r) throw new VaultError('VAULT_NOT_FOUND', `no recording ${id}`, { recordingId: id });
    return r;
  }

  /** A final recording's row, for reading; a deleted one is not found, an open one is refused. */
  async finalRow(id: string): Promise<RecordingRow> {
    const r = await this.row(id);
    if (r.state !== 'final') throw new VaultError(r.state === 'deleted' ? 'VAULT_NOT_FOUND' : 'VAULT_BAD_STATE', `recording ${id} is ${r.state}`, { recordingId: id });
    return r;
  }

  /** The recording's plaintext data key; the caller zeroes it when done. */
  dataKeyOf(r: RecordingRow): Buffer {
    if (!r.wrapped_key) throw new VaultError('VAULT_KEY_UNAVAILABLE', `recording ${r.id} has no data key (deleted)`, { recordingId: r.id });
    return this.keys.unwrap(r.wrapped_key, r.id, r.key_id);
  }

  fileOf(r: { file: string }): string {
    return path.join(this.recordingsDir, r.file);
  }
}
