import { CcedgeError } from '../errors';
import type { MonitorMode } from './protocol';

export type { MonitorMode };

/**
 * What the supervisor side needs from the calls to monitor one: a WebRTC leg to the supervisor's
 * browser joining the call's media joint as listener (listen), coach (whisper) or barge. The
 * offer/answer flow is the agent desk's: start() returns the offer the page answers, accept()
 * takes the page's answer. Implemented by the call model (issue 16 phase 2); until then the
 * supervisor desk has none and answers `monitor` with SUP_MONITOR_UNAVAILABLE.
 */
export interface Monitoring {
  /**
   * Joins `callId` for `supervisor` in `mode`; resolves with the SDP offer for the page. A second
   * start for the same supervisor and call changes the mode (resolving with a new offer or null
   * when the existing leg is kept). Rejects with MonitoringError when the call cannot be monitored.
   */
  start(supervisor: string, callId: string, mode: MonitorMode): Promise<{ sdp: string } | null>;
  /** The page's answer to the offer of start(). */
  accept(supervisor: string, callId: string, sdp: string): Promise<void>;
  /** Leaves the call (idempotent); `ended` follows with reason `stopped`. */
  stop(supervisor: string, callId: string): void;
  /** A monitoring session ended: stopped, the call ended, the supervisor's page went away, media failed. */
  on(event: 'ended', listener: (supervisor: string, callId: string, reason: string) => void): unknown;
}

export type MonitoringErrorCode = 'MONITOR_UNAVAILABLE' | 'MONITOR_NO_SUCH_CALL';

export class MonitoringError extends CcedgeError {
  constructor(
    override readonly code: MonitoringErrorCode,
    message: string,
  ) {
    super(code, message);
    this.name = 'MonitoringError';
  }
}
