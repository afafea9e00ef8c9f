import { createHash, type Hash } from 'node:crypto';
import { closeSync, fdatasync, fsyncSync, writevSync } from 'node:fs';
import type { G711Codec } from '../media';
import type { RecorderEvent, RecordingSink } from '../media';
import type { AuditInput, AuditLog } from './audit-log';
import type { FinalState, RecordingInfo } from './catalogue';
import { VaultError } from './errors';
import { encryptChunk } from './file-format';
import type { VaultLogger } from './schema';

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

/** What a writer needs from the vault that opened it. */
export interface WriterHost {
  readonly audit: AuditLog;
  readonly log: VaultLogger;
  markFinal(id: string, f: FinalState): Promise<RecordingInfo>;
}

/**
 * The open file of one recording: a RecordingSink for the Recorder. write() copies into a
 * preallocated chunk buffer; a full chunk is encrypted and appended (synchronously, every
 * chunkSize/16000 s per call: ~4 s at 64 KiB) and synced to disk off the event loop.
 * finalize() seals the last chunk, waits for the syncs, fsyncs and records size, duration and SHA-256.
 * It owns the file descriptor and the data key from Vault.create() until finalize() (which zeroes the key).
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
    private readonly host: WriterHost,
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
    return this.host.audit.append({ ...input, recordingId: this.id }).then(() => undefined);
  }

  /** A Recorder `onEvent` that audits pauses and resumes (failures are logged, never thrown). */
  readonly onRecorderEvent = (ev: RecorderEvent): void => {
    const p = ev.type === 'paused'
      ? this.audit({ actor: ev.actor, action: 'paused', reason: ev.reason, data: { atMs: ev.atMs } })
      : this.audit({ actor: ev.actor, action: 'resumed', data: { atMs: ev.atMs, pausedMs: ev.pausedMs } });
    p.catch((err: unknown) => this.host.log.error({ err, recordingId: this.id, callId: this.callId }, 'recording audit write failed'));
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
    return this.host.markFinal(this.id, {
      bytes: this.bytes, chunks: this.chunks, sha256, endReason, recovered: false, pausedMs: opts.pausedMs ?? 0,
      auditAction: 'finalized', auditData: this.failure ? { error: this.failure.message } : {},
    });
  }

  private seal(): void {
    const plain = this.buf.subarray(0, this.fill);
    try {
      writevSync(this.fd, encryptChunk(this.key, this.headerHash, this.chunks, plain));
    } catch (e) {
      this.failure = e as Error;
      this.host.log.error({ err: e, recordingId: this.id, callId: this.callId, code: 'VAULT_WRITE_FAILED' }, 'recording write failed: recording stopped, call continues');
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
            if (err) this.host.log.warn({ err, recordingId: this.id, callId: this.callId }, 'recording chunk sync failed');
            resolve();
          }),
        ),
    );
  }
}
