/**
 * Retained topics we published (sync/retained.ts). A later addition: the gateway appends it as its
 * own migration entry; SYNC_SCHEMA_SQL includes it for databases created by tests.
 */
export const SYNC_RETAINED_SQL = `
  CREATE TABLE IF NOT EXISTS sync_retained (topic TEXT PRIMARY KEY);
`;

/**
 * The outbox depth follows every insert inside sqlite, so an append is two statements (the seq
 * taken by UPDATE … RETURNING, the row) instead of three trips to sqlite's thread. A later
 * addition like SYNC_RETAINED_SQL: its own migration entry in the gateway, included below.
 */
export const SYNC_DEPTH_TRIGGER_SQL = `
  CREATE TRIGGER IF NOT EXISTS sync_outbox_depth AFTER INSERT ON sync_outbox BEGIN
    UPDATE sync_state SET depth = depth + 1, depth_bytes = depth_bytes + NEW.bytes WHERE id = 1;
  END;
`;

/**
 * Tables of sync/. The gateway appends this text, verbatim, as one entry of
 * gateway/store/migrations.ts (migrations are append-only there). Written with IF NOT EXISTS so
 * tests can apply it to a database the gateway already migrated.
 */
export const SYNC_SCHEMA_SQL = `
  CREATE TABLE IF NOT EXISTS sync_outbox (
    seq INTEGER PRIMARY KEY,
    boot_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    bytes INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS sync_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_acked_seq INTEGER NOT NULL DEFAULT 0,
    depth INTEGER NOT NULL DEFAULT 0,
    depth_bytes INTEGER NOT NULL DEFAULT 0,
    dropped_total INTEGER NOT NULL DEFAULT 0,
    unreported_limit INTEGER NOT NULL DEFAULT 0,
    unreported_ttl INTEGER NOT NULL DEFAULT 0,
    unreported_from_seq INTEGER,
    unreported_to_seq INTEGER
  );
  INSERT OR IGNORE INTO sync_state (id) VALUES (1);
  CREATE TABLE IF NOT EXISTS sync_commands (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    received_at TEXT NOT NULL,
    result TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS sync_commands_received ON sync_commands (received_at);
  CREATE TABLE IF NOT EXISTS sync_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    applied_at TEXT NOT NULL,
    config TEXT NOT NULL
  );
` + SYNC_RETAINED_SQL + SYNC_DEPTH_TRIGGER_SQL;
