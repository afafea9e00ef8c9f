import type { RecordingCatalogue, RecordingRow } from './catalogue';
import { VaultError } from './errors';
import type { VaultLogger } from './schema';
import type { TranscriptVault } from './transcript-vault';

/**
 * Re-wraps every data key (recordings and transcripts) under a new site key. The new key is
 * `keys/site.key.next` until every row is re-wrapped (one transaction per recording); then it
 * replaces `site.key`. An interrupted rotation resumes with the same new key on the next call.
 * Files are never rewritten: only the wrapped keys in the rows change.
 */
export async function rotateSiteKey(
  cat: RecordingCatalogue, transcripts: TranscriptVault, log: VaultLogger, actor: string, reason: string,
): Promise<{ from: string; to: string; rewrapped: number }> {
  const { keys, db } = cat;
  const { from, to } = keys.beginRotation();
  let rewrapped = 0;
  const rows = await db.all<{ id: string }>('SELECT id FROM recordings WHERE wrapped_key IS NOT NULL AND key_id != ?', [to]);
  for (const { id } of rows) {
    await db.transaction(async (tx) => {
      const r = await tx.get<RecordingRow>('SELECT * FROM recordings WHERE id = ?', [id]);
      if (!r || !r.wrapped_key || r.key_id === to) return;
      const dk = keys.unwrap(r.wrapped_key, r.id, r.key_id);
      const wrapped = keys.wrap(dk, r.id, to);
      dk.fill(0);
      await tx.run('UPDATE recordings SET wrapped_key = ?, key_id = ? WHERE id = ? AND key_id = ?', [wrapped, to, r.id, r.key_id]);
      rewrapped++;
    });
  }
  rewrapped += await transcripts.rewrapAll(to);
  const left = await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM recordings WHERE wrapped_key IS NOT NULL AND key_id = ?', [from]);
  if ((left?.n ?? 0) > 0) throw new VaultError('VAULT_BAD_STATE', `${left?.n} recordings still use site key ${from}; rotation not completed`);
  const leftT = await transcripts.countWrappedUnder(from);
  if (leftT > 0) throw new VaultError('VAULT_BAD_STATE', `${leftT} transcripts still use site key ${from}; rotation not completed`);
  await cat.audit.append({ actor, action: 'key-rotated', reason, data: { from, to, rewrapped } });
  keys.completeRotation();
  log.info({ from, to, rewrapped }, 'site key rotated');
  return { from, to, rewrapped };
}
