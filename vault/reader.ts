import { open as openAsync, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { g711WavHeader, WAV_HEADER_SIZE } from '../media';
import { toInfo, type RecordingCatalogue, type RecordingInfo, type RecordingRow } from './catalogue';
import { VaultError } from './errors';
import { decryptChunk, readHeaderAsync, recordSize } from './file-format';
import { requireReason } from './retention';

/*
 * Reading a final recording back: decrypted audio by byte range, and the WAV served over HTTP
 * (header derived from the row, data decrypted chunk by chunk; nothing decrypted is kept). A chunk
 * that fails authentication errors the stream with VAULT_TAMPERED.
 */

/** Size of the WAV as served (header + data). */
export function wavSize(r: { bytes: number }): number {
  return WAV_HEADER_SIZE + r.bytes;
}

export interface RecordingStream {
  stream: Readable;
  size: number;
  start: number;
  end: number;
  contentType: 'audio/wav';
  info: RecordingInfo;
}

/**
 * The recording as a WAV, decrypted on the fly. `start`/`end` are byte offsets in the WAV,
 * inclusive like HTTP Range (default: the whole file). Every call is audited as `played`
 * with who and why.
 */
export async function openRecordingReader(cat: RecordingCatalogue, id: string, access: { actor: string; reason: string; start?: number; end?: number }): Promise<RecordingStream> {
  const reason = requireReason(access.reason, 'playing a recording');
  const r = await cat.finalRow(id);
  const size = wavSize(r);
  const start = access.start ?? 0;
  const end = access.end ?? size - 1;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end >= size) {
    throw new VaultError('VAULT_RANGE', `range ${start}-${end} is outside 0-${size - 1}`, { size });
  }
  const key = cat.dataKeyOf(r);
  await cat.audit.append({ actor: access.actor, action: 'played', recordingId: id, reason, data: { start, end, size } });
  return { stream: Readable.from(wavBytes(cat.fileOf(r), r, key, start, end + 1)), size, start, end, contentType: 'audio/wav', info: toInfo(r) };
}

/** WAV bytes [start, endExcl) of a final recording; zeroes `key` when done. */
async function* wavBytes(file: string, r: RecordingRow, key: Buffer, start: number, endExcl: number): AsyncGenerator<Buffer> {
  try {
    if (start < WAV_HEADER_SIZE) yield g711WavHeader(r.codec, r.bytes).subarray(start, Math.min(endExcl, WAV_HEADER_SIZE));
    const dStart = Math.max(start, WAV_HEADER_SIZE) - WAV_HEADER_SIZE;
    const dEnd = endExcl - WAV_HEADER_SIZE;
    if (dEnd > dStart) yield* dataBytes(file, r, key, dStart, dEnd);
  } finally {
    key.fill(0);
  }
}

/** Decrypted audio data [start, endExcl) of the recording in `file`, chunk by chunk. */
export async function* dataBytes(file: string, r: RecordingRow, key: Buffer, start: number, endExcl: number): AsyncGenerator<Buffer> {
  const fh: FileHandle = await openAsync(file, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new VaultError(e.code === 'ENOENT' ? 'VAULT_NOT_FOUND' : 'VAULT_TAMPERED', `recording file ${r.file}: ${e.message}`, { recordingId: r.id });
  });
  try {
    const header = await readHeaderAsync(fh, r.id);
    const C = r.chunk_size;
    for (let i = Math.floor(start / C); i * C < endExcl; i++) {
      const plainLen = Math.min(C, r.bytes - i * C);
      const rec = Buffer.alloc(recordSize(plainLen));
      const { bytesRead } = await fh.read(rec, 0, rec.length, header.length + i * recordSize(C));
      if (bytesRead < rec.length) throw new VaultError('VAULT_TRUNCATED', `recording ${r.id}: chunk ${i} truncated`, { recordingId: r.id, chunk: i });
      let plain: Buffer;
      try {
        plain = decryptChunk(key, header.hash, i, rec);
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
