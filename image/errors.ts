import { CodedError } from '../lib/coded-error';

/**
 * Stable error codes of the image tools (binary runtime, provisioning, update bundles, A/B slots).
 * Installers, operators and the cloud match on these codes, never on the messages.
 */
export type ImageErrorCode =
  | 'IMAGE_USAGE'
  | 'IMAGE_RUNTIME_EXTRACT_FAILED'
  | 'IMAGE_BUILD_FAILED'
  | 'PROVISION_ALREADY_DONE'
  | 'PROVISION_INVALID'
  | 'PROVISION_INPUT_UNREADABLE'
  | 'PROVISION_CSR_FAILED'
  | 'UPDATE_BUNDLE_MALFORMED'
  | 'UPDATE_BUNDLE_UNREADABLE'
  | 'UPDATE_NO_TRUSTED_KEYS'
  | 'UPDATE_UNTRUSTED_KEY'
  | 'UPDATE_BAD_SIGNATURE'
  | 'UPDATE_INCOMPATIBLE'
  | 'UPDATE_DOWNGRADE'
  | 'UPDATE_MIN_VERSION'
  | 'UPDATE_PAYLOAD_HASH'
  | 'UPDATE_NOT_INSTALLED'
  | 'UPDATE_IN_PROGRESS'
  | 'UPDATE_DOWNLOAD_FAILED'
  | 'UPDATE_APPLY_FAILED';

/** Codes that mean "the input was wrong" (exit 2); every other code exits 1. */
const USAGE_CODES = new Set<ImageErrorCode>(['IMAGE_USAGE', 'PROVISION_INVALID', 'PROVISION_INPUT_UNREADABLE']);

export class ImageError extends CodedError<ImageErrorCode> {
  get exitCode(): number {
    return USAGE_CODES.has(this.code) ? 2 : 1;
  }
}
