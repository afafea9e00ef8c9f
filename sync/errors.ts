import { CodedError } from '../lib/coded-error';

/** Stable error codes of sync/ (the gateway's ErrorCode union can adopt them as they are). */
export type SyncErrorCode =
  | 'SYNC_POLICY_INVALID'
  | 'SYNC_SCHEMA_MISSING'
  | 'SYNC_NOT_CONNECTED'
  | 'SYNC_CONFIG_INVALID'
  | 'SYNC_EVENT_UNKNOWN'
  | 'CMD_MALFORMED'
  | 'CMD_UNKNOWN'
  | 'CMD_INVALID_ARGS'
  | 'CMD_FAILED';

export class SyncError extends CodedError<SyncErrorCode> {}
