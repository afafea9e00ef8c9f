import { CodedError } from '../lib/coded-error';

/**
 * Errors raised by the media layer. The `code` is a stable contract: the gateway maps it to SIP
 * responses (e.g. SDP_NO_COMMON_CODEC → 488) and to metrics, so never rename a code.
 */
export type MediaErrorCode =
  | 'RTP_PORTS_EXHAUSTED'
  | 'RTP_BIND_FAILED'
  | 'SDP_INVALID'
  | 'SDP_NO_COMMON_CODEC'
  /** c= names an address media must never go to (multicast, broadcast, 0.0.0.0 in an initial offer): 488. */
  | 'SDP_ADDRESS_REFUSED'
  /** The trunk requires SRTP and the offer has no usable RTP/SAVP a=crypto: 488. */
  | 'SDP_SRTP_REQUIRED'
  | 'PROMPT_INVALID'
  | 'WEBRTC_FAILED'
  /** A media joint already has its maximum number of parties (monitors are not counted). */
  | 'JOINT_FULL'
  /** A media joint was asked about a participant id it does not have. */
  | 'JOINT_UNKNOWN_PARTICIPANT'
  /** A participant id was added twice to one media joint. */
  | 'JOINT_DUPLICATE_PARTICIPANT'
  /** A participant was added to a media joint after close(). */
  | 'JOINT_CLOSED'
  /** A media worker was sent a control message it cannot apply (a bug on one side, logged). */
  | 'MEDIA_WORKER_PROTOCOL'
  /** The media worker holding this call's media died; its calls end. */
  | 'MEDIA_WORKER_LOST'
  /** Asked of a session or joint on a media worker what only the main thread can do (packet taps, IVR). */
  | 'MEDIA_IN_WORKER';

export class MediaError extends CodedError<MediaErrorCode> {}
