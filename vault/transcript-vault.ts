import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { AuditLog, VerifyProblem } from './audit-log';
import { canonicalJson } from './audit-log';
import { VaultError } from './errors';
import { NONCE_SIZE, TAG_SIZE } from './file-format';
import { requireReason, sweepExpiredRows } from './retention';
import { unlinkIfExists, type SiteKeyRing } from './keys';
import type { VaultDb, VaultLogger } from './schema';

/*
 * Transcript file (`<dataDir>/recordings/<id>.cctx`, 0600), beside the recordings and under the same
 * site key ring: magic "CCVTXT01" | u32 BE n | n bytes of JSON header {v, id, callId, createdAt} |
 * nonce (12) | AES-256-GCM ciphertext of the transcript JSON | tag (16). The AAD is SHA-256 of
 * magic..header, so the header cannot be edited nor the body moved to another transcript. A
 * transcript is written once, at call end, so it is one sealed record (no chunks, no recovery).
 */
export const TRANSCRIPT_MAGIC = Buffer.from('CCVTXT01', 'ascii');
/** Above this a transcript is refused (maxUtterances × maxUtteranceChars bounds it far below). */
export const MAX_TRANSCRIPT_BYTES = 64 * 1024 * 1024;

export type TranscriptState = 'final' | 'deleted';

export interface TranscriptInfo {
  id: string;
  callId: string;
  recordingId: string | null;
  createdAt: string;
  bytes: number;
  utterances: number;
  sha256: string;
  keyId: string;
  file: string;
  state: TranscriptState;
  /** 'builtin:pocketsphinx', 'fork:<endpoint>' (comma-separated when several fed the call). */
  source: string;
  /** What the engine's text is worth (its measured quality), shown with every read. */
  quality: string | null;
  legalHold: boolean;
  retentionUntil: string | null;
  deletedAt: string | null;
  queue: string | null;
  intent: string | null;
  agent: string | null;
}

interface TranscriptRow {
  id: string;
  call_id: string;
  recording_id: string | null;
  created_at: string;
  bytes: number;
  utterances: number;
  sha256: string;
  wrapped_key: string | null;
  key_id: string;
  file: string;
  state: TranscriptState;
  source: string;
  quality: string | null;
  legal_hold: number;
  retention_until: string | null;
  deleted_at: string | null;
  queue: string | null;
  intent: string | null;
  agent: string | null;
}

function toInfo(r: TranscriptRow): TranscriptInfo {
  return {
    id: r.id, callId: r.call_id, recordingId: r.recording_id, createdAt: r.created_at, bytes: r.bytes, utterances: r.utterances, sha256: r.sha256,
    keyId: r.key_id, file: r.file, state: r.state, source: r.source, quality: r.quality, legalHold: r.legal_hold === 1,
    retentionUntil: r.retention_until, deletedAt: r.deleted_at, queue: r.queue, intent: r.intent, agent: r.agent,
  };
}

export interface StoreTranscriptOptions {
  callId: string;
  recordingId?: string | null;
  /** The transcript document (JSON-serialisable); its text never leaves this file. */
  document: unknown;
  utterances: number;
  source: string;
  quality?: string | null;
  retentionDays?: number;
  queue?: string | null;
  intent?: string | null;
  agent?: string | null;
  actor?: string;
}

function encodeHeader(h: { id: string; callId: string; createdAt: string }): Buffer {
  const json = Buffer.from(canonicalJson({ v: 1, id: h.id, callId: h.callId, createdAt: h.createdAt }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([TRANSCRIPT_MAGIC, len, json]);
}

/** Decrypts a transcript file's body; throws VAULT_TAMPERED / VAULT_TRUNCATED naming what is wrong. */
function openFile(file: string, key: Buffer): { header: { id: string; callId: string }; plain: Buffer } {
  const raw = readFileSync(file);
  if (raw.length < 12 || !raw.subarray(0, 8).equals(TRANSCRIPT_MAGIC)) throw new VaultError('VAULT_TAMPERED', 'not a transcript file (bad magic)');
  const n = raw.readUInt32BE(8);
  if (n > 4096) throw new VaultError('VAULT_TAMPERED', 'transcript header too long');
  if (raw.length < 12 + n + NONCE_SIZE + TAG_SIZE) throw new VaultError('VAULT_TRUNCATED', `transcript file truncated (${raw.length} bytes)`);
  const headerBytes = raw.subarray(0, 12 + n);
  let header: { id: string; callId: string };
  try {
    header = JSON.parse(headerBytes.subarray(12).toString('utf8')) as { id: string; callId: string };
  } catch {
    throw new VaultError('VAULT_TAMPERED', 'transcript header is not JSON');
  }
  const body = raw.subarray(12 + n);
  try {
    const d = createDecipheriv('aes-256-gcm', key, body.subarray(0, NONCE_SIZE));
    d.setAAD(createHash('sha256').update(headerBytes).digest());
    d.setAuthTag(body.subarray(body.length - TAG_SIZE));
    return { header, plain: Buffer.concat([d.update(body.subarray(NONCE_SIZE, body.length - TAG_SIZE)), d.final()]) };
  } catch {
    throw new VaultError('VAULT_TAMPERED', 'transcript failed authentication (tampered or truncated)');
  }
}

/**
 * Call transcripts in the vault: encrypted files beside the recordings, their own data keys wrapped
 * by the site key, every store/read/delete in the recordings' hash-chained audit log (the entry's
 * recordingId is the transcript id; data names the call and its recording). Retention, legal hold,
 * key rotation and verify treat them like recordings (Vault calls in here).
 */
export class TranscriptVault {
  constructor(
    private readonly db: VaultDb,
    private readonly keys: SiteKeyRing,
    private readonly audit: AuditLog,
    private readonly dir: string,
    private readonly now: () => Date,
    private readonly log: VaultLogger,
  ) {}

  filePath(id: string): string {
    return path.join(this.dir, `${id}.cctx`);
  }

  /** Encrypts and stores a call's transcript (0600, fsynced), indexes it and audits `transcript-stored`. */
  async store(o: StoreTranscriptOptions): Promise<TranscriptInfo> {
    const id = randomUUID();
    const at = this.now();
    const createdAt = at.toISOString();
    const plain = Buffer.from(JSON.stringify(o.document));
    if (plain.length > MAX_TRANSCRIPT_BYTES) throw new VaultError('VAULT_WRITE_FAILED', `transcript of call ${o.callId} is ${plain.length} bytes, above ${MAX_TRANSCRIPT_BYTES}`);
    const sha256 = createHash('sha256').update(plain).digest('hex');
    const dataKey = randomBytes(32);
    this.keys.refresh();
    const keyId = this.keys.activeKeyId;
    const wrapped = this.keys.wrap(dataKey, id, keyId);
    const header = encodeHeader({ id, callId: o.callId, createdAt });
    const nonce = randomBytes(NONCE_SIZE);
    const c = createCipheriv('aes-256-gcm', dataKey, nonce);
    c.setAAD(createHash('sha256').update(header).digest());
    const ct = Buffer.concat([c.update(plain), c.final()]);
    const out = Buffer.concat([header, nonce, ct, c.getAuthTag()]);
    dataKey.fill(0);
    plain.fill(0);
    const file = this.filePath(id);
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, out);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const retentionUntil = o.retentionDays !== undefined ? new Date(at.getTime() + o.retentionDays * 86_400_000).toISOString() : null;
    try {
      await this.db.transaction(async (tx) => {
        const hold = await tx.get<{ call_id: string }>('SELECT call_id FROM legal_holds WHERE call_id = ?', [o.callId]);
        await tx.run(
          `INSERT INTO transcripts (id, call_id, recording_id, created_at, bytes, utterances, sha256, wrapped_key, key_id, file, state, source, quality, legal_hold, retention_until, queue, intent, agent)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'final', ?, ?, ?, ?, ?, ?, ?)`,
          [id, o.callId, o.recordingId ?? null, createdAt, out.length, o.utterances, sha256, wrapped, keyId, path.basename(file), o.source, o.quality ?? null, hold ? 1 : 0, retentionUntil, o.queue ?? null, o.intent ?? null, o.agent ?? null],
        );
        await this.audit.appendIn(tx, {
          actor: o.actor ?? 'system', action: 'transcript-stored', recordingId: id,
          data: { kind: 'transcript', callId: o.callId, recordingId: o.recordingId ?? null, utterances: o.utterances, bytes: out.length, sha256, keyId, retentionUntil, source: o.source },
        });
      });
    } catch (e) {
      unlinkIfExists(file);
      throw e;
    }
    return this.require(id);
  }

  async get(id: string): Promise<TranscriptInfo | undefined> {
    const r = await this.db.get<TranscriptRow>('SELECT * FROM transcripts WHERE id = ?', [id]);
    return r ? toInfo(r) : undefined;
  }

  async require(id: string): Promise<TranscriptInfo> {
    const r = await this.get(id);
    if (!r) throw new VaultError('VAULT_NOT_FOUND', `no transcript ${id}`, { transcriptId: id });
    return r;
  }

  async list(opts: { callId?: string; limit?: number } = {}): Promise<TranscriptInfo[]> {
    const rows = opts.callId
      ? await this.db.all<TranscriptRow>('SELECT * FROM transcripts WHERE call_id = ? ORDER BY created_at DESC, id LIMIT ?', [opts.callId, opts.limit ?? 1000])
      : await this.db.all<TranscriptRow>('SELECT * FROM transcripts ORDER BY created_at DESC, id LIMIT ?', [opts.limit ?? 1000]);
    return rows.map(toInfo);
  }

  /**
   * The newest live transcript named by `ref`: a transcript id, a recording id (the transcript of
   * that recording's call) or a call id. Undefined when there is none.
   */
  async find(ref: string): Promise<TranscriptInfo | undefined> {
    const direct = await this.get(ref);
    if (direct) return direct;
    const rec = await this.db.get<{ call_id: string }>('SELECT call_id FROM recordings WHERE id = ?', [ref]);
    const callId = rec?.call_id ?? ref;
    const r = await this.db.get<TranscriptRow>("SELECT * FROM transcripts WHERE call_id = ? AND state = 'final' ORDER BY created_at DESC, id LIMIT 1", [callId]);
    return r ? toInfo(r) : undefined;
  }

  /**
   * Decrypts a transcript for a reader (the compliance role), audited `transcript-read` with who
   * and why before anything is returned. The plaintext is checked against its indexed SHA-256.
   */
  async read(ref: string, access: { actor: string; reason: string }): Promise<{ info: TranscriptInfo; transcript: unknown }> {
    const reason = requireReason(access.reason, 'reading a transcript');
    const info = await this.find(ref);
    if (!info || info.state !== 'final') throw new VaultError('VAULT_NOT_FOUND', `no transcript for ${ref}`, { ref });
    const row = await this.db.get<TranscriptRow>('SELECT * FROM transcripts WHERE id = ?', [info.id]);
    if (!row?.wrapped_key) throw new VaultError('VAULT_KEY_UNAVAILABLE', `transcript ${info.id} has no data key`, { transcriptId: info.id });
    const key = this.keys.unwrap(row.wrapped_key, row.id, row.key_id);
    let plain: Buffer;
    try {
      plain = openFile(path.join(this.dir, row.file), key).plain;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new VaultError('VAULT_NOT_FOUND', `transcript file ${row.file} is missing`, { transcriptId: row.id });
      throw e;
    } finally {
      key.fill(0);
    }
    if (createHash('sha256').update(plain).digest('hex') !== row.sha256) throw new VaultError('VAULT_TAMPERED', `transcript ${row.id} does not match its SHA-256`, { transcriptId: row.id });
    await this.audit.append({ actor: access.actor, action: 'transcript-read', recordingId: row.id, reason, data: { kind: 'transcript', callId: row.call_id } });
    return { info, transcript: JSON.parse(plain.toString('utf8')) as unknown };
  }

  /** @internal Vault.setLegalHold: the call's transcripts follow its recordings. */
  async setHoldIn(tx: VaultDb, callId: string, on: boolean, actor: string, reason: string): Promise<number> {
    const ids = await tx.all<{ id: string }>("SELECT id FROM transcripts WHERE call_id = ? AND state != 'deleted'", [callId]);
    await tx.run("UPDATE transcripts SET legal_hold = ? WHERE call_id = ? AND state != 'deleted'", [on ? 1 : 0, callId]);
    for (const { id } of ids) await this.audit.appendIn(tx, { actor, action: on ? 'hold-set' : 'hold-cleared', recordingId: id, reason, data: { kind: 'transcript', callId } });
    return ids.length;
  }

  /** Deletes a transcript: the row loses its data key (a backup copy of the file is unreadable), audited, file removed. Refused under hold. */
  async deleteTranscript(id: string, actor: string, reason: string): Promise<void> {
    const why = requireReason(reason, 'deleting a transcript');
    const row = await this.db.transaction(async (tx) => {
      const r = await tx.get<TranscriptRow>('SELECT * FROM transcripts WHERE id = ?', [id]);
      if (!r || r.state === 'deleted') throw new VaultError('VAULT_NOT_FOUND', `no transcript ${id}`, { transcriptId: id });
      if (r.legal_hold === 1) throw new VaultError('VAULT_LEGAL_HOLD', `transcript ${id} is on legal hold`, { transcriptId: id });
      await tx.run("UPDATE transcripts SET state = 'deleted', deleted_at = ?, wrapped_key = NULL WHERE id = ?", [this.now().toISOString(), id]);
      await this.audit.appendIn(tx, { actor, action: 'transcript-deleted', recordingId: id, reason: why, data: { kind: 'transcript', callId: r.call_id, sha256: r.sha256, retentionUntil: r.retention_until } });
      return r;
    });
    unlinkIfExists(path.join(this.dir, row.file));
  }

  /** @internal Vault.sweepExpired: transcripts past retention, except those on hold. */
  async sweepExpired(now: Date, actor: string): Promise<string[]> {
    const deleted = await sweepExpiredRows(this.db, 'transcripts', now, (id) => this.deleteTranscript(id, actor, 'retention period expired'));
    if (deleted.length) this.log.info({ deleted: deleted.length }, 'retention sweep deleted expired transcripts');
    return deleted;
  }

  /** @internal Vault.rotateSiteKey: re-wraps every transcript data key under `to`. */
  async rewrapAll(to: string): Promise<number> {
    let n = 0;
    const rows = await this.db.all<{ id: string }>('SELECT id FROM transcripts WHERE wrapped_key IS NOT NULL AND key_id != ?', [to]);
    for (const { id } of rows) {
      await this.db.transaction(async (tx) => {
        const r = await tx.get<TranscriptRow>('SELECT * FROM transcripts WHERE id = ?', [id]);
        if (!r || !r.wrapped_key || r.key_id === to) return;
        const dk = this.keys.unwrap(r.wrapped_key, r.id, r.key_id);
        const wrapped = this.keys.wrap(dk, r.id, to);
        dk.fill(0);
        await tx.run('UPDATE transcripts SET wrapped_key = ?, key_id = ? WHERE id = ? AND key_id = ?', [wrapped, to, r.id, r.key_id]);
        n++;
      });
    }
    return n;
  }

  /** @internal Transcripts still wrapped under `keyId`. */
  async countWrappedUnder(keyId: string): Promise<number> {
    const r = await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM transcripts WHERE wrapped_key IS NOT NULL AND key_id = ?', [keyId]);
    return r?.n ?? 0;
  }

  /** Every live transcript: file present, authentic, its SHA-256 as indexed and as the audit log recorded it. */
  async verifyFiles(): Promise<VerifyProblem[]> {
    const problems: VerifyProblem[] = [];
    const audited = new Map<string, string>();
    for (const a of await this.db.all<{ recording_id: string; data: string }>("SELECT recording_id, data FROM recording_audit WHERE action = 'transcript-stored' ORDER BY seq")) {
      try {
        const d = JSON.parse(a.data) as { sha256?: string };
        if (d.sha256) audited.set(a.recording_id, d.sha256);
      } catch {
        /* reported by the chain check */
      }
    }
    for (const r of await this.db.all<TranscriptRow>("SELECT * FROM transcripts WHERE state = 'final' ORDER BY created_at, id")) {
      const file = path.join(this.dir, r.file);
      const name = `transcript ${r.id} (${r.file}, call ${r.call_id})`;
      if (!existsSync(file)) {
        problems.push({ code: 'VAULT_FILE_MISSING', recordingId: r.id, file, message: `${name}: file missing` });
        continue;
      }
      if (!r.wrapped_key) {
        problems.push({ code: 'VAULT_KEY_UNAVAILABLE', recordingId: r.id, file, message: `${name}: no data key` });
        continue;
      }
      let key: Buffer;
      try {
        key = this.keys.unwrap(r.wrapped_key, r.id, r.key_id);
      } catch (e) {
        problems.push({ code: 'VAULT_KEY_UNAVAILABLE', recordingId: r.id, file, message: `${name}: ${(e as Error).message}` });
        continue;
      }
      try {
        const { header, plain } = openFile(file, key);
        if (header.id !== r.id) problems.push({ code: 'VAULT_TAMPERED', recordingId: r.id, file, message: `${name}: file header names transcript ${header.id}` });
        const digest = createHash('sha256').update(plain).digest('hex');
        if (digest !== r.sha256) problems.push({ code: 'VAULT_HASH_MISMATCH', recordingId: r.id, file, message: `${name}: SHA-256 ${digest} does not match the index (${r.sha256})` });
        else if (audited.get(r.id) !== r.sha256) problems.push({ code: 'VAULT_METADATA_MISMATCH', recordingId: r.id, file, message: `${name}: index SHA-256 differs from the audit log's ${audited.get(r.id) ?? '(no transcript-stored entry)'}` });
      } catch (e) {
        problems.push({ code: e instanceof VaultError && e.code === 'VAULT_TRUNCATED' ? 'VAULT_TRUNCATED' : 'VAULT_TAMPERED', recordingId: r.id, file, message: `${name}: ${(e as Error).message}` });
      } finally {
        key.fill(0);
      }
    }
    return problems;
  }
}
