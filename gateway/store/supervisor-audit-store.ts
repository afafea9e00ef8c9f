import type { EventSink } from './call-store';
import type { Db } from './db';

export type SupervisorAction = 'set-away' | 'logout-agent' | 'pause-queue' | 'resume-queue' | 'monitor';

export interface SupervisorAuditRow {
  id: number;
  ts: string;
  supervisor: string;
  action: SupervisorAction;
  agent: string | null;
  callId: string | null;
  queue: string | null;
  mode: string | null;
  /** What changed (a state, an away reason, paused/running). */
  from: string | null;
  to: string | null;
  /** Monitoring: when the supervisor joined and left the call. */
  startedAt: string | null;
  endedAt: string | null;
  endReason: string | null;
}

export interface SupervisorActionInput {
  supervisor: string;
  action: Exclude<SupervisorAction, 'monitor'>;
  agent?: string | null;
  queue?: string | null;
  from?: string | null;
  to?: string | null;
}

/**
 * The supervisor audit trail: one row per action and per monitoring session, with its cloud event
 * (`supervisor.action`, `supervisor.monitor`; the residency policy decides which fields leave)
 * written in the same transaction.
 */
export class SupervisorAuditStore {
  constructor(
    private readonly db: Db,
    private readonly sink?: EventSink,
  ) {}

  async action(a: SupervisorActionInput, at = new Date()): Promise<number> {
    return this.db.transaction(async (tx) => {
      const r = await tx.run('INSERT INTO supervisor_audit (ts, supervisor, action, agent, queue, from_value, to_value) VALUES (?, ?, ?, ?, ?, ?, ?)', [
        at.toISOString(),
        a.supervisor,
        a.action,
        a.agent ?? null,
        a.queue ?? null,
        a.from ?? null,
        a.to ?? null,
      ]);
      await this.sink?.append(tx, 'supervisor.action', { supervisor: a.supervisor, action: a.action, agent: a.agent ?? null, queue: a.queue ?? null, from: a.from ?? null, to: a.to ?? null });
      return r.lastID;
    });
  }

  /** A monitoring session began; the row is completed by monitorEnded(). The event is written at the end, with the span. */
  async monitorStarted(m: { supervisor: string; callId: string; agent: string | null; mode: string }, at = new Date()): Promise<number> {
    const r = await this.db.transaction((tx) =>
      tx.run('INSERT INTO supervisor_audit (ts, supervisor, action, agent, call_id, mode, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [at.toISOString(), m.supervisor, 'monitor', m.agent, m.callId, m.mode, at.toISOString()]),
    );
    return r.lastID;
  }

  async monitorEnded(id: number, reason: string, at = new Date()): Promise<void> {
    await this.db.transaction(async (tx) => {
      const row = await tx.get<{ supervisor: string; callId: string; agent: string | null; mode: string; startedAt: string; endedAt: string | null }>(
        'SELECT supervisor, call_id AS callId, agent, mode, started_at AS startedAt, ended_at AS endedAt FROM supervisor_audit WHERE id = ?',
        [id],
      );
      if (!row || row.endedAt !== null) return;
      await tx.run('UPDATE supervisor_audit SET ended_at = ?, end_reason = ? WHERE id = ?', [at.toISOString(), reason, id]);
      const durationS = Math.max(0, Math.round((at.getTime() - Date.parse(row.startedAt)) / 1000));
      await this.sink?.append(tx, 'supervisor.monitor', { supervisor: row.supervisor, callId: row.callId, agent: row.agent, mode: row.mode, startedAt: row.startedAt, endedAt: at.toISOString(), durationS, reason });
    });
  }

  /** Most recent first. */
  list(limit = 100): Promise<SupervisorAuditRow[]> {
    return this.db.all<SupervisorAuditRow>(
      `SELECT id, ts, supervisor, action, agent, call_id AS callId, queue, mode, from_value AS "from", to_value AS "to",
        started_at AS startedAt, ended_at AS endedAt, end_reason AS endReason FROM supervisor_audit ORDER BY id DESC LIMIT ?`,
      [limit],
    );
  }
}
