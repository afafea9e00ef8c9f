import type { EventSink } from './call-store';
import type { Db } from './db';

export interface AgentEvent {
  id: number;
  ts: string;
  agent: string;
  state: string;
  reason: string | null;
  callId: string | null;
}

/** Agent state changes, one row each (occupancy and adherence are computed from these). */
export class AgentStore {
  constructor(
    private readonly db: Db,
    private readonly sink?: EventSink,
  ) {}

  async recordState(agent: string, state: string, reason: string | null, callId: string | null, at: Date): Promise<void> {
    await this.db.transaction(async (db) => {
      await db.run('INSERT INTO agent_events (ts, agent, state, reason, call_id) VALUES (?, ?, ?, ?, ?)', [at.toISOString(), agent, state, reason, callId]);
      await this.sink?.append(db, 'agent.state', { agent, state, reason, callId });
    });
  }

  /** Session start/end (`agent.login` / `agent.logout` with its cause), for the cloud and audits. */
  async recordSession(type: 'agent.login' | 'agent.logout', agent: string, cause: string | null): Promise<void> {
    if (!this.sink) return;
    await this.db.transaction(async (db) => {
      await this.sink?.append(db, type, type === 'agent.logout' ? { agent, cause } : { agent });
    });
  }

  events(agent: string, limit = 1000): Promise<AgentEvent[]> {
    return this.db.all<AgentEvent>(
      'SELECT id, ts, agent, state, reason, call_id AS callId FROM agent_events WHERE agent = ? ORDER BY id DESC LIMIT ?',
      [agent, limit],
    );
  }
}
