/**
 * Agent softphone signalling over WebSocket `/ws`, version 1: JSON messages, one per frame.
 * Shared by the server (which validates every client message with these zod schemas) and the
 * browser page (which imports the types only). Bump PROTOCOL_VERSION on an incompatible change.
 */
import { z } from 'zod';
import type { AgentState } from '../acd/agent-state';
import { DISPOSITIONS, type Disposition } from '../kpi/kpi';
import { parseTransferTarget, TRANSFER_TARGET_HELP, TRANSFER_TARGET_MAX } from './transfer-target';

export const PROTOCOL_VERSION = 1;

/** Longest wrap-up note kept per call (characters). */
export const NOTES_MAX_CHARS = 4000;

export { AGENT_STATES, type AgentState } from '../acd/agent-state';

const callId = z.string().uuid();
const base = { v: z.literal(PROTOCOL_VERSION), ref: z.string().max(64).optional() };
const transferTarget = z
  .string()
  .max(TRANSFER_TARGET_MAX, `a transfer target is at most ${TRANSFER_TARGET_MAX} characters`)
  .refine((t) => parseTransferTarget(t) !== null, { message: `a transfer target is ${TRANSFER_TARGET_HELP}` });

/** blind: the agent leaves as the call goes on; consult: the caller waits on hold while the agent talks to the target first. */
export const TRANSFER_MODES = ['blind', 'consult'] as const;
export type TransferMode = (typeof TRANSFER_MODES)[number];

/** Messages from the page. `ref` is echoed in the reply or error so the page can correlate. */
export const clientMessage = z.discriminatedUnion('type', [
  /** First message on every connection: the session token from POST /agent/login. */
  z.object({ ...base, type: z.literal('hello'), token: z.string().min(16).max(128) }).strict(),
  z.object({ ...base, type: z.literal('setState'), state: z.enum(['available', 'away']), reason: z.string().max(64).optional() }).strict(),
  z.object({ ...base, type: z.literal('answer'), callId }).strict(),
  z.object({ ...base, type: z.literal('webrtcAnswer'), callId, sdp: z.string().min(10).max(20_000) }).strict(),
  z.object({ ...base, type: z.literal('hangup'), callId }).strict(),
  z.object({ ...base, type: z.literal('hold'), callId, on: z.boolean() }).strict(),
  z.object({ ...base, type: z.literal('mute'), callId, on: z.boolean() }).strict(),
  /** Pause the call's recording while the caller gives card details (the gap is silence, and audited). */
  z.object({ ...base, type: z.literal('recordingPause'), callId, on: z.boolean(), reason: z.string().min(1).max(64).optional() }).strict(),
  z.object({ ...base, type: z.literal('dtmf'), callId, digits: z.string().regex(/^[0-9*#A-D]{1,32}$/) }).strict(),
  z.object({ ...base, type: z.literal('disposition'), callId, disposition: z.enum(DISPOSITIONS) }).strict(),
  z.object({ ...base, type: z.literal('logout') }).strict(),
  z.object({ ...base, type: z.literal('ping') }).strict(),
  /**
   * What the page can do: sent after welcome and whenever it changes. A session that declared no
   * microphone is refused `available` (WS_NO_MICROPHONE): a caller must never reach a desk that
   * cannot talk. Pages that never send it (older pages, test agents) are not refused.
   */
  z.object({ ...base, type: z.literal('devices'), microphone: z.boolean(), detail: z.string().max(200).optional() }).strict(),
  /** Wrap-up notes of a call the agent took (saved as typed; the latest text wins). */
  z.object({ ...base, type: z.literal('notes'), callId, text: z.string().max(NOTES_MAX_CHARS) }).strict(),
  /** More wrap-up time (agentDesk.wrapUpExtendS, up to agentDesk.maxWrapUpS in all). */
  z.object({ ...base, type: z.literal('extendWrapUp') }).strict(),
  /** Hand the connected call on: `target` as parseTransferTarget reads it (number, queue:<name>, agent:<name>). */
  z.object({ ...base, type: z.literal('transfer'), callId, target: transferTarget, mode: z.enum(TRANSFER_MODES) }).strict(),
  /** During a consult: the caller and the target go on together, the agent leaves. */
  z.object({ ...base, type: z.literal('completeTransfer'), callId }).strict(),
  /** During a consult: the caller joins (unheld); everybody hears everybody. */
  z.object({ ...base, type: z.literal('conference'), callId }).strict(),
  /** During a consult: the target leaves, the caller comes off hold. */
  z.object({ ...base, type: z.literal('cancelConsult'), callId }).strict(),
]);
export type ClientMessage = z.infer<typeof clientMessage>;

export interface CallInfo {
  callId: string;
  /** Caller number (From user) and display name as the PBX sent them. */
  caller: string;
  callerName: string | null;
  queue: string;
  /** When the caller entered the queue (ISO time): the page shows the wait growing. */
  queuedAt: string;
  /** What the desk knows about the caller (absent when it could not be looked up in time). */
  context?: CallContext;
}

/** Caller context on the ring and during the call. */
export interface CallContext {
  /** The number the caller dialled (To user). */
  called: string | null;
  /** The intent that routed the call, and how it was decided (`ivr`, `rule`, `default`, …). */
  intent: string | null;
  intentSource: string | null;
  /** IVR keys/menus the caller went through, in order. */
  ivrPath: string[];
  /**
   * Calls from this number in the last `recentCallsDays`, this one not counted; at most
   * RECENT_CALLS_MAX (caller-context.ts; the page shows "100+"): a trunk number every call shares must not cost a
   * count of thousands of rows per call.
   */
  recentCalls: number;
  /** A callback the appliance placed (the customer asked to be called back). */
  callback: boolean;
}

/** Where a consult stands: dialing/ringing the target, talking to it, or over (failed: `reason` says why). */
export const CONSULT_PHASES = ['dialing', 'ringing', 'connected', 'failed', 'ended'] as const;
export type ConsultPhase = (typeof CONSULT_PHASES)[number];

/** One participant of a call as the agent's page lists it (the media joint's view, by leg). */
export interface PartyInfo {
  /** Leg id, stable for the call's life. */
  id: string;
  /** caller: the customer; agent: a desk (WebRTC); external: an outbound leg (extension, number). */
  kind: 'caller' | 'agent' | 'external';
  /** Display name, agent name or number. */
  name: string;
  /** party talks and hears; listener/coach/barge are monitors (see media/joint). */
  role: 'party' | 'listener' | 'coach' | 'barge';
  held: boolean;
}

/** Desk settings the page needs (agentDesk: in ccedge.yaml). */
export interface DeskSettings {
  awayReasons: string[];
  /** CRM screen pop template with {caller}, {callerName}, {called}, {queue}, {intent}, {callId}; null: none. */
  screenPopUrl: string | null;
  wrapUpExtendS: number;
}

/** One call of this shift as the desk lists it. */
export interface ShiftCall {
  callId: string;
  /** When the agent answered (ISO). */
  at: string;
  caller: string;
  callerName: string | null;
  queue: string;
  durationS: number | null;
  disposition: Disposition | null;
}

/** Waiting callers of one of the agent's queues. */
export interface QueueFigures {
  name: string;
  waiting: number;
  longestWaitS: number;
}

export type ErrorCode =
  | 'WS_BAD_MESSAGE'
  | 'WS_UNSUPPORTED_VERSION'
  | 'WS_NOT_AUTHENTICATED'
  | 'WS_SESSION_INVALID'
  | 'WS_NOT_ALLOWED'
  | 'WS_NO_SUCH_CALL'
  | 'WS_NO_MICROPHONE'
  | 'WEBRTC_FAILED'
  /** transfer/consult: the target cannot take it now (agent not available, queue unknown, busy). */
  | 'WS_TARGET_UNAVAILABLE'
  /** completeTransfer/conference/cancelConsult with no consult running on the call. */
  | 'WS_NO_CONSULT'
  /** conference: calls.maxParties reached. */
  | 'WS_CONFERENCE_FULL';

/** Messages from the server. */
export type ServerMessage =
  | {
      v: 1;
      type: 'welcome';
      agent: { name: string; displayName: string };
      state: AgentState;
      reason: string | null;
      call: (CallInfo & { phase: 'ringing' | 'connected' }) | null;
      desk?: DeskSettings;
      /** A running wrap-up: its call and when it ends (ISO). */
      wrapUp?: { callId: string; endsAt: string } | null;
    }
  | { v: 1; type: 'state'; state: AgentState; reason: string | null; since: string }
  | { v: 1; type: 'ringing'; call: CallInfo; timeoutS: number }
  | { v: 1; type: 'ringCancelled'; callId: string; reason: 'caller-hangup' | 'no-answer' | 'taken-elsewhere' }
  | { v: 1; type: 'webrtcOffer'; callId: string; sdp: string }
  | { v: 1; type: 'callConnected'; callId: string }
  | { v: 1; type: 'held'; callId: string; on: boolean }
  | { v: 1; type: 'muted'; callId: string; on: boolean }
  /** The call's recording state: sent when recording starts, and in reply to recordingPause. */
  | { v: 1; type: 'recording'; callId: string; active: boolean; paused: boolean }
  /** `requeued`: the agent's audio never connected; the caller is back at the head of the queue. */
  | { v: 1; type: 'callEnded'; callId: string; cause: 'caller-hangup' | 'agent-hangup' | 'agent-lost' | 'media-failed' | 'requeued' | 'shutdown' | 'transferred' }
  | { v: 1; type: 'wrapUp'; callId: string; endsAt: string }
  /** The caller context, once looked up (it may arrive after `ringing`). */
  | { v: 1; type: 'callContext'; callId: string; context: CallContext }
  | { v: 1; type: 'queues'; queues: QueueFigures[] }
  | { v: 1; type: 'history'; calls: ShiftCall[] }
  | { v: 1; type: 'notesSaved'; callId: string; at: string }
  | { v: 1; type: 'error'; code: ErrorCode; message: string; ref?: string }
  | { v: 1; type: 'dispositionSaved'; callId: string; disposition: Disposition }
  /** A consult's progress (the target as typed); `reason` with failed/ended: why, for the agent to read. */
  | { v: 1; type: 'consult'; callId: string; target: string; phase: ConsultPhase; reason?: string }
  /** Everybody on the call, sent when it changes (conference, consult, transfers). */
  | { v: 1; type: 'parties'; callId: string; parties: PartyInfo[] }
  /**
   * One utterance of the call's live transcript (on-site engine or fork endpoint), as it is
   * recognised. `quality` says what the text is worth (e.g. keyword-grade): the page shows it.
   */
  | { v: 1; type: 'transcript'; callId: string; speaker: 'caller' | 'agent'; text: string; startMs: number; endMs: number; sentiment: number; quality: string | null }
  | { v: 1; type: 'pong'; ref?: string };

/** POST /agent/login body and replies. */
export interface LoginRequest {
  agent: string;
  password: string;
  /** With a one-time password: the agent's new password (403 AGENT_PASSWORD_CHANGE_REQUIRED asks for it). */
  newPassword?: string;
}
export type LoginResponse = { token: string; agent: { name: string; displayName: string } } | {
      // 401 wrong name or password; 403 right password, other role's page (a supervisor at /agent,
      // an agent at /supervisor), or a one-time password that must be replaced first; 400 the new
      // one is refused; 429 too many failures (address or agent); 503 hashing queue full.
      error: {
        code: 'AGENT_LOGIN_FAILED' | 'AGENT_WRONG_ROLE' | 'AGENT_LOGIN_THROTTLED' | 'AGENT_LOGIN_BUSY' | 'AGENT_PASSWORD_CHANGE_REQUIRED' | 'AGENT_PASSWORD_REJECTED' | 'HTTP_BAD_REQUEST';
        message: string;
        retryAfterS?: number;
      };
    };
