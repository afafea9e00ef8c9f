import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID, sign as edSign, verify as edVerify, createPublicKey, type Hash, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fdatasync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, statSync, writevSync } from 'node:fs';
import { open as openAsync, rename, rm, statfs, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { G711Codec } from '../media/tones/g711';
import type { RecorderEvent, RecordingSink } from '../media/recorder/recorder';
import { g711WavHeader, RECORDING_CHANNELS, RECORDING_SAMPLE_RATE, WAV_HEADER_SIZE } from '../media/recorder/wav';
import { AuditLog, canonicalJson, type AuditInput, type VerifyProblem } from './audit-log';
import { VaultError } from './errors';
import { requireReason, sweepExpiredRows } from './retention';
import { ensurePrivateDir, loadSigningKey, SiteKeyRing, unlinkIfExists } from './keys';
import type { VaultDb, VaultLogger } from './schema';
import { TranscriptVault } from './transcript-vault';

/*
 * Recording file (`<dataDir>/recordings/<id>.ccrec`, 0600). Nothing in it is plain audio:
 *   magic "CCVAULT1" | u32 BE n | n bytes of JSON header {v, id, codec, channels, rate, chunkSize, createdAt}
 *   chunk 0 | chunk 1 | …     chunk = nonce (12) | AES-256-GCM ciphertext | tag (16)
 * Every chunk holds chunkSize bytes of plaintext except the last. The AAD of chunk i is
 * SHA-256(magic..header) ‖ u64 BE i: a chunk cannot be moved, reordered or spliced into another
 * recording, and the header cannot be edited. The plaintext is the interleaved stereo G.711 data
 * of the WAV (the 58-byte WAV header is derived from the metadata when read). A crash loses at
 * most the chunk being filled.
 */
export const FILE_MAGIC = Buffer.from('CCVAULT1', 'ascii');
export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
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

interface RecordingRow {
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

function toInfo(r: RecordingRow): RecordingInfo {
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

function chunkAad(headerHash: Buffer, index: number): Buffer {
  const aad = Buffer.alloc(40);
  headerHash.copy(aad, 0);
  aad.writeBigUInt64BE(BigInt(index), 32);
  return aad;
}

function encodeHeader(h: { id: string; codec: G711Codec; chunkSize: number; createdAt: string }): Buffer {
  const json = Buffer.from(canonicalJson({ v: 1, id: h.id, codec: h.codec, channels: RECORDING_CHANNELS, rate: RECORDING_SAMPLE_RATE, chunkSize: h.chunkSize, createdAt: h.createdAt }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([FILE_MAGIC, len, json]);
}

/** Low-level synchronous access to one recording file's chunks (verify, recovery). */
class ChunkFile {
  readonly headerLen: number;
  readonly headerHash: Buffer;
  readonly header: { id: string; chunkSize: number };
  readonly size: number;

  constructor(
    readonly fd: number,
    private readonly key: Buffer,
  ) {
    this.size = fstatSync(fd).size;
    const pre = Buffer.alloc(12);
    if (readSync(fd, pre, 0, 12, 0) < 12 || !pre.subarray(0, 8).equals(FILE_MAGIC)) throw new VaultError('VAULT_TAMPERED', 'not a vault file (bad magic)');
    const n = pre.readUInt32BE(8);
    if (n > 4096) throw new VaultError('VAULT_TAMPERED', 'vault file header too long');
    const full = Buffer.alloc(12 + n);
    if (readSync(fd, full, 0, full.length, 0) < full.length) throw new VaultError('VAULT_TRUNCATED', 'vault file header truncated');
    this.headerLen = full.length;
    this.headerHash = createHash('sha256').update(full).digest();
    try {
      this.header = JSON.parse(full.subarray(12).toString('utf8')) as { id: string; chunkSize: number };
    } catch {
      throw new VaultError('VAULT_TAMPERED', 'vault file header is not JSON');
    }
  }

  recordSize(plainLen: number): number {
    return NONCE_SIZE + plainLen + TAG_SIZE;
  }

  offsetOf(index: number): number {
    return this.headerLen + index * this.recordSize(this.header.chunkSize);
  }

  /** Decrypts chunk `index` of `plainLen` bytes; throws VAULT_TRUNCATED / VAULT_TAMPERED. */
  read(index: number, plainLen: number): Buffer {
    const rec = Buffer.alloc(this.recordSize(plainLen));
    const got = readSync(this.fd, rec, 0, rec.length, this.offsetOf(index));
    if (got < rec.length) throw new VaultError('VAULT_TRUNCATED', `chunk ${index} truncated (${got} of ${rec.length} bytes)`, { chunk: index });
    return decryptRecord(this.key, this.headerHash, index, rec);
  }
}

function decryptRecord(key: Buffer, headerHash: Buffer, index: number, rec: Buffer): Buffer {
  try {
    const d = createDecipheriv('aes-256-gcm', key, rec.subarray(0, NONCE_SIZE));
    d.setAAD(chunkAad(headerHash, index));
    d.setAuthTag(rec.subarray(rec.length - TAG_SIZE));
    return Buffer.concat([d.update(rec.subarray(NONCE_SIZE, rec.length - TAG_SIZE)), d.final()]);
  } catch {
    throw new VaultError('VAULT_TAMPERED', `chunk ${index} failed authentication`, { chunk: index });
  }
}

export interface CreateRecordingOptions {
  callId: string;
  codec: G711Codec;
  /** Days to keep; absent: kept until deleted by hand. */
  retentionDays?: number;
  queue?: string;
  intent?: string;
  agent?: string;
  actor?: string;
  /** Called once if writing fails (e.g. ENOSPC): the call goes on, the recording stops. */
  onWriteFailure?: (err: Error) => void;
}

/**
 * The open file of one recording: a RecordingSink for the Recorder. write() copies into a
 * preallocated chunk buffer; a full chunk is encrypted and appended (synchronously, every
 * chunkSize/16000 s per call: ~4 s at 64 KiB) and synced to disk off the event loop.
 * finalize() seals the last chunk, waits for the syncs, fsyncs and records size, duration and SHA-256.
 */
export class RecordingWriter implements RecordingSink {
  private readonly buf: Buffer;
  private fill = 0;
  private chunks = 0;
  private bytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private failure: Error | undefined;
  private finished = false;
  /** fdatasync of sealed chunks, on libuv's thread pool so the event loop never waits on the disk. */
  private durable: Promise<void> = Promise.resolve();

  /** @internal created by Vault.create() */
  constructor(
    private readonly vault: Vault,
    readonly id: string,
    readonly callId: string,
    private fd: number,
    private readonly key: Buffer,
    private readonly headerHash: Buffer,
    readonly chunkSize: number,
    private readonly onWriteFailure: ((err: Error) => void) | undefined,
  ) {
    this.buf = Buffer.alloc(chunkSize);
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  get bytesWritten(): number {
    return this.bytes + this.fill;
  }

  write(data: Buffer, offset: number, length: number): void {
    if (this.finished || this.failure) return;
    let off = offset;
    let left = length;
    while (left > 0) {
      const n = Math.min(left, this.chunkSize - this.fill);
      data.copy(this.buf, this.fill, off, off + n);
      this.fill += n;
      off += n;
      left -= n;
      if (this.fill === this.chunkSize) this.seal();
      if (this.failure) return;
    }
  }

  /** Records a pause/resume (or any recording event) in the audit log. */
  audit(input: Omit<AuditInput, 'recordingId'>): Promise<void> {
    return this.vault.audit.append({ ...input, recordingId: this.id }).then(() => undefined);
  }

  /** A Recorder `onEvent` that audits pauses and resumes (failures are logged, never thrown). */
  readonly onRecorderEvent = (ev: RecorderEvent): void => {
    const p = ev.type === 'paused'
      ? this.audit({ actor: ev.actor, action: 'paused', reason: ev.reason, data: { atMs: ev.atMs } })
      : this.audit({ actor: ev.actor, action: 'resumed', data: { atMs: ev.atMs, pausedMs: ev.pausedMs } });
    p.catch((err: unknown) => this.vault.log.error({ err, recordingId: this.id, callId: this.callId }, 'recording audit write failed'));
  };

  /** Seals the last chunk, closes the file and marks the recording final. */
  async finalize(opts: { pausedMs?: number } = {}): Promise<RecordingInfo> {
    if (this.finished) throw new VaultError('VAULT_BAD_STATE', `recording ${this.id} already finalised`);
    if (this.fill > 0 && !this.failure) this.seal();
    this.finished = true;
    await this.durable;
    try {
      if (!this.failure) fsyncSync(this.fd);
    } catch (e) {
      this.failure = e as Error;
    }
    closeSync(this.fd);
    this.fd = -1;
    this.key.fill(0);
    const sha256 = this.hash.digest('hex');
    const endReason = this.failure ? 'write-failed' : 'completed';
    return this.vault.markFinal(this.id, {
      bytes: this.bytes, chunks: this.chunks, sha256, endReason, recovered: false, pausedMs: opts.pausedMs ?? 0,
      auditAction: 'finalized', auditData: this.failure ? { error: this.failure.message } : {},
    });
  }

  private seal(): void {
    const plain = this.buf.subarray(0, this.fill);
    try {
      const nonce = randomBytes(NONCE_SIZE);
      const c = createCipheriv('aes-256-gcm', this.key, nonce);
      c.setAAD(chunkAad(this.headerHash, this.chunks));
      const ct = c.update(plain);
      const fin = c.final();
      writevSync(this.fd, [nonce, ct, fin, c.getAuthTag()]);
    } catch (e) {
      this.failure = e as Error;
      this.vault.log.error({ err: e, recordingId: this.id, callId: this.callId, code: 'VAULT_WRITE_FAILED' }, 'recording write failed: recording stopped, call continues');
      this.onWriteFailure?.(e as Error);
      return;
    }
    this.hash.update(plain);
    this.bytes += this.fill;
    this.chunks++;
    this.fill = 0;
    // Each sealed chunk reaches the disk (power loss too), at most one sync in flight per recording.
    const fd = this.fd;
    this.durable = this.durable.then(
      () =>
        new Promise<void>((resolve) =>
          fdatasync(fd, (err) => {
            if (err) this.vault.log.warn({ err, recordingId: this.id, callId: this.callId }, 'recording chunk sync failed');
            resolve();
          }),
        ),
    );
  }
}

export interface VaultOptions {
  dataDir: string;
  db: VaultDb;
  log: VaultLogger;
  chunkSize?: number;
  now?: () => Date;
}

export interface ExportManifest {
  format: 'ccedge-recording-export/1';
  recordingId: string;
  callId: string;
  createdAt: string;
  codec: G711Codec;
  wavFormatTag: number;
  channels: string;
  sampleRate: number;
  durationMs: number;
  audioBytes: number;
  audioSha256: string;
  wavFile: string;
  wavBytes: number;
  wavSha256: string;
  exportedAt: string;
  exportedBy: string;
  reason: string;
  auditSeq: number;
  auditHash: string;
  signature?: { alg: 'Ed25519'; publicKey: string; value: string };
}

/**
 * The encrypted on-site recording vault: files under `<dataDir>/recordings`, keys under
 * `<dataDir>/keys`, index and audit log in sqlite.
 */
export class Vault {
  readonly audit: AuditLog;
  /** Call transcripts, encrypted beside the recordings under the same keys, audit, retention and hold. */
  readonly transcripts: TranscriptVault;
  readonly recordingsDir: string;
  readonly keysDir: string;
  private readonly keys: SiteKeyRing;
  private readonly chunkSize: number;
  private readonly now: () => Date;
  private signing: { privateKey: KeyObject; publicKeyPem: string } | undefined;

  private constructor(
    private readonly opts: VaultOptions,
    readonly db: VaultDb,
    readonly log: VaultLogger,
  ) {
    this.recordingsDir = path.join(opts.dataDir, 'recordings');
    this.keysDir = path.join(opts.dataDir, 'keys');
    ensurePrivateDir(this.recordingsDir);
    this.keys = SiteKeyRing.load(this.keysDir);
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.now = opts.now ?? (() => new Date());
    this.audit = new AuditLog(db, this.now);
    this.transcripts = new TranscriptVault(db, this.keys, this.audit, this.recordingsDir, this.now, log);
  }

  /** Opens the vault (creating `recordings/` and `keys/` 0700 and `keys/site.key` 0600 if absent). */
  static open(opts: VaultOptions): Vault {
    return new Vault(opts, opts.db, opts.log);
  }

  get activeKeyId(): string {
    this.keys.refresh();
    return this.keys.activeKeyId;
  }

  filePath(id: string): string {
    return path.join(this.recordingsDir, `${id}.ccrec`);
  }

  /** Starts a recording: writes the file header, inserts the `open` row and audits `created`. */
  async create(o: CreateRecordingOptions): Promise<RecordingWriter> {
    const id = randomUUID();
    const createdAt = this.now().toISOString();
    const dataKey = randomBytes(32);
    this.keys.refresh(); // a rotation by another process (CLI) takes effect for new recordings
    const keyId = this.keys.activeKeyId;
    const wrapped = this.keys.wrap(dataKey, id, keyId);
    const header = encodeHeader({ id, codec: o.codec, chunkSize: this.chunkSize, createdAt });
    const file = this.filePath(id);
    const fd = openSync(file, 'wx', 0o600);
    try {
      writevSync(fd, [header]);
      const retentionUntil = o.retentionDays !== undefined ? new Date(this.now().getTime() + o.retentionDays * 86_400_000).toISOString() : null;
      await this.db.transaction(async (tx) => {
        const hold = await tx.get<{ call_id: string }>('SELECT call_id FROM legal_holds WHERE call_id = ?', [o.callId]);
        await tx.run(
          `INSERT INTO recordings (id, call_id, created_at, codec, channels, sample_rate, chunk_size, wrapped_key, key_id, file, state, legal_hold, retention_until, queue, intent, agent)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)`,
          [id, o.callId, createdAt, o.codec, RECORDING_CHANNELS, RECORDING_SAMPLE_RATE, this.chunkSize, wrapped, keyId, path.basename(file), hold ? 1 : 0, retentionUntil, o.queue ?? null, o.intent ?? null, o.agent ?? null],
        );
        await this.audit.appendIn(tx, { actor: o.actor ?? 'system', action: 'created', recordingId: id, data: { callId: o.callId, codec: o.codec, keyId, retentionUntil, queue: o.queue, intent: o.intent, agent: o.agent } });
      });
    } catch (e) {
      closeSync(fd);
      unlinkIfExists(file);
      throw e;
    }
    const headerHash = createHash('sha256').update(header).digest();
    return new RecordingWriter(this, id, o.callId, fd, dataKey, headerHash, this.chunkSize, o.onWriteFailure);
  }

  /** @internal state open → final, with its audit entry, in one transaction. */
  async markFinal(
    id: string,
    f: { bytes: number; chunks: number; sha256: string; endReason: string; recovered: boolean; pausedMs: number; auditAction: 'finalized' | 'recovered'; auditData: Record<string, unknown> },
  ): Promise<RecordingInfo> {
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

  private async row(id: string): Promise<RecordingRow> {
    const r = await this.db.get<RecordingRow>('SELECT * FROM recordings WHERE id = ?', [id]);
    if (!r) throw new VaultError('VAULT_NOT_FOUND', `no recording ${id}`, { recordingId: id });
    return r;
  }

  private dataKeyOf(r: RecordingRow): Buffer {
    if (!r.wrapped_key) throw new VaultError('VAULT_KEY_UNAVAILABLE', `recording ${r.id} has no data key (deleted)`, { recordingId: r.id });
    return this.keys.unwrap(r.wrapped_key, r.id, r.key_id);
  }

  /** Size of the WAV as served (header + data). */
  static wavSize(r: { bytes: number }): number {
    return WAV_HEADER_SIZE + r.bytes;
  }

  /**
   * The recording as a WAV, decrypted on the fly. `start`/`end` are byte offsets in the WAV,
   * inclusive like HTTP Range (default: the whole file). Every call is audited as `played`
   * with who and why. A chunk that fails authentication errors the stream (VAULT_TAMPERED).
   */
  async openReader(
    id: string,
    access: { actor: string; reason: string; start?: number; end?: number },
  ): Promise<{ stream: Readable; size: number; start: number; end: number; contentType: 'audio/wav'; info: RecordingInfo }> {
    const reason = requireReason(access.reason, 'playing a recording');
    const r = await this.row(id);
    if (r.state !== 'final') throw new VaultError(r.state === 'deleted' ? 'VAULT_NOT_FOUND' : 'VAULT_BAD_STATE', `recording ${id} is ${r.state}`, { recordingId: id });
    const size = Vault.wavSize(r);
    const start = access.start ?? 0;
    const end = access.end ?? size - 1;
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end >= size) {
      throw new VaultError('VAULT_RANGE', `range ${start}-${end} is outside 0-${size - 1}`, { size });
    }
    const key = this.dataKeyOf(r);
    await this.audit.append({ actor: access.actor, action: 'played', recordingId: id, reason, data: { start, end, size } });
    return { stream: Readable.from(this.wavBytes(r, key, start, end + 1)), size, start, end, contentType: 'audio/wav', info: toInfo(r) };
  }

  /** WAV bytes [start, endExcl) of a final recording. */
  private async *wavBytes(r: RecordingRow, key: Buffer, start: number, endExcl: number): AsyncGenerator<Buffer> {
    try {
      if (start < WAV_HEADER_SIZE) yield g711WavHeader(r.codec, r.bytes).subarray(start, Math.min(endExcl, WAV_HEADER_SIZE));
      const dStart = Math.max(start, WAV_HEADER_SIZE) - WAV_HEADER_SIZE;
      const dEnd = endExcl - WAV_HEADER_SIZE;
      if (dEnd > dStart) yield* this.dataBytes(r, key, dStart, dEnd);
    } finally {
      key.fill(0);
    }
  }

  /** Decrypted audio data [start, endExcl), chunk by chunk. */
  private async *dataBytes(r: RecordingRow, key: Buffer, start: number, endExcl: number): AsyncGenerator<Buffer> {
    const fh: FileHandle = await openAsync(path.join(this.recordingsDir, r.file), 'r').catch((e: NodeJS.ErrnoException) => {
      throw new VaultError(e.code === 'ENOENT' ? 'VAULT_NOT_FOUND' : 'VAULT_TAMPERED', `recording file ${r.file}: ${e.message}`, { recordingId: r.id });
    });
    try {
      const pre = Buffer.alloc(12);
      await fh.read(pre, 0, 12, 0);
      if (!pre.subarray(0, 8).equals(FILE_MAGIC)) throw new VaultError('VAULT_TAMPERED', `recording ${r.id}: not a vault file`, { recordingId: r.id });
      const header = Buffer.alloc(12 + pre.readUInt32BE(8));
      const got = await fh.read(header, 0, header.length, 0);
      if (got.bytesRead < header.length) throw new VaultError('VAULT_TRUNCATED', `recording ${r.id}: header truncated`, { recordingId: r.id });
      const headerHash = createHash('sha256').update(header).digest();
      const C = r.chunk_size;
      for (let i = Math.floor(start / C); i * C < endExcl; i++) {
        const plainLen = Math.min(C, r.bytes - i * C);
        const rec = Buffer.alloc(NONCE_SIZE + plainLen + TAG_SIZE);
        const { bytesRead } = await fh.read(rec, 0, rec.length, header.length + i * (NONCE_SIZE + C + TAG_SIZE));
        if (bytesRead < rec.length) throw new VaultError('VAULT_TRUNCATED', `recording ${r.id}: chunk ${i} truncated`, { recordingId: r.id, chunk: i });
        let plain: Buffer;
        try {
          plain = decryptRecord(key, headerHash, i, rec);
        } catch (e) {
          throw new VaultError('VAULT_TAMPERED', `recording ${r.id}: chunk ${i} failed authentication`, { recordingId: r.id, chunk: i, cause: (e as Error).message });
        }
        const from = Math.max(start - i * C, 0);
        const to = Math.min(endExcl - i * C, plainLen);
        yield plain.subarray(from, to);
      }
    } finally {
      await fh.close();
    }
  }

  /**
   * Checks every recording file: present, header, every chunk's tag, size, SHA-256 against the
   * row and against the hash the audit log recorded at finalisation.
   */
  async verifyFiles(): Promise<VerifyProblem[]> {
    const problems: VerifyProblem[] = [];
    const rows = await this.db.all<RecordingRow>("SELECT * FROM recordings WHERE state != 'deleted' ORDER BY created_at, id");
    const finalHashes = new Map<string, string>();
    for (const a of await this.db.all<{ recording_id: string; data: string }>("SELECT recording_id, data FROM recording_audit WHERE action IN ('finalized', 'recovered') ORDER BY seq")) {
      try {
        const d = JSON.parse(a.data) as { sha256?: string };
        if (d.sha256) finalHashes.set(a.recording_id, d.sha256);
      } catch {
        /* an unparsable entry is reported by the chain check */
      }
    }
    for (const r of rows) {
      const file = path.join(this.recordingsDir, r.file);
      const name = `recording ${r.id} (${r.file})`;
      if (!existsSync(file)) {
        problems.push({ code: 'VAULT_FILE_MISSING', recordingId: r.id, file, message: `${name}: file missing` });
        continue;
      }
      if (r.state === 'open') continue; // being written, or waiting for recoverOpen()
      let key: Buffer;
      try {
        key = this.dataKeyOf(r);
      } catch (e) {
        problems.push({ code: 'VAULT_KEY_UNAVAILABLE', recordingId: r.id, file, message: `${name}: ${(e as Error).message}` });
        continue;
      }
      const fd = openSync(file, 'r');
      try {
        const cf = new ChunkFile(fd, key);
        if (cf.header.id !== r.id) problems.push({ code: 'VAULT_TAMPERED', recordingId: r.id, file, message: `${name}: file header names recording ${cf.header.id}` });
        const hash = createHash('sha256');
        let ok = true;
        for (let i = 0; i < r.chunks; i++) {
          const len = Math.min(r.chunk_size, r.bytes - i * r.chunk_size);
          try {
            hash.update(cf.read(i, len));
          } catch (e) {
            const code = e instanceof VaultError && e.code === 'VAULT_TRUNCATED' ? 'VAULT_TRUNCATED' : 'VAULT_TAMPERED';
            problems.push({
              code, recordingId: r.id, file, chunk: i,
              message: code === 'VAULT_TRUNCATED'
                ? `${name}: truncated at chunk ${i} (file is ${cf.size} bytes, expected ${cf.offsetOf(r.chunks - 1) + cf.recordSize(r.bytes - (r.chunks - 1) * r.chunk_size)})`
                : `${name}: chunk ${i} failed authentication (tampered)`,
            });
            ok = false;
            if (code === 'VAULT_TRUNCATED') break;
          }
        }
        const expectedSize = r.chunks === 0 ? cf.headerLen : cf.offsetOf(r.chunks - 1) + cf.recordSize(r.bytes - (r.chunks - 1) * r.chunk_size);
        if (ok && cf.size > expectedSize) problems.push({ code: 'VAULT_TAMPERED', recordingId: r.id, file, message: `${name}: ${cf.size - expectedSize} unexpected bytes after the last chunk` });
        if (ok) {
          const digest = hash.digest('hex');
          if (digest !== r.sha256) problems.push({ code: 'VAULT_HASH_MISMATCH', recordingId: r.id, file, message: `${name}: SHA-256 of the audio ${digest} does not match the index (${r.sha256 ?? 'none'})` });
          const audited = finalHashes.get(r.id);
          if (audited !== r.sha256) problems.push({ code: 'VAULT_METADATA_MISMATCH', recordingId: r.id, file, message: `${name}: index SHA-256 ${r.sha256 ?? 'none'} differs from the audit log's ${audited ?? '(no finalisation entry)'}` });
        }
      } catch (e) {
        problems.push({ code: e instanceof VaultError && e.code === 'VAULT_TRUNCATED' ? 'VAULT_TRUNCATED' : 'VAULT_TAMPERED', recordingId: r.id, file, message: `${name}: ${(e as Error).message}` });
      } finally {
        closeSync(fd);
        key.fill(0);
      }
    }
    return problems;
  }

  /** `ccedge recordings verify`: the audit chain and every file. Empty: all good. */
  verify(): Promise<VerifyProblem[]> {
    return this.audit.verify({ verifyFiles: async () => [...(await this.verifyFiles()), ...(await this.transcripts.verifyFiles())] });
  }

  /**
   * At start, before any recording: finalises recordings left `open` by a crash. Complete chunks
   * that authenticate are kept (and a short last chunk, if it was sealed); a torn tail is cut
   * off; the hash is recomputed from what decrypts; state final, recovered, end_reason
   * `interrupted`, audited as `recovered`.
   */
  async recoverOpen(): Promise<RecordingInfo[]> {
    const out: RecordingInfo[] = [];
    const rows = await this.db.all<RecordingRow>("SELECT * FROM recordings WHERE state = 'open' ORDER BY created_at");
    for (const r of rows) {
      const file = path.join(this.recordingsDir, r.file);
      const hash = createHash('sha256');
      let bytes = 0;
      let chunks = 0;
      const data: Record<string, unknown> = {};
      if (!existsSync(file)) {
        data.fileMissing = true;
      } else {
        const key = this.dataKeyOf(r);
        const fd = openSync(file, 'r+');
        try {
          const cf = new ChunkFile(fd, key);
          const full = cf.recordSize(r.chunk_size);
          let pos = cf.headerLen;
          let stoppedBy: string | undefined;
          while (pos < cf.size) {
            const left = cf.size - pos;
            const plainLen = left >= full ? r.chunk_size : left - NONCE_SIZE - TAG_SIZE;
            if (plainLen <= 0) {
              stoppedBy = 'partial chunk';
              break;
            }
            try {
              const plain = cf.read(chunks, plainLen);
              hash.update(plain);
              bytes += plain.length;
              chunks++;
              pos += cf.recordSize(plainLen);
              if (plainLen < r.chunk_size) break; // a sealed short last chunk
            } catch {
              stoppedBy = left >= full ? 'chunk failed authentication' : 'partial chunk';
              break;
            }
          }
          data.discardedBytes = cf.size - pos;
          if (stoppedBy) data.stoppedBy = stoppedBy;
          // Cut a torn tail (less than one full chunk) so the file is exactly what the index says;
          // a full chunk that fails authentication is evidence and stays for `verify` to report.
          if (cf.size > pos && cf.size - pos < full) ftruncateSync(fd, pos);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
          key.fill(0);
        }
      }
      const info = await this.markFinal(r.id, {
        bytes, chunks, sha256: hash.digest('hex'), endReason: 'interrupted', recovered: true, pausedMs: r.paused_ms, auditAction: 'recovered', auditData: data,
      });
      this.log.warn({ recordingId: r.id, callId: r.call_id, bytes, chunks, ...data }, 'recording left open by a crash recovered');
      out.push(info);
    }
    return out;
  }

  /**
   * Re-wraps every data key under a new site key. The new key is `keys/site.key.next` until
   * every row is re-wrapped (one transaction per recording); then it replaces `site.key`. An
   * interrupted rotation resumes with the same new key on the next call.
   */
  async rotateSiteKey(actor: string, reason = 'key rotation'): Promise<{ from: string; to: string; rewrapped: number }> {
    const { from, to } = this.keys.beginRotation();
    let rewrapped = 0;
    const rows = await this.db.all<{ id: string }>('SELECT id FROM recordings WHERE wrapped_key IS NOT NULL AND key_id != ?', [to]);
    for (const { id } of rows) {
      await this.db.transaction(async (tx) => {
        const r = await tx.get<RecordingRow>('SELECT * FROM recordings WHERE id = ?', [id]);
        if (!r || !r.wrapped_key || r.key_id === to) return;
        const dk = this.keys.unwrap(r.wrapped_key, r.id, r.key_id);
        const wrapped = this.keys.wrap(dk, r.id, to);
        dk.fill(0);
        await tx.run('UPDATE recordings SET wrapped_key = ?, key_id = ? WHERE id = ? AND key_id = ?', [wrapped, to, r.id, r.key_id]);
        rewrapped++;
      });
    }
    rewrapped += await this.transcripts.rewrapAll(to);
    const left = await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM recordings WHERE wrapped_key IS NOT NULL AND key_id = ?', [from]);
    if ((left?.n ?? 0) > 0) throw new VaultError('VAULT_BAD_STATE', `${left?.n} recordings still use site key ${from}; rotation not completed`);
    const leftT = await this.transcripts.countWrappedUnder(from);
    if (leftT > 0) throw new VaultError('VAULT_BAD_STATE', `${leftT} transcripts still use site key ${from}; rotation not completed`);
    await this.audit.append({ actor, action: 'key-rotated', reason, data: { from, to, rewrapped } });
    this.keys.completeRotation();
    this.log.info({ from, to, rewrapped }, 'site key rotated');
    return { from, to, rewrapped };
  }

  /** Sets or clears a legal hold on a call's recordings (and on recordings it makes later). */
  async setLegalHold(callId: string, on: boolean, actor: string, reason: string): Promise<number> {
    const why = requireReason(reason, on ? 'a legal hold' : 'clearing a legal hold');
    return this.db.transaction(async (tx) => {
      if (on) await tx.run('INSERT OR REPLACE INTO legal_holds (call_id, set_at, actor, reason) VALUES (?, ?, ?, ?)', [callId, this.now().toISOString(), actor, why]);
      else await tx.run('DELETE FROM legal_holds WHERE call_id = ?', [callId]);
      const ids = await tx.all<{ id: string }>("SELECT id FROM recordings WHERE call_id = ? AND state != 'deleted'", [callId]);
      await tx.run("UPDATE recordings SET legal_hold = ? WHERE call_id = ? AND state != 'deleted'", [on ? 1 : 0, callId]);
      const action = on ? 'hold-set' : 'hold-cleared';
      const transcripts = await this.transcripts.setHoldIn(tx, callId, on, actor, why);
      if (ids.length === 0 && transcripts === 0) await this.audit.appendIn(tx, { actor, action, reason: why, data: { callId } });
      for (const { id } of ids) await this.audit.appendIn(tx, { actor, action, recordingId: id, reason: why, data: { callId } });
      return ids.length;
    });
  }

  /**
   * Deletes one recording: the row becomes `deleted` and loses its wrapped data key (so even a
   * backup copy of the file is unreadable), audited; then the file is removed. Refused under hold.
   */
  async deleteRecording(id: string, actor: string, reason: string): Promise<void> {
    const why = requireReason(reason, 'deleting a recording');
    const r = await this.db.transaction(async (tx) => {
      const row = await tx.get<RecordingRow>('SELECT * FROM recordings WHERE id = ?', [id]);
      if (!row) throw new VaultError('VAULT_NOT_FOUND', `no recording ${id}`, { recordingId: id });
      if (row.state !== 'final') throw new VaultError('VAULT_BAD_STATE', `recording ${id} is ${row.state}`, { recordingId: id });
      if (row.legal_hold === 1) throw new VaultError('VAULT_LEGAL_HOLD', `recording ${id} is on legal hold`, { recordingId: id });
      await tx.run("UPDATE recordings SET state = 'deleted', deleted_at = ?, wrapped_key = NULL WHERE id = ?", [this.now().toISOString(), id]);
      await this.audit.appendIn(tx, { actor, action: 'deleted', recordingId: id, reason: why, data: { callId: row.call_id, sha256: row.sha256, retentionUntil: row.retention_until } });
      return row;
    });
    unlinkIfExists(path.join(this.recordingsDir, r.file));
  }

  /** Deletes every final recording whose retention_until is before `now`, except those on legal hold. */
  async sweepExpired(now: Date, actor = 'retention'): Promise<string[]> {
    const deleted = await sweepExpiredRows(this.db, 'recordings', now, (id) => this.deleteRecording(id, actor, 'retention period expired'));
    if (deleted.length) this.log.info({ deleted: deleted.length }, 'retention sweep deleted expired recordings');
    deleted.push(...(await this.transcripts.sweepExpired(now, actor)));
    return deleted;
  }

  /**
   * Writes the recording as a plain WAV to `outFile` (0600, refuses to overwrite) and
   * `<outFile>.manifest.json`, signed with the site's Ed25519 export key. The audio is checked
   * against the indexed SHA-256 first; a tampered recording is not exported.
   */
  async exportRecording(id: string, outFile: string, actor: string, reason: string): Promise<{ wavFile: string; manifestFile: string; manifest: ExportManifest }> {
    const why = requireReason(reason, 'exporting a recording');
    const r = await this.row(id);
    if (r.state !== 'final') throw new VaultError(r.state === 'deleted' ? 'VAULT_NOT_FOUND' : 'VAULT_BAD_STATE', `recording ${id} is ${r.state}`, { recordingId: id });
    const key = this.dataKeyOf(r);
    const manifestFile = `${outFile}.manifest.json`;
    if (existsSync(outFile) || existsSync(manifestFile)) throw new VaultError('VAULT_BAD_STATE', `${outFile} or its manifest already exists`);
    const tmp = `${outFile}.partial-${process.pid}`;
    const fh = await openAsync(tmp, 'wx', 0o600);
    const audioHash = createHash('sha256');
    const wavHash = createHash('sha256');
    try {
      const header = g711WavHeader(r.codec, r.bytes);
      await fh.write(header);
      wavHash.update(header);
      for await (const part of this.dataBytes(r, key, 0, r.bytes)) {
        audioHash.update(part);
        wavHash.update(part);
        await fh.write(part);
      }
      if (r.bytes & 1) {
        const pad = Buffer.alloc(1);
        await fh.write(pad);
        wavHash.update(pad);
      }
      await fh.sync();
    } catch (e) {
      await fh.close();
      await rm(tmp, { force: true });
      throw e;
    } finally {
      key.fill(0);
    }
    await fh.close();
    const audioSha256 = audioHash.digest('hex');
    if (audioSha256 !== r.sha256) {
      await rm(tmp, { force: true });
      throw new VaultError('VAULT_TAMPERED', `recording ${id}: decrypted audio does not match its SHA-256; not exported`, { recordingId: id });
    }
    const wavBytes = WAV_HEADER_SIZE + r.bytes + (r.bytes & 1);
    const wavSha256 = wavHash.digest('hex');
    const exportedAt = this.now().toISOString();
    const entry = await this.audit.append({ actor, action: 'exported', recordingId: id, reason: why, data: { file: path.basename(outFile), wavSha256 } });
    const body: ExportManifest = {
      format: 'ccedge-recording-export/1', recordingId: r.id, callId: r.call_id, createdAt: r.created_at, codec: r.codec,
      wavFormatTag: r.codec === 'PCMU' ? 7 : 6, channels: 'left=caller,right=agent', sampleRate: r.sample_rate, durationMs: r.duration_ms,
      audioBytes: r.bytes, audioSha256, wavFile: path.basename(outFile), wavBytes, wavSha256, exportedAt, exportedBy: actor, reason: why,
      auditSeq: entry.seq, auditHash: entry.hash,
    };
    this.signing ??= loadSigningKey(this.keysDir);
    const signature = edSign(null, Buffer.from(canonicalJson(body)), this.signing.privateKey).toString('base64');
    const manifest: ExportManifest = { ...body, signature: { alg: 'Ed25519', publicKey: this.signing.publicKeyPem, value: signature } };
    await rename(tmp, outFile);
    const mh = await openAsync(manifestFile, 'wx', 0o600);
    try {
      await mh.write(`${JSON.stringify(manifest, null, 2)}\n`);
      await mh.sync();
    } finally {
      await mh.close();
    }
    return { wavFile: outFile, manifestFile, manifest };
  }

  /** The PEM public key that export manifests are signed with (to publish to auditors). */
  exportPublicKey(): string {
    this.signing ??= loadSigningKey(this.keysDir);
    return this.signing.publicKeyPem;
  }

  /** Appends an audit entry for something the host did (e.g. an HTTP stream that was refused). */
  recordAudit(input: AuditInput): Promise<void> {
    return this.audit.append(input).then(() => undefined);
  }
}

/**
 * Checks an export: the manifest's Ed25519 signature (against `trustedPublicKeyPem` if given,
 * else the key in the manifest) and, if `wav` is given, its size and SHA-256.
 */
export function verifyExportManifest(manifest: ExportManifest, wav?: Buffer, trustedPublicKeyPem?: string): string[] {
  const problems: string[] = [];
  const { signature, ...body } = manifest;
  if (!signature || signature.alg !== 'Ed25519') return ['manifest is not signed with Ed25519'];
  if (trustedPublicKeyPem && trustedPublicKeyPem.trim() !== signature.publicKey.trim()) problems.push('manifest is signed by an untrusted key');
  const ok = edVerify(null, Buffer.from(canonicalJson(body)), createPublicKey(signature.publicKey), Buffer.from(signature.value, 'base64'));
  if (!ok) problems.push('manifest signature does not verify');
  if (wav) {
    if (wav.length !== manifest.wavBytes) problems.push(`WAV is ${wav.length} bytes, manifest says ${manifest.wavBytes}`);
    const h = createHash('sha256').update(wav).digest('hex');
    if (h !== manifest.wavSha256) problems.push('WAV SHA-256 does not match the manifest');
  }
  return problems;
}

/** Disk-space guard: whether the file system holding `dir` has at least `minFreeBytes` free for us. */
export async function hasSpace(dir: string, minFreeBytes: number): Promise<{ ok: boolean; freeBytes: number }> {
  const s = await statfs(dir);
  const freeBytes = Number(s.bavail) * Number(s.bsize);
  return { ok: freeBytes >= minFreeBytes, freeBytes };
}

/** Size of a recording file on disk (for reports); undefined if absent. */
export function fileSize(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}
