import type { Db } from '../store/db';

export type CallbackState = 'pending' | 'dialing' | 'connected' | 'done' | 'failed';

export interface CallbackRecord {
  id: string;
  number: string;
  callerName: string | null;
  queue: string;
  originCallId: string | null;
  /** When the caller first entered the queue: the callback keeps that place. */
  queuedAt: string;
  createdAt: string;
  state: CallbackState;
  attempts: number;
  lastError: string | null;
  agent: string | null;
  completedAt: string | null;
}

const SELECT = `SELECT id, number, caller_name AS callerName, queue, origin_call_id AS originCallId, queued_at AS queuedAt,
  created_at AS createdAt, state, attempts, last_error AS lastError, agent, completed_at AS completedAt FROM callbacks`;

/** Queued callbacks, in sqlite so they survive a restart. */
export class CallbackStore {
  constructor(private readonly db: Db) {}

  async create(cb: CallbackRecord): Promise<void> {
    await this.db.transaction((db) =>
      db.run(
        `INSERT INTO callbacks (id, number, caller_name, queue, origin_call_id, queued_at, created_at, state, attempts, last_error, agent, completed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [cb.id, cb.number, cb.callerName, cb.queue, cb.originCallId, cb.queuedAt, cb.createdAt, cb.state, cb.attempts, cb.lastError, cb.agent, cb.completedAt],
      ),
    );
  }

  async update(id: string, changes: Partial<Pick<CallbackRecord, 'state' | 'attempts' | 'lastError' | 'agent' | 'completedAt'>>): Promise<void> {
    const cols: Record<string, string> = { state: 'state', attempts: 'attempts', lastError: 'last_error', agent: 'agent', completedAt: 'completed_at' };
    const keys = Object.keys(changes).filter((k) => (changes as Record<string, unknown>)[k] !== undefined);
    if (!keys.length) return;
    await this.db.transaction((db) =>
      db.run(`UPDATE callbacks SET ${keys.map((k) => `${cols[k]} = ?`).join(', ')} WHERE id = ?`, [
        ...keys.map((k) => (changes as Record<string, string | number | null>)[k]),
        id,
      ]),
    );
  }

  /** Callbacks still owed to callers (a crash mid-dial leaves 'dialing': it is owed again). */
  async outstanding(): Promise<CallbackRecord[]> {
    return this.db.all<CallbackRecord>(`${SELECT} WHERE state IN ('pending', 'dialing', 'connected') ORDER BY queued_at`);
  }

  get(id: string): Promise<CallbackRecord | undefined> {
    return this.db.get<CallbackRecord>(`${SELECT} WHERE id = ?`, [id]);
  }

  list(limit = 100): Promise<CallbackRecord[]> {
    return this.db.all<CallbackRecord>(`${SELECT} ORDER BY created_at DESC LIMIT ?`, [limit]);
  }
}
