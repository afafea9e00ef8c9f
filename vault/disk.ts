import { statfs } from 'node:fs/promises';

/** Disk-space guard: whether the file system holding `dir` has at least `minFreeBytes` free for us. */
export async function hasSpace(dir: string, minFreeBytes: number): Promise<{ ok: boolean; freeBytes: number }> {
  const s = await statfs(dir);
  const freeBytes = Number(s.bavail) * Number(s.bsize);
  return { ok: freeBytes >= minFreeBytes, freeBytes };
}
