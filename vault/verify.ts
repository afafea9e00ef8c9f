import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import type { VerifyProblem } from './audit-log';
import type { RecordingCatalogue, RecordingRow } from './catalogue';
import { VaultError } from './errors';
import { ChunkFile } from './file-format';

/**
 * Checks every recording file that is not deleted: present, header, every chunk's tag, size,
 * SHA-256 against the row and against the hash the audit log recorded at finalisation. Reports,
 * never repairs; an `open` recording (being written, or waiting for recovery) is only checked for
 * presence. Empty: all good.
 */
export async function verifyRecordingFiles(cat: RecordingCatalogue): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  const rows = await cat.db.all<RecordingRow>("SELECT * FROM recordings WHERE state != 'deleted' ORDER BY created_at, id");
  const finalHashes = new Map<string, string>();
  for (const a of await cat.db.all<{ recording_id: string; data: string }>("SELECT recording_id, data FROM recording_audit WHERE action IN ('finalized', 'recovered') ORDER BY seq")) {
    try {
      const d = JSON.parse(a.data) as { sha256?: string };
      if (d.sha256) finalHashes.set(a.recording_id, d.sha256);
    } catch {
      /* an unparsable entry is reported by the chain check */
    }
  }
  for (const r of rows) {
    const file = cat.fileOf(r);
    const name = `recording ${r.id} (${r.file})`;
    if (!existsSync(file)) {
      problems.push({ code: 'VAULT_FILE_MISSING', recordingId: r.id, file, message: `${name}: file missing` });
      continue;
    }
    if (r.state === 'open') continue; // being written, or waiting for recoverOpen()
    let key: Buffer;
    try {
      key = cat.dataKeyOf(r);
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
