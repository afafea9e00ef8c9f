import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { fstatSync, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { G711Codec } from '../media';
import { RECORDING_CHANNELS, RECORDING_SAMPLE_RATE } from '../media';
import { canonicalJson } from './audit-log';
import { VaultError } from './errors';

/*
 * The recording file format and its crypto framing; nothing here knows rows, keys or the audit log.
 *
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
/** magic (8) + u32 header length (4). */
const PREFIX_SIZE = 12;
/** A longer header is not ours: refuse before allocating for it. */
const MAX_HEADER_JSON = 4096;

function chunkAad(headerHash: Buffer, index: number): Buffer {
  const aad = Buffer.alloc(40);
  headerHash.copy(aad, 0);
  aad.writeBigUInt64BE(BigInt(index), 32);
  return aad;
}

/** The file's header bytes (magic..JSON); its SHA-256 binds every chunk to this file. */
export function encodeHeader(h: { id: string; codec: G711Codec; chunkSize: number; createdAt: string }): Buffer {
  const json = Buffer.from(canonicalJson({ v: 1, id: h.id, codec: h.codec, channels: RECORDING_CHANNELS, rate: RECORDING_SAMPLE_RATE, chunkSize: h.chunkSize, createdAt: h.createdAt }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([FILE_MAGIC, len, json]);
}

export function hashHeader(header: Buffer): Buffer {
  return createHash('sha256').update(header).digest();
}

/** Bytes on disk of a chunk holding `plainLen` bytes of audio. */
export function recordSize(plainLen: number): number {
  return NONCE_SIZE + plainLen + TAG_SIZE;
}

/** Chunk `index` of a file, as the buffers to append in order (nonce, ciphertext, tag). */
export function encryptChunk(key: Buffer, headerHash: Buffer, index: number, plain: Buffer): Buffer[] {
  const nonce = randomBytes(NONCE_SIZE);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(chunkAad(headerHash, index));
  const ct = c.update(plain);
  const fin = c.final();
  return [nonce, ct, fin, c.getAuthTag()];
}

/** Decrypts and authenticates chunk `index` (nonce | ciphertext | tag); VAULT_TAMPERED if it fails. */
export function decryptChunk(key: Buffer, headerHash: Buffer, index: number, rec: Buffer): Buffer {
  try {
    const d = createDecipheriv('aes-256-gcm', key, rec.subarray(0, NONCE_SIZE));
    d.setAAD(chunkAad(headerHash, index));
    d.setAuthTag(rec.subarray(rec.length - TAG_SIZE));
    return Buffer.concat([d.update(rec.subarray(NONCE_SIZE, rec.length - TAG_SIZE)), d.final()]);
  } catch {
    throw new VaultError('VAULT_TAMPERED', `chunk ${index} failed authentication`, { chunk: index });
  }
}

/** Reads the header of an open file for streaming; the caller names the recording in errors. */
export async function readHeaderAsync(fh: FileHandle, recordingId: string): Promise<{ length: number; hash: Buffer }> {
  const pre = Buffer.alloc(PREFIX_SIZE);
  await fh.read(pre, 0, PREFIX_SIZE, 0);
  if (!pre.subarray(0, 8).equals(FILE_MAGIC)) throw new VaultError('VAULT_TAMPERED', `recording ${recordingId}: not a vault file`, { recordingId });
  const header = Buffer.alloc(PREFIX_SIZE + pre.readUInt32BE(8));
  const got = await fh.read(header, 0, header.length, 0);
  if (got.bytesRead < header.length) throw new VaultError('VAULT_TRUNCATED', `recording ${recordingId}: header truncated`, { recordingId });
  return { length: header.length, hash: hashHeader(header) };
}

/** Low-level synchronous access to one recording file's chunks (verify, recovery). */
export class ChunkFile {
  readonly headerLen: number;
  readonly headerHash: Buffer;
  readonly header: { id: string; chunkSize: number };
  readonly size: number;

  constructor(
    readonly fd: number,
    private readonly key: Buffer,
  ) {
    this.size = fstatSync(fd).size;
    const pre = Buffer.alloc(PREFIX_SIZE);
    if (readSync(fd, pre, 0, PREFIX_SIZE, 0) < PREFIX_SIZE || !pre.subarray(0, 8).equals(FILE_MAGIC)) throw new VaultError('VAULT_TAMPERED', 'not a vault file (bad magic)');
    const n = pre.readUInt32BE(8);
    if (n > MAX_HEADER_JSON) throw new VaultError('VAULT_TAMPERED', 'vault file header too long');
    const full = Buffer.alloc(PREFIX_SIZE + n);
    if (readSync(fd, full, 0, full.length, 0) < full.length) throw new VaultError('VAULT_TRUNCATED', 'vault file header truncated');
    this.headerLen = full.length;
    this.headerHash = hashHeader(full);
    try {
      this.header = JSON.parse(full.subarray(PREFIX_SIZE).toString('utf8')) as { id: string; chunkSize: number };
    } catch {
      throw new VaultError('VAULT_TAMPERED', 'vault file header is not JSON');
    }
  }

  recordSize(plainLen: number): number {
    return recordSize(plainLen);
  }

  offsetOf(index: number): number {
    return this.headerLen + index * recordSize(this.header.chunkSize);
  }

  /** Decrypts chunk `index` of `plainLen` bytes; throws VAULT_TRUNCATED / VAULT_TAMPERED. */
  read(index: number, plainLen: number): Buffer {
    const rec = Buffer.alloc(recordSize(plainLen));
    const got = readSync(this.fd, rec, 0, rec.length, this.offsetOf(index));
    if (got < rec.length) throw new VaultError('VAULT_TRUNCATED', `chunk ${index} truncated (${got} of ${rec.length} bytes)`, { chunk: index });
    return decryptChunk(this.key, this.headerHash, index, rec);
  }
}
