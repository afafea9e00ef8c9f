import { CodedError, codedErrorGuard } from '../lib/coded-error';
import type { AcdErrorCode } from './acd/errors';
import type { CallErrorCode } from './calls/errors';

/** Stable error codes: users, logs and the cloud match on these, never on messages. */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  // A config push larger than sync.maxConfigBytes, refused before it is parsed (sync/config-sync.ts).
  | 'CONFIG_TOO_LARGE'
  | 'DB_FAILED'
  | 'DB_MIGRATION_FAILED'
  | 'SIP_BAD_REQUEST'
  | 'SIP_PEER_FORBIDDEN'
  | 'SIP_AUTH_FAILED'
  | 'SIP_CAPACITY'
  | 'SIP_NO_DIALOG'
  | 'SIP_TRANSPORT_FAILED'
  // A REFER we would send (an agent's transfer through the PBX): the dialog is not up, another
  // REFER of ours is still running, or the Refer-To / Referred-By URI is unusable.
  | 'SIP_DIALOG_NOT_CONFIRMED'
  | 'SIP_REFER_PENDING'
  | 'SIP_BAD_REFER_TARGET'
  // The site certificate (gateway/certs) or the installer's PEM files cannot be used.
  | 'TLS_CERT_INVALID'
  | 'HTTP_UNAUTHORIZED'
  | 'HTTP_NOT_FOUND'
  | 'HTTP_BAD_REQUEST'
  /** Request body over http.maxBodyBytes (413; the connection is closed, the rest is not read). */
  | 'HTTP_BODY_TOO_LARGE'
  /** Too many wrong bearer tokens from this address (429 + Retry-After). */
  | 'HTTP_AUTH_THROTTLED'
  | 'CLI_USAGE'
  /** People and queues changed live (admin API, CLI, cloud): the change is not valid (400). */
  | 'PEOPLE_INVALID'
  /** No agent or queue of that name (404). */
  | 'PEOPLE_NOT_FOUND'
  /** An agent or queue of that name exists already (409). */
  | 'PEOPLE_EXISTS'
  /** The queue is still named by agents or other queues (409): change those first. */
  | 'PEOPLE_IN_USE'
  /** Too many failed logins from this address or for this agent name (429 + Retry-After). */
  | 'AGENT_LOGIN_THROTTLED'
  /** A read-only command found no data directory (it never creates one). */
  | 'CLI_NO_DATA_DIR'
  /** /setup: wrong claim code, already done (410), or the first-run settings are invalid. */
  | 'SETUP_REFUSED'
  /** Supervisor monitoring (gateway/supervisor/monitoring.ts): not wired, or the call cannot be joined. */
  | 'MONITOR_UNAVAILABLE'
  | 'MONITOR_NO_SUCH_CALL'
  // Backups (gateway/backup): no path or passphrase, a wrong passphrase, a damaged backup, a busy run.
  | 'BACKUP_FAILED'
  | 'BACKUP_NOT_CONFIGURED'
  | 'BACKUP_BAD_PASSPHRASE'
  | 'BACKUP_CORRUPT'
  | 'BACKUP_NOT_FOUND'
  | 'BACKUP_TARGET_NOT_EMPTY'
  | 'BACKUP_BUSY'
  // A blind transfer (agents/transfers.ts): no such connected call, a bad or unknown target, the
  // target cannot take it, the call cannot be transferred, or a transfer of it is running.
  | 'TRANSFER_NO_CALL'
  | 'TRANSFER_BAD_TARGET'
  | 'TRANSFER_UNAVAILABLE'
  | 'TRANSFER_NOT_ALLOWED'
  | 'TRANSFER_BUSY'
  // The ACD's and a call's own codes, each listed once where they are raised.
  | AcdErrorCode
  | CallErrorCode;

/** The gateway's error; a subsystem narrows the code to its own part of the union (AcdError, CallError). */
export class CcedgeError<C extends ErrorCode = ErrorCode> extends CodedError<C> {}

export const isCcedgeError = codedErrorGuard<CcedgeError>(CcedgeError);
