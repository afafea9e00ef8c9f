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

export class VaultError extends Error {
  constructor(
    readonly code: VaultErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'VaultError';
  }
}
