import type { RecordingCatalogue, RecordingRow } from './catalogue';
import { VaultError } from './errors';
import { unlinkIfExists } from './keys';
import { requireReason, sweepExpiredRows } from './retention';
import type { VaultLogger } from './schema';

/*
 * Deleting recordings, by hand or when their retention expires. A deletion first drops the row's
 * wrapped data key (so even a backup copy of the file is unreadable) and audits it in the same
 * transaction, then removes the file. A recording on legal hold is refused.
 */

/** Deletes one final recording (VAULT_NOT_FOUND, VAULT_BAD_STATE, VAULT_LEGAL_HOLD otherwise). */
export async function deleteRecording(cat: RecordingCatalogue, id: string, actor: string, reason: string): Promise<void> {
  const why = requireReason(reason, 'deleting a recording');
  const r = await cat.db.transaction(async (tx) => {
    const row = await tx.get<RecordingRow>('SELECT * FROM recordings WHERE id = ?', [id]);
    if (!row) throw new VaultError('VAULT_NOT_FOUND', `no recording ${id}`, { recordingId: id });
    if (row.state !== 'final') throw new VaultError('VAULT_BAD_STATE', `recording ${id} is ${row.state}`, { recordingId: id });
    if (row.legal_hold === 1) throw new VaultError('VAULT_LEGAL_HOLD', `recording ${id} is on legal hold`, { recordingId: id });
    await tx.run("UPDATE recordings SET state = 'deleted', deleted_at = ?, wrapped_key = NULL WHERE id = ?", [cat.now().toISOString(), id]);
    await cat.audit.appendIn(tx, { actor, action: 'deleted', recordingId: id, reason: why, data: { callId: row.call_id, sha256: row.sha256, retentionUntil: row.retention_until } });
    return row;
  });
  unlinkIfExists(cat.fileOf(r));
}

/** Deletes every final recording whose retention_until is before `now`, except those on legal hold. */
export async function sweepExpiredRecordings(cat: RecordingCatalogue, log: VaultLogger, now: Date, actor: string): Promise<string[]> {
  const deleted = await sweepExpiredRows(cat.db, 'recordings', now, (id) => deleteRecording(cat, id, actor, 'retention period expired'));
  if (deleted.length) log.info({ deleted: deleted.length }, 'retention sweep deleted expired recordings');
  return deleted;
}
