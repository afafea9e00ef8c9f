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
  | 'HTTP_UNAUTHORIZED'
  | 'HTTP_NOT_FOUND'
  | 'HTTP_BAD_REQUEST'
  | 'CLI_USAGE'
  | 'AGENT_LOGIN_FAILED'
  | 'AGENT_BAD_TRANSITION'
  | 'ACD_UNKNOWN_AGENT'
  | 'ACD_UNKNOWN_QUEUE'
  | 'ACD_UNKNOWN_CALL'
  | 'ACD_DUPLICATE_CALL'
  | 'ACD_QUEUE_FULL'
  | 'ACD_RECONFIGURE_REFUSED'
  | 'ACD_CLOSED';

export class CcedgeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CcedgeError';
  }
}

export function isCcedgeError(e: unknown, code?: ErrorCode): e is CcedgeError {
  return e instanceof CcedgeError && (code === undefined || e.code === code);
}
