/**
 * Schema migrations, applied in order; PRAGMA user_version holds how many have run.
 * Append only: a shipped migration is never edited.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    sip_call_id TEXT NOT NULL,
    trunk TEXT NOT NULL,
    direction TEXT NOT NULL DEFAULT 'inbound',
    from_uri TEXT NOT NULL,
    from_user TEXT,
    from_name TEXT,
    to_uri TEXT NOT NULL,
    to_user TEXT,
    remote_addr TEXT NOT NULL,
    transport TEXT NOT NULL,
    codec TEXT,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    answered_at TEXT,
    ended_at TEXT,
    end_cause TEXT,
    sip_status INTEGER,
    dtmf TEXT NOT NULL DEFAULT '',
    rtp_local_port INTEGER,
    rtp_remote TEXT,
    rtp_packets_sent INTEGER NOT NULL DEFAULT 0,
    rtp_packets_received INTEGER NOT NULL DEFAULT 0,
    rtp_packets_dropped INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX calls_created_at ON calls (created_at);
  CREATE INDEX calls_sip_call_id ON calls (sip_call_id);
  CREATE TABLE call_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL REFERENCES calls (id),
    ts TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX call_events_call ON call_events (call_id, id);
  `,
  `
  ALTER TABLE calls ADD COLUMN queue TEXT;
  ALTER TABLE calls ADD COLUMN agent TEXT;
  CREATE TABLE agent_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    agent TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    call_id TEXT
  );
  CREATE INDEX agent_events_agent ON agent_events (agent, id);
  `,
  `
  CREATE TABLE callbacks (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    caller_name TEXT,
    queue TEXT NOT NULL,
    origin_call_id TEXT,
    queued_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    agent TEXT,
    completed_at TEXT
  );
  CREATE INDEX callbacks_state ON callbacks (state, queued_at);
  `,
  `
  CREATE TABLE queue_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL, queue TEXT NOT NULL, intent TEXT, call_id TEXT NOT NULL, agent TEXT,
    type TEXT NOT NULL CHECK (type IN ('offered', 'answered', 'abandoned', 'overflowed', 'ended', 'disposition')),
    wait_ms INTEGER, talk_ms INTEGER, hold_ms INTEGER, wrap_ms INTEGER,
    disposition TEXT CHECK (disposition IS NULL OR disposition IN ('resolved', 'not-resolved', 'follow-up'))
  );
  CREATE INDEX queue_events_type_ts ON queue_events (type, ts);
  CREATE INDEX queue_events_call ON queue_events (call_id, id);
  CREATE INDEX queue_events_agent ON queue_events (agent, type, id);
  CREATE INDEX agent_events_ts ON agent_events (ts);
  `,
  `
  CREATE TABLE IF NOT EXISTS sync_outbox (seq INTEGER PRIMARY KEY, boot_id TEXT NOT NULL, ts TEXT NOT NULL, type TEXT NOT NULL, payload TEXT NOT NULL, bytes INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS sync_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL DEFAULT 0, last_acked_seq INTEGER NOT NULL DEFAULT 0, depth INTEGER NOT NULL DEFAULT 0, depth_bytes INTEGER NOT NULL DEFAULT 0, dropped_total INTEGER NOT NULL DEFAULT 0, unreported_limit INTEGER NOT NULL DEFAULT 0, unreported_ttl INTEGER NOT NULL DEFAULT 0, unreported_from_seq INTEGER, unreported_to_seq INTEGER);
  INSERT OR IGNORE INTO sync_state (id) VALUES (1);
  CREATE TABLE IF NOT EXISTS sync_commands (id TEXT PRIMARY KEY, name TEXT NOT NULL, received_at TEXT NOT NULL, result TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS sync_commands_received ON sync_commands (received_at);
  CREATE TABLE IF NOT EXISTS sync_config (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, applied_at TEXT NOT NULL, config TEXT NOT NULL);
  `,
  `
  CREATE TABLE recordings (id TEXT PRIMARY KEY, call_id TEXT NOT NULL, created_at TEXT NOT NULL, finalized_at TEXT,
    codec TEXT NOT NULL CHECK (codec IN ('PCMU','PCMA')), channels INTEGER NOT NULL DEFAULT 2, sample_rate INTEGER NOT NULL DEFAULT 8000,
    duration_ms INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, chunk_size INTEGER NOT NULL, chunks INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT, wrapped_key TEXT, key_id TEXT NOT NULL, file TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open','final','deleted')), end_reason TEXT, recovered INTEGER NOT NULL DEFAULT 0,
    paused_ms INTEGER NOT NULL DEFAULT 0, legal_hold INTEGER NOT NULL DEFAULT 0, retention_until TEXT, deleted_at TEXT,
    queue TEXT, intent TEXT, agent TEXT);
  CREATE INDEX recordings_call ON recordings (call_id);
  CREATE INDEX recordings_state_retention ON recordings (state, retention_until);
  CREATE INDEX recordings_key ON recordings (key_id);
  CREATE TABLE legal_holds (call_id TEXT PRIMARY KEY, set_at TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL);
  CREATE TABLE recording_audit (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    recording_id TEXT, reason TEXT, data TEXT NOT NULL DEFAULT '{}', prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
  CREATE INDEX recording_audit_recording ON recording_audit (recording_id, seq);
  CREATE TRIGGER recording_audit_no_update BEFORE UPDATE ON recording_audit BEGIN SELECT RAISE(ABORT, 'recording_audit is append-only'); END;
  CREATE TRIGGER recording_audit_no_delete BEFORE DELETE ON recording_audit BEGIN SELECT RAISE(ABORT, 'recording_audit is append-only'); END;
  `,
  `
  CREATE TABLE IF NOT EXISTS sync_retained (topic TEXT PRIMARY KEY);
  `,
  // Issue 14, caller identity: where the caller number came from, the asserted identity, Privacy, the original called number.
  `
  ALTER TABLE calls ADD COLUMN caller_source TEXT;
  ALTER TABLE calls ADD COLUMN asserted_identity TEXT;
  ALTER TABLE calls ADD COLUMN privacy TEXT;
  ALTER TABLE calls ADD COLUMN original_called TEXT;
  `,
  // Issue 15, the agent desk: wrap-up notes, and the index behind "calls from this number".
  `
  CREATE TABLE call_notes (call_id TEXT PRIMARY KEY, agent TEXT NOT NULL, text TEXT NOT NULL, updated_at TEXT NOT NULL);
  CREATE INDEX calls_from_user_created ON calls (from_user, created_at);
  `,
  // Issue 16, supervisors: every supervisor action (away, log out, queue pause) and monitoring
  // session (listen, whisper, barge; from started_at to ended_at), on site.
  `
  CREATE TABLE supervisor_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, supervisor TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('set-away', 'logout-agent', 'pause-queue', 'resume-queue', 'monitor')),
    agent TEXT, call_id TEXT, queue TEXT, mode TEXT CHECK (mode IS NULL OR mode IN ('listen', 'whisper', 'barge')),
    from_value TEXT, to_value TEXT, started_at TEXT, ended_at TEXT, end_reason TEXT);
  CREATE INDEX supervisor_audit_ts ON supervisor_audit (ts);
  CREATE INDEX supervisor_audit_call ON supervisor_audit (call_id);
  `,
  // Issue 17, one-time passwords: the password an agent chose at first login, and the one-time
  // passwordHash of the config it replaced (a new one-time hash in the config resets the agent).
  `
  CREATE TABLE agent_passwords (agent TEXT PRIMARY KEY, replaces TEXT NOT NULL, hash TEXT NOT NULL, changed_at TEXT NOT NULL);
  `,
  // Issue 17, people and queues as live data: once changed through the admin API, the CLI or a
  // cloud push, the whole set (agents with password hashes only, queues, away reasons) lives here
  // and replaces the config file's sections (gateway/people/people-store.ts).
  `
  CREATE TABLE people_live (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL, version INTEGER NOT NULL,
    source TEXT NOT NULL, updated_at TEXT NOT NULL);
  `,
  // Issue 18, transcripts: encrypted call transcripts in the vault beside the recordings
  // (vault/transcript-vault.ts), under the same retention, legal hold, rotation and verify.
  `
  CREATE TABLE transcripts (id TEXT PRIMARY KEY, call_id TEXT NOT NULL, recording_id TEXT, created_at TEXT NOT NULL,
    bytes INTEGER NOT NULL, utterances INTEGER NOT NULL, sha256 TEXT NOT NULL, wrapped_key TEXT, key_id TEXT NOT NULL, file TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('final', 'deleted')), source TEXT NOT NULL, quality TEXT,
    legal_hold INTEGER NOT NULL DEFAULT 0, retention_until TEXT, deleted_at TEXT, queue TEXT, intent TEXT, agent TEXT);
  CREATE INDEX transcripts_call ON transcripts (call_id);
  CREATE INDEX transcripts_state_retention ON transcripts (state, retention_until);
  CREATE INDEX transcripts_key ON transcripts (key_id);
  `,
  // Issue 19, records that keep up: the outbox depth follows inserts in sqlite (sync/schema.ts
  // SYNC_DEPTH_TRIGGER_SQL), so an append is two statements instead of three.
  `
  CREATE TRIGGER IF NOT EXISTS sync_outbox_depth AFTER INSERT ON sync_outbox BEGIN
    UPDATE sync_state SET depth = depth + 1, depth_bytes = depth_bytes + NEW.bytes WHERE id = 1;
  END;
  `,
];
