/**
 * Errors of the ACD core. Codes are stable (pages, logs and the cloud match on them).
 * Kept apart from gateway/errors.ts's ErrorCode union until those codes are added there; then
 * AcdError can extend CcedgeError (see the report of the change that introduced this file).
 */
export type AcdErrorCode =
  | 'AGENT_LOGIN_FAILED'
  | 'AGENT_BAD_TRANSITION'
  | 'ACD_UNKNOWN_AGENT'
  | 'ACD_UNKNOWN_QUEUE'
  | 'ACD_UNKNOWN_CALL'
  | 'ACD_DUPLICATE_CALL'
  | 'ACD_CLOSED';

export class AcdError extends Error {
  constructor(
    readonly code: AcdErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AcdError';
  }
}

export function isAcdError(e: unknown, code?: AcdErrorCode): e is AcdError {
  return e instanceof AcdError && (code === undefined || e.code === code);
}
