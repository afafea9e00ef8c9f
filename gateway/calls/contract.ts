import type { RecordingTap } from '../../media';
import type { Recorder } from '../../media';
import type { RecordingWriter } from '../../vault';
import type { MediaWorker, WebRtcEndpoint } from '../../media';
import type { CloudEventData } from '../../sync/events';
import type { IvrResult } from '../ivr/ivr-session';
import type { Logger } from '../logging';
import type { CallEventType } from '../store/call-store';

/**
 * The call contract: what the desk, the callback scheduler, the recording service and the
 * phase-2 features (transfers, monitoring) may rely on. Inbound calls, forwarded calls and
 * callbacks are all one Call class (calls/call.ts) that implements it.
 */

export type CallEndCause =
  | 'caller-hangup'
  | 'caller-cancelled'
  | 'max-duration'
  | 'ack-timeout'
  | 'rtp-timeout'
  | 'shutdown'
  | 'internal-error'
  | 'agent-hangup'
  | 'agent-lost'
  | 'agent-logout'
  | 'media-failed'
  | 'callback-requested'
  | 'callback-failed'
  | 'queue-full'
  /** A live change removed the call's queue and configured nowhere for its callers to go. */
  | 'queue-removed'
  /** Forwarded to a trunk number: the far end did not answer, refused, or could not be dialled. */
  | 'forward-failed'
  /** Forwarded to a trunk number: the far end hung up. */
  | 'forward-hangup'
  /** Delayed offer: the ACK carried no usable SDP answer to the offer in our 200 (or a re-INVITE's). */
  | 'no-sdp-answer'
  /** RFC 4028: the PBX did not refresh the session in time, or refused our refresh. */
  | 'session-expired'
  /** An agent's leg left the call on a transfer; or the whole call: the PBX took the caller on (REFER). */
  | 'transferred';

/**
 * What a participant hears and who hears it (media/joint's ParticipantRole): party talks and
 * hears parties; listener hears all, heard by nobody; coach hears all, heard only by agents;
 * barge hears all, heard by all.
 */
export type ParticipantRole = 'party' | 'listener' | 'coach' | 'barge';

/** caller: the inbound SIP UAS leg; outbound: a SIP UAC leg through a trunk; agent: WebRTC. */
export type LegKind = 'caller' | 'outbound' | 'agent';

/** ringing: being set up (INVITE out, WebRTC connecting); up: in the joint; ended: gone. */
export type LegState = 'ringing' | 'up' | 'ended';

/** One leg of a call as `call.legs` shows it. */
export interface LegInfo {
  readonly id: string;
  readonly kind: LegKind;
  /** The agent's or supervisor's name; the caller's display name. */
  readonly name: string | null;
  /** The caller's or outbound target's number. */
  readonly number: string | null;
  readonly role: ParticipantRole;
  readonly state: LegState;
  readonly held: boolean;
  /** When the leg was added (ISO 8601). */
  readonly since: string;
}

/** Where an outbound leg is dialled: a number through a trunk's outbound address. */
export interface OutboundTarget {
  trunk: string;
  number: string;
  /** Why it is dialled, for the record (a routing.forward rule, 'refer', 'callback', 'transfer'). */
  rule?: string;
}

export interface CallEvents {
  /** The caller's ACK arrived: the call is up (the desk queues it). */
  confirmed: [];
  /** The agent's WebRTC leg is connected and joined to the caller. */
  agentConnected: [agentName: string];
  /** A DTMF digit from the caller (RFC 4733 or SIP INFO). */
  dtmf: [digit: string];
  /**
   * The call is ready to be queued: right after `confirmed` without an IVR (null), or when the
   * IVR decided (intent, callback, or abandoned for no-input / max-duration / error). Not
   * emitted when the caller hangs up during the IVR.
   */
  routed: [result: IvrResult | null];
  /**
   * The agent (or queue) no longer has the call, though it goes on: the PBX's REFER moved the
   * caller to another number (`transferred`). The desk treats it like the end of the call.
   */
  released: [cause: 'transferred'];
  closed: [cause: CallEndCause];
  /**
   * The agent's WebRTC leg failed before it ever connected (ICE/DTLS timeout). Only emitted when
   * someone listens (the desk re-queues the caller); without a listener the call ends media-failed.
   */
  agentMediaFailed: [agentName: string];
  /** A leg joined the call (it may still be ringing). */
  legAdded: [legId: string, kind: LegKind, name: string | null];
  /** A leg left the call (hung up, removed, failed); not emitted for the legs close() ends. */
  legRemoved: [legId: string, kind: LegKind, name: string | null];
}

/**
 * What a blind transfer (agents/transfers.ts) needs of a call beyond the desk's view: inbound calls
 * (the Call class); callbacks and test doubles lack `referCaller` and are not transferable.
 */
export interface TransferableCall extends DeskCall {
  /** The trunk the caller came in on: transfers to a number go through it. */
  readonly trunk: { readonly name: string; readonly transferMode: 'refer' | 'bridge'; readonly outbound?: unknown } | null;
  readonly legs: LegInfo[];
  /** Queue or agent transfer: the agent's leg leaves; the caller hears the hold tone until the next agent. */
  releaseAgent(cause: CallEndCause): boolean;
  /** REFER to the PBX on the caller's dialog; resolves with the referred call's final status. */
  referCaller(number: string, referredBy?: string): Promise<number>;
  addOutbound(target: OutboundTarget, opts?: { endCause?: CallEndCause; beforeJoin?(): void; dialing?(leg: { sipCallId: string }): void }): Promise<string>;
  removeLeg(legId: string, cause: CallEndCause): void;
}

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
  attachAgent(agentName: string, leg: WebRtcEndpoint): void;
  /** The media worker the call's media is on (its WebRTC legs go there too); undefined: the main thread. */
  readonly mediaWorker?: MediaWorker;
  setHold(on: boolean): void;
  setMute(on: boolean): void;
  sendDtmf(digits: string): boolean;
  record<T extends CallEventType>(type: T, data: CloudEventData<T>, changes?: { queue?: string; agent?: string }): void;
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
  /** Calls can be recorded once joined. */
  attachRecording?(recorder: Recorder, writer: RecordingWriter): void;
  /** Pauses/resumes the recording (false: the call is not being recorded). */
  setRecordingPaused?(on: boolean, actor: string, reason: string): boolean;
  readonly recordingState?: { active: boolean; paused: boolean };
  /** Ends the recording; the call goes on. */
  stopRecording?(cause: string): void;
  /**
   * Listeners on the call's media besides its parties (recording, media fork, live transcripts):
   * left the customer, right what the customer hears. undefined before joined or once closed.
   */
  tapSource?(): { addTap(tap: RecordingTap): void; removeTap(tap: RecordingTap): void | Promise<void> } | undefined;
}

/** A call just bridged to an agent (also after a transfer to the next agent): the speech features start here. */
export interface BridgedCall {
  call: DeskCall;
  queue: string | undefined;
  agent: string;
  intent: string | null | undefined;
}
