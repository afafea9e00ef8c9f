import type { Log } from '../lib/log';

/**
 * What the vault needs from its host. vault/ never imports gateway/: the gateway's Db and pino
 * logger satisfy these interfaces structurally.
 */
export type VaultSqlParam = string | number | bigint | null | Buffer;

export interface VaultDb {
  run(sql: string, params?: VaultSqlParam[]): Promise<{ changes: number }>;
  get<T = Record<string, unknown>>(sql: string, params?: VaultSqlParam[]): Promise<T | undefined>;
  all<T = Record<string, unknown>>(sql: string, params?: VaultSqlParam[]): Promise<T[]>;
  /** BEGIN IMMEDIATE … COMMIT, serialised with every other write (gateway Db.transaction). */
  transaction<T>(work: (db: VaultDb) => Promise<T>): Promise<T>;
}

export type VaultLogger = Pick<Log, 'info' | 'warn' | 'error'>;

/**
 * The vault's tables, to be appended by the gateway as one new entry of MIGRATIONS (append-only
 * list in gateway/store/migrations.ts). The triggers make the audit log append-only for anything
 * that goes through sqlite; the hash chain detects whoever bypasses them.
 */
export const VAULT_MIGRATION_SQL = `
  CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finalized_at TEXT,
    codec TEXT NOT NULL CHECK (codec IN ('PCMU', 'PCMA')),
    channels INTEGER NOT NULL DEFAULT 2,
    sample_rate INTEGER NOT NULL DEFAULT 8000,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    chunk_size INTEGER NOT NULL,
    chunks INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    wrapped_key TEXT,
    key_id TEXT NOT NULL,
    file TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'final', 'deleted')),
    end_reason TEXT,
    recovered INTEGER NOT NULL DEFAULT 0,
    paused_ms INTEGER NOT NULL DEFAULT 0,
    legal_hold INTEGER NOT NULL DEFAULT 0,
    retention_until TEXT,
    deleted_at TEXT,
    queue TEXT,
    intent TEXT,
    agent TEXT
  );
  CREATE INDEX recordings_call ON recordings (call_id);
  CREATE INDEX recordings_state_retention ON recordings (state, retention_until);
  CREATE INDEX recordings_key ON recordings (key_id);
  CREATE TABLE legal_holds (
    call_id TEXT PRIMARY KEY,
    set_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL
  );
  CREATE TABLE recording_audit (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    recording_id TEXT,
    reason TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE INDEX recording_audit_recording ON recording_audit (recording_id, seq);
  CREATE TRIGGER recording_audit_no_update BEFORE UPDATE ON recording_audit
    BEGIN SELECT RAISE(ABORT, 'recording_audit is append-only'); END;
  CREATE TRIGGER recording_audit_no_delete BEFORE DELETE ON recording_audit
    BEGIN SELECT RAISE(ABORT, 'recording_audit is append-only'); END;
`;

/** Call transcripts beside the recordings (vault/transcript-vault.ts); appended after VAULT_MIGRATION_SQL. */
export const TRANSCRIPTS_MIGRATION_SQL = `
  CREATE TABLE transcripts (id TEXT PRIMARY KEY, call_id TEXT NOT NULL, recording_id TEXT, created_at TEXT NOT NULL,
    bytes INTEGER NOT NULL, utterances INTEGER NOT NULL, sha256 TEXT NOT NULL, wrapped_key TEXT, key_id TEXT NOT NULL, file TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('final', 'deleted')), source TEXT NOT NULL, quality TEXT,
    legal_hold INTEGER NOT NULL DEFAULT 0, retention_until TEXT, deleted_at TEXT, queue TEXT, intent TEXT, agent TEXT);
  CREATE INDEX transcripts_call ON transcripts (call_id);
  CREATE INDEX transcripts_state_retention ON transcripts (state, retention_until);
  CREATE INDEX transcripts_key ON transcripts (key_id);
`;
