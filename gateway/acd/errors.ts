import { codedErrorGuard } from '../../lib/coded-error';
import { CcedgeError } from '../errors';

/** Errors of the ACD core. Codes are stable (pages, logs and the cloud match on them). */
export type AcdErrorCode =
  | 'AGENT_LOGIN_FAILED'
  /** login(): the password-hashing queue is full; nothing was checked (HTTP 503 + Retry-After). */
  | 'AGENT_LOGIN_BUSY'
  /** login() for a page of another role: an agent at /supervisor, a supervisor at /agent (HTTP 403). */
  | 'AGENT_WRONG_ROLE'
  /** login(): right one-time password, but a new password must be chosen first (HTTP 403). */
  | 'AGENT_PASSWORD_CHANGE_REQUIRED'
  /** login(): the new password is not acceptable (too short, same as the one-time one) (HTTP 400). */
  | 'AGENT_PASSWORD_REJECTED'
  | 'AGENT_BAD_TRANSITION'
  | 'ACD_UNKNOWN_AGENT'
  | 'ACD_UNKNOWN_QUEUE'
  | 'ACD_UNKNOWN_CALL'
  | 'ACD_DUPLICATE_CALL'
  /** enqueue(): the queue (and any whenFull overflow queue) is at maxSize and whenFull is busy. */
  | 'ACD_QUEUE_FULL'
  /** reconfigureQueues(): a queue to be removed still has calls, or the new set is inconsistent. */
  | 'ACD_RECONFIGURE_REFUSED'
  /** transfer() to a named agent who is not logged in and available (or is the transferring agent). */
  | 'ACD_AGENT_UNAVAILABLE'
  | 'ACD_CLOSED';

export class AcdError extends CcedgeError<AcdErrorCode> {}

export const isAcdError = codedErrorGuard(AcdError);
