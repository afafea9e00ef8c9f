import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, openSync, writevSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AuditLog, type AuditInput, type VerifyProblem } from './audit-log';
import { RecordingCatalogue, type FinalState, type RecordingInfo, type RecordingState } from './catalogue';
import { deleteRecording, sweepExpiredRecordings } from './deletion';
import { ExportSigner, exportRecording, type ExportManifest } from './export';
import { DEFAULT_CHUNK_SIZE, encodeHeader, hashHeader } from './file-format';
import { ensurePrivateDir, SiteKeyRing, unlinkIfExists } from './keys';
import { rotateSiteKey } from './key-rotation';
import { setLegalHold } from './legal-hold';
import { openRecordingReader, wavSize } from './reader';
import { recoverOpenRecordings } from './recovery';
import type { VaultDb, VaultLogger } from './schema';
import { TranscriptVault } from './transcript-vault';
import { verifyRecordingFiles } from './verify';
import { RecordingWriter, type CreateRecordingOptions } from './writer';

export interface VaultOptions {
  dataDir: string;
  db: VaultDb;
  log: VaultLogger;
  chunkSize?: number;
  now?: () => Date;
}

/**
 * The encrypted on-site recording vault: files under `<dataDir>/recordings`, keys under
 * `<dataDir>/keys`, index and audit log in sqlite. The one object the host holds; each job lives in
 * its own file (writer, catalogue, reader, verify, recovery, key rotation, legal hold, deletion,
 * export) and this class wires them to the shared key ring, catalogue and audit log. It holds no
 * open files of its own (each RecordingWriter owns its file until finalize), so there is nothing
 * to close.
 */
export class Vault {
  readonly audit: AuditLog;
  /** Call transcripts, encrypted beside the recordings under the same keys, audit, retention and hold. */
  readonly transcripts: TranscriptVault;
  readonly recordingsDir: string;
  readonly keysDir: string;
  private readonly keys: SiteKeyRing;
  private readonly catalogue: RecordingCatalogue;
  private readonly signer: ExportSigner;
  private readonly chunkSize: number;
  private readonly now: () => Date;

  private constructor(
    opts: VaultOptions,
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
    this.catalogue = new RecordingCatalogue(db, this.audit, this.keys, this.recordingsDir, this.now);
    this.signer = new ExportSigner(this.keysDir);
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
      await this.catalogue.insertOpen({
        id, callId: o.callId, createdAt, codec: o.codec, chunkSize: this.chunkSize, wrappedKey: wrapped, keyId, file: path.basename(file),
        retentionUntil, queue: o.queue, intent: o.intent, agent: o.agent, actor: o.actor ?? 'system',
      });
    } catch (e) {
      closeSync(fd);
      unlinkIfExists(file);
      throw e;
    }
    return new RecordingWriter(this, id, o.callId, fd, dataKey, hashHeader(header), this.chunkSize, o.onWriteFailure);
  }

  /** @internal state open → final, with its audit entry, in one transaction. */
  markFinal(id: string, f: FinalState): Promise<RecordingInfo> {
    return this.catalogue.markFinal(id, f);
  }

  get(id: string): Promise<RecordingInfo | undefined> {
    return this.catalogue.get(id);
  }

  require(id: string): Promise<RecordingInfo> {
    return this.catalogue.require(id);
  }

  list(opts: { callId?: string; state?: RecordingState; limit?: number } = {}): Promise<RecordingInfo[]> {
    return this.catalogue.list(opts);
  }

  /** Size of the WAV as served (header + data). */
  static wavSize(r: { bytes: number }): number {
    return wavSize(r);
  }

  /**
   * The recording as a WAV, decrypted on the fly. `start`/`end` are byte offsets in the WAV,
   * inclusive like HTTP Range (default: the whole file). Every call is audited as `played`
   * with who and why. A chunk that fails authentication errors the stream (VAULT_TAMPERED).
   */
  openReader(
    id: string,
    access: { actor: string; reason: string; start?: number; end?: number },
  ): Promise<{ stream: Readable; size: number; start: number; end: number; contentType: 'audio/wav'; info: RecordingInfo }> {
    return openRecordingReader(this.catalogue, id, access);
  }

  /** Checks every recording file (see verify.ts). */
  verifyFiles(): Promise<VerifyProblem[]> {
    return verifyRecordingFiles(this.catalogue);
  }

  /** `ccedge recordings verify`: the audit chain and every file. Empty: all good. */
  verify(): Promise<VerifyProblem[]> {
    return this.audit.verify({ verifyFiles: async () => [...(await this.verifyFiles()), ...(await this.transcripts.verifyFiles())] });
  }

  /** At start, before any recording: finalises recordings left `open` by a crash (see recovery.ts). */
  recoverOpen(): Promise<RecordingInfo[]> {
    return recoverOpenRecordings(this.catalogue, this.log);
  }

  /** Re-wraps every data key under a new site key; resumable (see key-rotation.ts). */
  rotateSiteKey(actor: string, reason = 'key rotation'): Promise<{ from: string; to: string; rewrapped: number }> {
    return rotateSiteKey(this.catalogue, this.transcripts, this.log, actor, reason);
  }

  /** Sets or clears a legal hold on a call's recordings (and on recordings it makes later). */
  setLegalHold(callId: string, on: boolean, actor: string, reason: string): Promise<number> {
    return setLegalHold(this.catalogue, this.transcripts, callId, on, actor, reason);
  }

  /**
   * Deletes one recording: the row becomes `deleted` and loses its wrapped data key (so even a
   * backup copy of the file is unreadable), audited; then the file is removed. Refused under hold.
   */
  deleteRecording(id: string, actor: string, reason: string): Promise<void> {
    return deleteRecording(this.catalogue, id, actor, reason);
  }

  /** Deletes every final recording and transcript whose retention ended before `now`, except those on legal hold. */
  async sweepExpired(now: Date, actor = 'retention'): Promise<string[]> {
    const deleted = await sweepExpiredRecordings(this.catalogue, this.log, now, actor);
    deleted.push(...(await this.transcripts.sweepExpired(now, actor)));
    return deleted;
  }

  /**
   * Writes the recording as a plain WAV to `outFile` (0600, refuses to overwrite) and
   * `<outFile>.manifest.json`, signed with the site's Ed25519 export key. The audio is checked
   * against the indexed SHA-256 first; a tampered recording is not exported.
   */
  exportRecording(id: string, outFile: string, actor: string, reason: string): Promise<{ wavFile: string; manifestFile: string; manifest: ExportManifest }> {
    return exportRecording(this.catalogue, this.signer, id, outFile, actor, reason);
  }

  /** The PEM public key that export manifests are signed with (to publish to auditors). */
  exportPublicKey(): string {
    return this.signer.publicKeyPem;
  }

  /** Appends an audit entry for something the host did (e.g. an HTTP stream that was refused). */
  recordAudit(input: AuditInput): Promise<void> {
    return this.audit.append(input).then(() => undefined);
  }
}
