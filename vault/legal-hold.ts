import type { RecordingCatalogue } from './catalogue';
import { requireReason } from './retention';
import type { TranscriptVault } from './transcript-vault';

/**
 * Sets or clears a legal hold on a call: its recordings and transcripts, and (through the
 * `legal_holds` row) the recordings it makes later. One transaction with its audit entries, one
 * per recording (or one for the call when it has nothing stored yet). Returns how many
 * recordings it changed. A held recording is refused by deletion and skipped by retention.
 */
export async function setLegalHold(cat: RecordingCatalogue, transcripts: TranscriptVault, callId: string, on: boolean, actor: string, reason: string): Promise<number> {
  const why = requireReason(reason, on ? 'a legal hold' : 'clearing a legal hold');
  return cat.db.transaction(async (tx) => {
    if (on) await tx.run('INSERT OR REPLACE INTO legal_holds (call_id, set_at, actor, reason) VALUES (?, ?, ?, ?)', [callId, cat.now().toISOString(), actor, why]);
    else await tx.run('DELETE FROM legal_holds WHERE call_id = ?', [callId]);
    const ids = await tx.all<{ id: string }>("SELECT id FROM recordings WHERE call_id = ? AND state != 'deleted'", [callId]);
    await tx.run("UPDATE recordings SET legal_hold = ? WHERE call_id = ? AND state != 'deleted'", [on ? 1 : 0, callId]);
    const action = on ? 'hold-set' : 'hold-cleared';
    const transcriptsHeld = await transcripts.setHoldIn(tx, callId, on, actor, why);
    if (ids.length === 0 && transcriptsHeld === 0) await cat.audit.appendIn(tx, { actor, action, reason: why, data: { callId } });
    for (const { id } of ids) await cat.audit.appendIn(tx, { actor, action, recordingId: id, reason: why, data: { callId } });
    return ids.length;
  });
}
