/**
 * What the main thread and a media worker say to each other. Control only: sessions, players,
 * digits and joints are opened, changed and closed by messages; packets never cross (a call's
 * media lives on one worker). Counters cross through shared memory (STATS_FIELDS per session),
 * refreshed by the worker every STATS_REFRESH_MS, so reading them costs no message.
 */
import type { DtmfDigitEvent } from '../dtmf/rfc4733';
import type { G711Codec } from '../tones/g711';
import type { ParticipantKind, ParticipantRole } from '../mixer/mixer';

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
  | { op: 'tone'; sid: number; key: number | null }
  | { op: 'digits'; sid: number; digits: string }
  | { op: 'digits-stop'; sid: number }
  | { op: 'joint-open'; jid: number; maxParties: number }
  | { op: 'joint-add'; jid: number; id: string; sid: number; payloadType: number; codec: G711Codec; role: ParticipantRole; kind: ParticipantKind }
  | { op: 'joint-remove'; jid: number; id: string }
  | { op: 'joint-role'; jid: number; id: string; role: ParticipantRole }
  /** key null: back in the call; -1: held with silence; else the frames stored under key. */
  | { op: 'joint-hold'; jid: number; id: string; key: number | null }
  | { op: 'joint-mute'; jid: number; id: string; on: boolean }
  | { op: 'joint-close'; jid: number };

export type FromWorker =
  | { ev: 'ready' }
  | { ev: 'opened'; sid: number }
  | { ev: 'open-failed'; sid: number; code: string; message: string; inUse: boolean }
  | { ev: 'dtmf'; sid: number; event: DtmfDigitEvent }
  | { ev: 'foreign' | 'latched'; sid: number; address: string; port: number }
  | { ev: 'error'; sid: number; message: string }
  /** A control message the worker could not apply (a bug on one side): logged by the main thread. */
  | { ev: 'problem'; op: string; message: string };
