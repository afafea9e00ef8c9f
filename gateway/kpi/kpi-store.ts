import type { AgentState } from '../acd/agent-state';
import type { Db, SqlParam } from '../store/db';
import { DISPOSITIONS, QUEUE_EVENT_TYPES, type AgentChange, type QueueEvent } from './kpi';

/**
 * Schema of `queue_events`: one row per thing that happened to a call in a queue, enough to
 * compute every KPI from history. gateway/store/migrations.ts appends this string as a migration
 * (a shipped migration is never edited: a later change is a new migration).
 */
export const KPI_MIGRATION = `
  CREATE TABLE queue_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    queue TEXT NOT NULL,
    intent TEXT,
    call_id TEXT NOT NULL,
    agent TEXT,
    type TEXT NOT NULL CHECK (type IN (${QUEUE_EVENT_TYPES.map((t) => `'${t}'`).join(', ')})),
    wait_ms INTEGER,
    talk_ms INTEGER,
    hold_ms INTEGER,
    wrap_ms INTEGER,
    disposition TEXT CHECK (disposition IS NULL OR disposition IN (${DISPOSITIONS.map((d) => `'${d}'`).join(', ')}))
  );
  CREATE INDEX queue_events_type_ts ON queue_events (type, ts);
  CREATE INDEX queue_events_call ON queue_events (call_id, id);
  CREATE INDEX queue_events_agent ON queue_events (agent, type, id);
  CREATE INDEX agent_events_ts ON agent_events (ts);
  `;

/** A queue_events row as sqlite returns it: the event with its time as ISO text. */
type Row = Omit<QueueEvent, 'ts'> & { ts: string };

const SELECT =
  'SELECT ts, queue, intent, call_id AS callId, agent, type, wait_ms AS waitMs, talk_ms AS talkMs, hold_ms AS holdMs, wrap_ms AS wrapMs, disposition FROM queue_events';

const fromRow = (r: Row): QueueEvent => ({ ...r, ts: Date.parse(r.ts) });
const iso = (ms: number): string => new Date(ms).toISOString();
const whole = (v: number | null): number | null => (v === null ? null : Math.max(0, Math.round(v)));

/** Writes and range queries of `queue_events`; reads `agent_events` (written by AgentStore) for occupancy. */
export class KpiStore {
  constructor(private readonly db: Db) {}

  async insert(e: QueueEvent): Promise<void> {
    const params: SqlParam[] = [iso(e.ts), e.queue, e.intent, e.callId, e.agent, e.type, whole(e.waitMs), whole(e.talkMs), whole(e.holdMs), whole(e.wrapMs), e.disposition];
    await this.db.transaction((db) =>
      db.run(
        'INSERT INTO queue_events (ts, queue, intent, call_id, agent, type, wait_ms, talk_ms, hold_ms, wrap_ms, disposition) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        params,
      ),
    );
  }

  /** The wrap-up after a call is over: completes the call's `ended` row. */
  /**
   * With `agent`, only that agent's latest `ended` row of the call: a transferred call has one per
   * agent who handled it, each with its own wrap-up.
   */
  async setWrap(callId: string, wrapMs: number, agent?: string): Promise<void> {
    if (agent === undefined) {
      await this.db.transaction((db) => db.run("UPDATE queue_events SET wrap_ms = ? WHERE call_id = ? AND type = 'ended'", [whole(wrapMs), callId]));
      return;
    }
    await this.db.transaction((db) =>
      db.run(
        "UPDATE queue_events SET wrap_ms = ? WHERE id = (SELECT id FROM queue_events WHERE call_id = ? AND type = 'ended' AND agent = ? ORDER BY id DESC LIMIT 1)",
        [whole(wrapMs), callId, agent],
      ),
    );
  }

  /**
   * At start: wrap-ups a stop interrupted are over (the agents are offline now). Their length is
   * unknown; 0 keeps the call in AHT with its talk and hold time. Returns the rows closed.
   */
  async closeOpenWrapUps(): Promise<number> {
    const r = await this.db.transaction((db) => db.run("UPDATE queue_events SET wrap_ms = 0 WHERE type = 'ended' AND wrap_ms IS NULL"));
    return r.changes;
  }

  /** Every event of the calls offered (to any queue) in [from, to), oldest first. */
  async eventsOfCallsOffered(from: number, to: number): Promise<QueueEvent[]> {
    const rows = await this.db.all<Row>(
      `${SELECT} WHERE call_id IN (SELECT call_id FROM queue_events WHERE type = 'offered' AND ts >= ? AND ts < ?) ORDER BY id`,
      [iso(from), iso(to)],
    );
    return rows.map(fromRow);
  }

  /** Events of one call, oldest first. */
  async callEvents(callId: string): Promise<QueueEvent[]> {
    return (await this.db.all<Row>(`${SELECT} WHERE call_id = ? ORDER BY id`, [callId])).map(fromRow);
  }

  /** The latest call `agent` finished (its `ended` row), if any. */
  async lastEnded(agent: string): Promise<QueueEvent | undefined> {
    const row = await this.db.get<Row>(`${SELECT} WHERE agent = ? AND type = 'ended' ORDER BY id DESC LIMIT 1`, [agent]);
    return row ? fromRow(row) : undefined;
  }

  /**
   * Agent state changes for intervals over [from, to): each agent's latest change at or before
   * `from` (the state the window starts in) and every change inside the window.
   */
  async agentChanges(from: number, to: number): Promise<AgentChange[]> {
    const rows = await this.db.all<{ agent: string; state: AgentState; ts: string }>(
      `SELECT id, agent, state, ts FROM agent_events WHERE id IN (SELECT MAX(id) FROM agent_events WHERE ts <= ? GROUP BY agent)
       UNION ALL
       SELECT id, agent, state, ts FROM agent_events WHERE ts > ? AND ts < ?
       ORDER BY id`,
      [iso(from), iso(from), iso(to)],
    );
    return rows.map((r) => ({ agent: r.agent, state: r.state, at: Date.parse(r.ts) }));
  }
}
