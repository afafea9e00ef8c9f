/**
 * What the main thread and a media worker say to each other. Control only: sessions, players,
 * digits and joints are opened, changed and closed by messages; packets never cross (a call's
 * media lives on one worker). Counters cross through shared memory (STATS_FIELDS per session),
 * refreshed by the worker every STATS_REFRESH_MS, so reading them costs no message.
 */
import type { DtmfDigitEvent } from '../dtmf/rfc4733';
import type { G711Codec } from '../tones/g711';
import type { ParticipantKind, ParticipantRole } from '../mixer/mixer';
import type { WebRtcLegState } from '../webrtc/webrtc-leg';

/** Per-session slot layout in the worker's shared Float64Array. */
export const STATS_FIELDS = [
  'packetsSent',
  'octetsSent',
  'packetsReceived',
  'octetsReceived',
  'packetsDropped',
  'packetsForeign',
  'sendOverruns',
  'lastReceivedAt',
  'srtpRejected',
  /** Frames the session's joint port was handed (the call record's bridgedTo… counts). */
  'jointSent',
] as const;
export const STATS_STRIDE = STATS_FIELDS.length;
export const STATS_REFRESH_MS = 100;
/**
 * How often a worker hands the main thread what its joints' taps (recording, forks, transcripts)
 * captured: one message per tap per interval, never one per packet. Each packet carries the time it
 * was captured, so the recorder places it as if it had been there.
 */
export const TAP_CHUNK_MS = 100;
/**
 * Per packet in a tap chunk: channel u8 (a joint tap: 0 the customer, 1 what the customer hears;
 * a capture: the payload type), RTP timestamp u32, SSRC u32, capture time f64 (epoch ms), length u16.
 */
export const TAP_RECORD_HEADER = 19;

/** What a joint member is on the worker: an RTP session (with the payload type it joins with) or a WebRTC leg. */
export type JointSource = { kind: 'rtp'; sid: number; payloadType: number } | { kind: 'webrtc'; wid: number };

export interface WorkerInit {
  /** STATS_STRIDE float64s per session slot; the main thread hands out the slots. */
  stats: SharedArrayBuffer;
}

export type ToWorker =
  | { op: 'open'; sid: number; slot: number; host: string; port: number; latch: string[] | null }
  | { op: 'configure'; sid: number; payloadType: number; telephoneEventPayloadType?: number; clockRate?: number }
  | { op: 'remote'; sid: number; address: string; port: number }
  | { op: 'srtp'; sid: number; keys: { local: Uint8Array; remote: Uint8Array } | null }
  | { op: 'pause' | 'resume' | 'close'; sid: number }
  /** Frames the worker keeps by key (a tone or hold sound), sent once per worker. */
  | { op: 'frames'; key: number; frames: Uint8Array[] }
  /** The main thread no longer has those frames (reloaded prompts): players already using them keep them. */
  | { op: 'frames-drop'; key: number }
  | { op: 'tone'; sid: number; key: number | null }
  /** A one-shot prompt (the IVR's); 'prompt-end' when its last frame went out, not after prompt-stop. */
  | { op: 'prompt'; sid: number; key: number; pid: number }
  | { op: 'prompt-stop'; sid: number }
  /** The session's received packets (IVR speech capture) come back as 'tap-chunk' for `tid`, channel = payload type. */
  | { op: 'capture'; sid: number; tid: number }
  | { op: 'capture-stop'; sid: number }
  | { op: 'digits'; sid: number; digits: string }
  | { op: 'digits-stop'; sid: number }
  | { op: 'joint-open'; jid: number; maxParties: number }
  | { op: 'joint-add'; jid: number; id: string; source: JointSource; codec: G711Codec; role: ParticipantRole; kind: ParticipantKind }
  | { op: 'joint-remove'; jid: number; id: string }
  | { op: 'joint-role'; jid: number; id: string; role: ParticipantRole }
  /** key null: back in the call; -1: held with silence; else the frames stored under key. */
  | { op: 'joint-hold'; jid: number; id: string; key: number | null }
  | { op: 'joint-mute'; jid: number; id: string; on: boolean }
  | { op: 'joint-close'; jid: number }
  /** The joint's taps: chunks of what the customer says and hears come back as 'tap-chunk'. */
  | { op: 'tap-add'; jid: number; tid: number; callerId: string }
  /** Answered once the tap's last chunk is sent, so the tap gets every packet up to its removal. */
  | { op: 'tap-remove'; jid: number; tid: number; rid: number }
  /** An agent's or supervisor's WebRTC leg (werift) on this worker; its stats use a session slot. */
  | { op: 'webrtc-open'; wid: number; slot: number; codec: 'PCMU' | 'PCMA'; interfaces: string[]; portRange?: { min: number; max: number } }
  | { op: 'webrtc-offer'; wid: number; rid: number }
  | { op: 'webrtc-answer'; wid: number; rid: number; sdp: string }
  | { op: 'webrtc-close'; wid: number; rid: number };

export type FromWorker =
  | { ev: 'ready' }
  | { ev: 'opened'; sid: number }
  | { ev: 'open-failed'; sid: number; code: string; message: string; inUse: boolean }
  | { ev: 'dtmf'; sid: number; event: DtmfDigitEvent }
  | { ev: 'foreign' | 'latched'; sid: number; address: string; port: number }
  | { ev: 'error'; sid: number; message: string }
  /** A control message the worker could not apply (a bug on one side): logged by the main thread. */
  | { ev: 'problem'; op: string; message: string }
  /** The answer to a request carrying `rid` (an offer's SDP, or why it failed). */
  | { ev: 'reply'; rid: number; ok: true; sdp?: string }
  | { ev: 'reply'; rid: number; ok: false; code: string; message: string }
  | { ev: 'webrtc-state'; wid: number; state: WebRtcLegState }
  /** What a WebRTC leg logs (state changes, refused answers): logged on the call's logger. */
  | { ev: 'webrtc-log'; wid: number; level: 'info' | 'warn'; fields: Record<string, string | number | boolean>; msg: string }
  | { ev: 'tap-chunk'; tid: number; data: Uint8Array }
  | { ev: 'prompt-end'; sid: number; pid: number };
