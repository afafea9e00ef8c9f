/**
 * Which backups retention deletes: never the newest `count`; of the rest, those older than
 * `days` (with days 0, every one beyond `count`). Pure, so tests pass the clock.
 */
export function backupsToDelete<T extends { id: string; createdAt: string }>(backups: T[], keep: { count: number; days: number }, now: Date): T[] {
  const newestFirst = [...backups].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  const cutoff = now.getTime() - keep.days * 86_400_000;
  return newestFirst.slice(keep.count).filter((b) => keep.days === 0 || Date.parse(b.createdAt) < cutoff);
}
