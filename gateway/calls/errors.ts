import { codedErrorGuard } from '../../lib/coded-error';
import { CcedgeError } from '../errors';

/** Errors of a call's leg API (calls/call.ts). Codes are stable: the desk and the pages match on them. */
export type CallErrorCode =
  /** The call has ended: nothing can be added or changed. */
  | 'CALL_CLOSED'
  /** No leg with that id on this call. */
  | 'CALL_UNKNOWN_LEG'
  /** calls.maxParties parties are on the call already (monitors are not counted). */
  | 'CALL_FULL'
  /** The outbound leg was not answered, was refused, or its answer was unusable (details: status, reason). */
  | 'CALL_OUTBOUND_FAILED'
  /** No trunk can place outbound calls (trunks[].outbound), or no RTP port was free. */
  | 'CALL_OUTBOUND_UNAVAILABLE';

export class CallError extends CcedgeError<CallErrorCode> {}

export const isCallError = codedErrorGuard(CallError);
