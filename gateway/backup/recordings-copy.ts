import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sha256File } from './crypto';
import { POOL_DIR, type ManifestFile } from './manifest';

/** Copies a file through a hash (stream, so a large recording never sits in memory). */
async function copyHashed(src: string, dest: string): Promise<{ bytes: number; sha256: string }> {
  const tmp = `${dest}.partial`;
  const sha = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sha.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(createReadStream(src), tap, createWriteStream(tmp, { mode: 0o600 }));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await rename(tmp, dest);
  return { bytes, sha256: sha.digest('hex') };
}

export interface RecordingCopyResult {
  files: ManifestFile[];
  copied: number;
  copiedBytes: number;
  /** Rows whose file is gone from the data dir (retention deleted it after the snapshot, say). */
  missing: string[];
}

/**
 * The vault's files (already encrypted with the site key) for the recordings of the snapshot.
 * Finished ones go once into the shared pool `<root>/recordings/` and are never copied again;
 * checksums of pool files come from the previous manifests. Recordings still being written go
 * into this backup's own directory, as far as they got (a restore finishes them like a crash).
 */
export async function copyRecordings(
  recordingsDir: string,
  root: string,
  backupDir: string,
  rows: Array<{ id: string; file: string; state: string }>,
  known: Map<string, { bytes: number; sha256: string }>,
): Promise<RecordingCopyResult> {
  const pool = path.join(root, POOL_DIR);
  await mkdir(pool, { recursive: true, mode: 0o700 });
  const out: RecordingCopyResult = { files: [], copied: 0, copiedBytes: 0, missing: [] };
  for (const r of rows) {
    const src = path.join(recordingsDir, path.basename(r.file));
    const st = await stat(src).catch(() => undefined);
    if (!st) {
      out.missing.push(r.id);
      continue;
    }
    if (r.state === 'final') {
      const rel = `${POOL_DIR}/${path.basename(r.file)}`;
      const dest = path.join(root, rel);
      const have = await stat(dest).catch(() => undefined);
      let sum = have && have.size === st.size ? known.get(rel) : undefined;
      if (have && have.size === st.size && !sum) sum = await sha256File(dest);
      if (!sum || sum.bytes !== st.size) {
        sum = await copyHashed(src, dest);
        out.copied++;
        out.copiedBytes += sum.bytes;
      }
      out.files.push({ path: rel, kind: 'recording', bytes: sum.bytes, sha256: sum.sha256, recordingId: r.id });
    } else {
      const rel = `${path.basename(backupDir)}/open/${path.basename(r.file)}`;
      await mkdir(path.join(backupDir, 'open'), { recursive: true, mode: 0o700 });
      const sum = await copyHashed(src, path.join(root, rel));
      out.copied++;
      out.copiedBytes += sum.bytes;
      out.files.push({ path: rel, kind: 'recording-open', bytes: sum.bytes, sha256: sum.sha256, recordingId: r.id });
    }
  }
  return out;
}
