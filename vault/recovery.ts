import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync } from 'node:fs';
import type { RecordingCatalogue, RecordingInfo, RecordingRow } from './catalogue';
import { ChunkFile, NONCE_SIZE, TAG_SIZE } from './file-format';
import type { VaultLogger } from './schema';

/**
 * At start, before any recording: finalises recordings left `open` by a crash. Complete chunks
 * that authenticate are kept (and a short last chunk, if it was sealed); a torn tail is cut
 * off; the hash is recomputed from what decrypts; state final, recovered, end_reason
 * `interrupted`, audited as `recovered`. A full chunk that fails authentication is left in the
 * file as evidence for verify.
 */
export async function recoverOpenRecordings(cat: RecordingCatalogue, log: VaultLogger): Promise<RecordingInfo[]> {
  const out: RecordingInfo[] = [];
  const rows = await cat.db.all<RecordingRow>("SELECT * FROM recordings WHERE state = 'open' ORDER BY created_at");
  for (const r of rows) {
    const file = cat.fileOf(r);
    const hash = createHash('sha256');
    let bytes = 0;
    let chunks = 0;
    const data: Record<string, unknown> = {};
    if (!existsSync(file)) {
      data.fileMissing = true;
    } else {
      const key = cat.dataKeyOf(r);
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
    const info = await cat.markFinal(r.id, {
      bytes, chunks, sha256: hash.digest('hex'), endReason: 'interrupted', recovered: true, pausedMs: r.paused_ms, auditAction: 'recovered', auditData: data,
    });
    log.warn({ recordingId: r.id, callId: r.call_id, bytes, chunks, ...data }, 'recording left open by a crash recovered');
    out.push(info);
  }
  return out;
}
