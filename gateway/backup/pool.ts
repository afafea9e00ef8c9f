import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { listBackups, POOL_DIR } from './manifest';

/** Deletes pool recordings no remaining backup names (after retention removed backups). */
export async function sweepPool(root: string): Promise<number> {
  const referenced = new Set<string>();
  for (const m of await listBackups(root)) for (const f of m.files) if (f.kind === 'recording') referenced.add(path.basename(f.path));
  let removed = 0;
  const names = await readdir(path.join(root, POOL_DIR)).catch(() => [] as string[]);
  for (const n of names) {
    if (referenced.has(n)) continue;
    await rm(path.join(root, POOL_DIR, n), { force: true });
    removed++;
  }
  return removed;
}
