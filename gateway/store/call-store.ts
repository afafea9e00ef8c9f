import type { CloudEventAppender, CloudEventData, CloudEventType } from '../../sync/events';
import type { Db, SqlParam } from './db';

export type CallState = 'ringing' | 'answered' | 'ended' | 'failed';

export interface CallRecord {
  id: string;
  sipCallId: string;
  trunk: string;
  direction: 'inbound' | 'outbound';
  fromUri: string;
  fromUser: string | null;
  fromName: string | null;
  toUri: string;
  toUser: string | null;
  remoteAddr: string;
  transport: string;
  codec: string | null;
  state: CallState;
  createdAt: string;
  answeredAt: string | null;
  endedAt: string | null;
  endCause: string | null;
  sipStatus: number | null;
  dtmf: string;
  rtpLocalPort: number | null;
  rtpRemote: string | null;
  rtpPacketsSent: number;
  rtpPacketsReceived: number;
  rtpPacketsDropped: number;
  /** Queue the call waited in, and the agent who took it. */
  queue: string | null;
  agent: string | null;
  /** Where fromUser came from: `pai`, `rpid` (trusted asserted identity) or `from`. */
  callerSource: string | null;
  /** The PBX's P-Asserted-Identity / Remote-Party-ID URI, when the trunk trusts it. */
  assertedIdentity: string | null;
  /** Privacy the caller asked for (RFC 3323, e.g. `id`): agents see "Private"; routing and compliance see the number. */
  privacy: string | null;
  /** The number originally called (Diversion, History-Info), normalised. */
  originalCalled: string | null;
}

export interface CallEvent {
  id: number;
  callId: string;
  ts: string;
  type: string;
  data: Record<string, unknown>;
}

/** Column of each updatable field: one map, so inserts, updates and reads cannot disagree. */
const COLUMNS: Record<keyof CallRecord, string> = {
  id: 'id',
  sipCallId: 'sip_call_id',
  trunk: 'trunk',
  direction: 'direction',
  fromUri: 'from_uri',
  fromUser: 'from_user',
  fromName: 'from_name',
  toUri: 'to_uri',
  toUser: 'to_user',
  remoteAddr: 'remote_addr',
  transport: 'transport',
  codec: 'codec',
  state: 'state',
  createdAt: 'created_at',
  answeredAt: 'answered_at',
  endedAt: 'ended_at',
  endCause: 'end_cause',
  sipStatus: 'sip_status',
  dtmf: 'dtmf',
  rtpLocalPort: 'rtp_local_port',
  rtpRemote: 'rtp_remote',
  rtpPacketsSent: 'rtp_packets_sent',
  rtpPacketsReceived: 'rtp_packets_received',
  rtpPacketsDropped: 'rtp_packets_dropped',
  queue: 'queue',
  agent: 'agent',
  callerSource: 'caller_source',
  assertedIdentity: 'asserted_identity',
  privacy: 'privacy',
  originalCalled: 'original_called',
};
const FIELDS = Object.keys(COLUMNS) as Array<keyof CallRecord>;
const SELECT = `SELECT ${FIELDS.map((f) => `${COLUMNS[f]} AS ${f}`).join(', ')} FROM calls`;

/** Where events bound for the cloud are written, inside the caller's transaction (the sync outbox). */
export type EventSink = CloudEventAppender<Db>;

/**
 * Event types a call writes, to its own record (call_events) and the cloud in one transaction:
 * the catalogued types whose payload carries the call's id (the store fills it in).
 */
export type CallEventType = { [T in CloudEventType]: 'callId' extends keyof CloudEventData<T> ? T : never }[CloudEventType];

/**
 * Calls and their events; each state change, its event and its outbox row for the cloud are
 * written in one transaction.
 */
export class CallStore {
  constructor(
    private readonly db: Db,
    private readonly sink?: EventSink,
  ) {}

  async create<T extends CallEventType>(record: CallRecord, eventType: T, data: CloudEventData<T>): Promise<void> {
    const fields = data as Readonly<Record<string, unknown>>;
    await this.db.transaction(async (db) => {
      await db.run(
        `INSERT INTO calls (${FIELDS.map((f) => COLUMNS[f]).join(', ')}) VALUES (${FIELDS.map(() => '?').join(', ')})`,
        FIELDS.map((f) => record[f] as SqlParam),
      );
      await insertEvent(db, record.id, eventType, fields);
      // Every call event's payload has callId; the record's trunk/from/to only go where the type lists them (offered, rejected).
      await this.sink?.append(db, eventType, { callId: record.id, trunk: record.trunk, from: record.fromUser, to: record.toUser, ...fields } as CloudEventData<T>);
    });
  }

  async update<T extends CallEventType>(id: string, changes: Partial<Omit<CallRecord, 'id'>>, eventType: T, data: CloudEventData<T>): Promise<void> {
    const fields = data as Readonly<Record<string, unknown>>;
    const keys = (Object.keys(changes) as Array<Exclude<keyof CallRecord, 'id'>>).filter((k) => changes[k] !== undefined);
    // call.ended carries the call's queue and agent to the cloud: the UPDATE returns them, one statement instead of two.
    const wantsRow = this.sink !== undefined && eventType === 'call.ended';
    await this.db.transaction(async (db) => {
      let extra: { queue: string | null; agent: string | null } | undefined;
      if (keys.length > 0) {
        const sql = `UPDATE calls SET ${keys.map((k) => `${COLUMNS[k]} = ?`).join(', ')} WHERE id = ?`;
        const params = [...keys.map((k) => changes[k] as SqlParam), id];
        if (wantsRow) extra = await db.get<{ queue: string | null; agent: string | null }>(`${sql} RETURNING queue, agent`, params);
        else await db.run(sql, params);
      } else if (wantsRow) {
        extra = await db.get<{ queue: string | null; agent: string | null }>('SELECT queue, agent FROM calls WHERE id = ?', [id]);
      }
      await insertEvent(db, id, eventType, fields);
      // The spread of a generic payload is not checkable by the compiler; callId is in every CallEventType, queue/agent in call.ended.
      await this.sink?.append(db, eventType, { callId: id, ...extra, ...fields } as CloudEventData<T>);
    });
  }

  list(opts: { limit?: number; state?: CallState } = {}): Promise<CallRecord[]> {
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 10_000);
    if (opts.state) return this.db.all<CallRecord>(`${SELECT} WHERE state = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`, [opts.state, limit]);
    return this.db.all<CallRecord>(`${SELECT} ORDER BY created_at DESC, rowid DESC LIMIT ?`, [limit]);
  }

  get(id: string): Promise<CallRecord | undefined> {
    return this.db.get<CallRecord>(`${SELECT} WHERE id = ?`, [id]);
  }

  async events(callId: string): Promise<CallEvent[]> {
    const rows = await this.db.all<{ id: number; callId: string; ts: string; type: string; data: string }>(
      'SELECT id, call_id AS callId, ts, type, data FROM call_events WHERE call_id = ? ORDER BY id',
      [callId],
    );
    return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  /** Calls a crash left open are closed on start, so records never claim a call is still up. */
  async closeOrphans(cause: string): Promise<number> {
    return this.db.transaction(async (db) => {
      const open = await db.all<{ id: string }>("SELECT id FROM calls WHERE state IN ('ringing', 'answered')");
      const now = new Date().toISOString();
      for (const { id } of open) {
        await db.run("UPDATE calls SET state = 'ended', ended_at = ?, end_cause = ? WHERE id = ?", [now, cause, id]);
        await insertEvent(db, id, 'call.ended', { cause });
        await this.sink?.append(db, 'call.ended', { callId: id, cause });
      }
      return open.length;
    });
  }

  /**
   * The wrap-up note of a call, replacing the previous text; with its event (`call.note`: the
   * residency policy keeps the text on site unless allowText lists call.note.note). Unchanged
   * text writes nothing. Returns whether it was written.
   */
  async setNotes(callId: string, agent: string, text: string): Promise<boolean> {
    return this.db.transaction(async (db) => {
      const prev = await db.get<{ text: string }>('SELECT text FROM call_notes WHERE call_id = ?', [callId]);
      if (prev?.text === text) return false;
      await db.run(
        'INSERT INTO call_notes (call_id, agent, text, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET agent = excluded.agent, text = excluded.text, updated_at = excluded.updated_at',
        [callId, agent, text, new Date().toISOString()],
      );
      await insertEvent(db, callId, 'call.note', { agent, note: text });
      await this.sink?.append(db, 'call.note', { callId, agent, note: text });
      return true;
    });
  }

  async notes(callId: string): Promise<{ text: string; agent: string; updatedAt: string } | undefined> {
    return this.db.get<{ text: string; agent: string; updatedAt: string }>('SELECT text, agent, updated_at AS updatedAt FROM call_notes WHERE call_id = ?', [callId]);
  }

  /** Calls from `fromUser` created since `since` (ISO), not counting `exceptId`; at most `max`. */
  async countFrom(fromUser: string, since: string, exceptId: string, max: number): Promise<number> {
    const row = await this.db.get<{ n: number }>(
      'SELECT COUNT(*) AS n FROM (SELECT 1 FROM calls WHERE from_user = ? AND created_at >= ? AND id != ? LIMIT ?)',
      [fromUser, since, exceptId, max],
    );
    return row?.n ?? 0;
  }

  async count(): Promise<number> {
    const row = await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM calls');
    return row?.n ?? 0;
  }
}

async function insertEvent(db: Db, callId: string, type: CallEventType, data: Readonly<Record<string, unknown>>): Promise<void> {
  await db.run('INSERT INTO call_events (call_id, ts, type, data) VALUES (?, ?, ?, ?)', [callId, new Date().toISOString(), type, JSON.stringify(data)]);
}
