import { VaultError } from './errors';
import type { VaultDb } from './schema';

/** Reads, deletions and holds must say why (the audit log keeps it): at least 3 characters. */
export function requireReason(reason: string | undefined | null, what: string): string {
  const r = (reason ?? '').trim();
  if (r.length < 3) throw new VaultError('VAULT_REASON_REQUIRED', `${what} needs a reason (at least 3 characters)`);
  return r;
}

/**
 * Deletes every final row of `table` whose retention_until is before `now`, except those on legal
 * hold, through `remove` (which audits and unlinks). Recordings and transcripts share this rule.
 * A hold set between the query and the delete, or a concurrent delete, skips that row.
 */
export async function sweepExpiredRows(db: VaultDb, table: 'recordings' | 'transcripts', now: Date, remove: (id: string) => Promise<void>): Promise<string[]> {
  const rows = await db.all<{ id: string }>(
    `SELECT id FROM ${table} WHERE state = 'final' AND legal_hold = 0 AND retention_until IS NOT NULL AND retention_until <= ? ORDER BY retention_until`,
    [now.toISOString()],
  );
  const deleted: string[] = [];
  for (const { id } of rows) {
    try {
      await remove(id);
      deleted.push(id);
    } catch (e) {
      if (!(e instanceof VaultError)) throw e;
    }
  }
  return deleted;
}
