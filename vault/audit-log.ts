import { createHash } from 'node:crypto';
import type { VaultDb } from './schema';

export type AuditAction =
  | 'created'
  | 'finalized'
  | 'recovered'
  | 'played'
  | 'access-denied'
  | 'exported'
  | 'paused'
  | 'resumed'
  | 'deleted'
  | 'key-rotated'
  | 'hold-set'
  | 'hold-cleared'
  | 'write-failed'
  /** Transcripts (vault/transcript-vault.ts): the entry's recordingId is the transcript id. */
  | 'transcript-stored'
  | 'transcript-read'
  | 'transcript-deleted';

export interface AuditInput {
  actor: string;
  action: AuditAction;
  recordingId?: string | null;
  reason?: string | null;
  data?: Record<string, unknown>;
}

export interface AuditEntry {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  recordingId: string | null;
  reason: string | null;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** One thing `verify` found wrong, named so an operator can act on it. */
export interface VerifyProblem {
  code:
    | 'AUDIT_CHAIN_BROKEN'
    | 'AUDIT_ENTRY_ALTERED'
    /** The chain does not contain the head recorded outside the box (the cloud saw it): truncated or rewritten. */
    | 'AUDIT_ANCHOR_MISMATCH'
    | 'VAULT_FILE_MISSING'
    | 'VAULT_TAMPERED'
    | 'VAULT_TRUNCATED'
    | 'VAULT_HASH_MISMATCH'
    | 'VAULT_KEY_UNAVAILABLE'
    | 'VAULT_METADATA_MISMATCH';
  message: string;
  seq?: number;
  recordingId?: string;
  file?: string;
  chunk?: number;
}

/** The hash before the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

interface AuditRow {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  recording_id: string | null;
  reason: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

/** JSON with object keys sorted at every level: one byte string per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** hash = SHA-256(prev_hash ‖ canonical JSON of the entry's fields). */
export function entryHash(e: { seq: number; ts: string; actor: string; action: string; recordingId: string | null; reason: string | null; data: string }, prevHash: string): string {
  const canonical = canonicalJson({ seq: e.seq, ts: e.ts, actor: e.actor, action: e.action, recordingId: e.recordingId, reason: e.reason, data: e.data });
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex');
}

/**
 * Append-only, hash-chained audit log of everything done to recordings and keys (table
 * `recording_audit`). Each entry's hash covers its fields and the previous entry's hash, so an
 * edited, deleted or inserted row breaks the chain at that seq.
 */
export class AuditLog {
  constructor(
    private readonly db: VaultDb,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Appends in its own transaction. */
  append(input: AuditInput): Promise<AuditEntry> {
    return this.db.transaction((tx) => this.appendIn(tx, input));
  }

  /** Appends inside the caller's transaction (so the entry commits with the change it records). */
  async appendIn(tx: VaultDb, input: AuditInput): Promise<AuditEntry> {
    const last = await tx.get<{ seq: number; hash: string }>('SELECT seq, hash FROM recording_audit ORDER BY seq DESC LIMIT 1');
    const seq = (last?.seq ?? 0) + 1;
    const prevHash = last?.hash ?? GENESIS_HASH;
    const data = canonicalJson(input.data ?? {});
    const e = { seq, ts: this.now().toISOString(), actor: input.actor, action: input.action, recordingId: input.recordingId ?? null, reason: input.reason ?? null, data };
    const hash = entryHash(e, prevHash);
    await tx.run(
      'INSERT INTO recording_audit (seq, ts, actor, action, recording_id, reason, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [seq, e.ts, e.actor, e.action, e.recordingId, e.reason, data, prevHash, hash],
    );
    return { ...e, data: input.data ?? {}, prevHash, hash };
  }

  async list(opts: { recordingId?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    const rows = opts.recordingId
      ? await this.db.all<AuditRow>('SELECT * FROM recording_audit WHERE recording_id = ? ORDER BY seq LIMIT ?', [opts.recordingId, opts.limit ?? 100000])
      : await this.db.all<AuditRow>('SELECT * FROM recording_audit ORDER BY seq LIMIT ?', [opts.limit ?? 100000]);
    return rows.map(toEntry);
  }

  /**
   * Walks the chain from seq 1. Names the first seq where it breaks (a missing, inserted or
   * re-linked entry) and every entry whose content no longer matches its hash.
   */
  async verifyChain(): Promise<VerifyProblem[]> {
    const problems: VerifyProblem[] = [];
    const rows = await this.db.all<AuditRow>('SELECT * FROM recording_audit ORDER BY seq');
    let prevHash = GENESIS_HASH;
    let expectedSeq = 1;
    for (const r of rows) {
      if (r.seq !== expectedSeq) {
        problems.push({
          code: 'AUDIT_CHAIN_BROKEN',
          seq: expectedSeq,
          message: `audit log: chain broken at seq ${expectedSeq}: ${r.seq > expectedSeq ? `entr${r.seq - expectedSeq === 1 ? 'y' : 'ies'} ${expectedSeq}${r.seq - expectedSeq > 1 ? `..${r.seq - 1}` : ''} missing` : 'sequence out of order'}`,
        });
      } else if (r.prev_hash !== prevHash) {
        problems.push({ code: 'AUDIT_CHAIN_BROKEN', seq: r.seq, message: `audit log: chain broken at seq ${r.seq}: prev_hash does not match the hash of seq ${r.seq - 1}` });
      }
      const recomputed = entryHash({ seq: r.seq, ts: r.ts, actor: r.actor, action: r.action, recordingId: r.recording_id, reason: r.reason, data: r.data }, r.prev_hash);
      if (recomputed !== r.hash) {
        problems.push({ code: 'AUDIT_ENTRY_ALTERED', seq: r.seq, recordingId: r.recording_id ?? undefined, message: `audit log: entry seq ${r.seq} (${r.action}) was altered: its hash does not match its content` });
      }
      prevHash = r.hash;
      expectedSeq = r.seq + 1;
    }
    return problems;
  }

  /** The newest entry (to anchor the head outside sqlite, e.g. in the cloud or a report). */
  async head(): Promise<{ seq: number; hash: string } | undefined> {
    return this.db.get<{ seq: number; hash: string }>('SELECT seq, hash FROM recording_audit ORDER BY seq DESC LIMIT 1');
  }

  /**
   * Checks the chain against a head recorded outside this box (the cloud keeps every
   * `recording.audit-head` it received): the entry must still exist with the same hash. This is
   * what catches a tail cut off the log together with its triggers, which the chain alone cannot.
   */
  async verifyAnchor(anchor: { seq: number; hash: string }): Promise<VerifyProblem[]> {
    const row = await this.db.get<{ hash: string }>('SELECT hash FROM recording_audit WHERE seq = ?', [anchor.seq]);
    if (!row) {
      const head = await this.head();
      return [{ code: 'AUDIT_ANCHOR_MISMATCH', seq: anchor.seq, message: `audit log: anchored entry seq ${anchor.seq} is missing (the log ends at seq ${head?.seq ?? 0}): entries were removed` }];
    }
    if (row.hash !== anchor.hash) return [{ code: 'AUDIT_ANCHOR_MISMATCH', seq: anchor.seq, message: `audit log: entry seq ${anchor.seq} no longer has the anchored hash ${anchor.hash.slice(0, 16)}…: the log was rewritten` }];
    return [];
  }

  /**
   * The whole check behind `ccedge recordings verify`: the chain, then (if given) every
   * recording file. An empty list means everything verified.
   */
  async verify(files?: { verifyFiles(): Promise<VerifyProblem[]> }): Promise<VerifyProblem[]> {
    const problems = await this.verifyChain();
    if (files) problems.push(...(await files.verifyFiles()));
    return problems;
  }
}

function toEntry(r: AuditRow): AuditEntry {
  let data: Record<string, unknown> = {};
  try {
    data = JSON.parse(r.data) as Record<string, unknown>;
  } catch {
    data = { unparsable: r.data };
  }
  return { seq: r.seq, ts: r.ts, actor: r.actor, action: r.action, recordingId: r.recording_id, reason: r.reason, data, prevHash: r.prev_hash, hash: r.hash };
}
