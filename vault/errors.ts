import { CodedError } from '../lib/coded-error';

/** Errors of the recording vault. The `code` is a stable contract (CLI exit codes, HTTP statuses). */
export type VaultErrorCode =
  | 'VAULT_NOT_FOUND'
  | 'VAULT_TAMPERED'
  | 'VAULT_TRUNCATED'
  | 'VAULT_KEY_UNAVAILABLE'
  | 'VAULT_LEGAL_HOLD'
  | 'VAULT_REASON_REQUIRED'
  | 'VAULT_BAD_STATE'
  | 'VAULT_RANGE'
  | 'VAULT_WRITE_FAILED';

export class VaultError extends CodedError<VaultErrorCode> {
  // Always an object (empty when there are none), as before the shared base: readers need no check.
  declare readonly details: Record<string, unknown>;
  constructor(code: VaultErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details);
  }
}
