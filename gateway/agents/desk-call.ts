import type { Recorder } from '../../media/recorder/recorder';
import type { RecordingWriter } from '../../media/vault/vault';
import type { WebRtcLeg } from '../../media/webrtc/webrtc-leg';
import type { CallEndCause } from '../calls/call';
import type { Logger } from '../logging';

/**
 * A call as the agent desk handles it: an inbound call from the PBX, or a queued callback that
 * dials the caller once the agent is connected. Both own their media and close it in close().
 */
export interface DeskCall {
  readonly id: string;
  readonly log: Logger;
  readonly closed: boolean;
  readonly codec: 'PCMU' | 'PCMA';
  /** `private`: the caller asked for privacy (RFC 3323); agents see "Private". */
  readonly caller: { number: string; name: string | null; private?: boolean };
  readonly agent: string | undefined;
  readonly isHeld: boolean;
  readonly isMuted: boolean;
  attachAgent(agentName: string, leg: WebRtcLeg): void;
  setHold(on: boolean): void;
  setMute(on: boolean): void;
  sendDtmf(digits: string): boolean;
  record(type: string, data?: Record<string, unknown>, changes?: { queue?: string; agent?: string }): void;
  close(cause: CallEndCause): Promise<void>;
  once(event: 'closed', listener: (cause: CallEndCause) => void): unknown;
  once(event: 'agentConnected', listener: (agentName: string) => void): unknown;
  on(event: 'dtmf', listener: (digit: string) => void): unknown;
  /** Inbound calls: the agent leg failed before it connected (see detachAgent). */
  on(event: 'agentMediaFailed', listener: (agentName: string) => void): unknown;
  /** Takes back an agent leg that never connected, the caller staying on hold; false if not possible. */
  detachAgent?(): boolean;
  /** The IVR's outcome (the caller's path through the menus), when the call went through one. */
  readonly ivrResult?: { readonly path: readonly string[] } | null;
  /** The number the caller dialled, when known. */
  readonly called?: string | null;
  /** Set on a callback the appliance placed. */
  readonly callback?: object;
  /** Inbound calls can be recorded once bridged. */
  attachRecording?(recorder: Recorder, writer: RecordingWriter): void;
  /** Pauses/resumes the recording (false: the call is not being recorded). */
  setRecordingPaused?(on: boolean, actor: string, reason: string): boolean;
  readonly recordingState?: { active: boolean; paused: boolean };
  /** Ends the recording; the call goes on. */
  stopRecording?(cause: string): void;
}
