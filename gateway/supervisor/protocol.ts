/**
 * Supervisor signalling over WebSocket `/supervisor/ws`, version 1: JSON messages, one per frame,
 * framed and authenticated like the agent's `/ws` (the same SessionHub: `hello` with the token of
 * POST /supervisor/login first, `ping`, `logout`). Shared by the server (zod validation of every
 * client frame) and the supervisor page (types only).
 *
 * After hello the server sends `welcome`, then `board` (every agent and every queue with its
 * waiting callers), then `changes` with only the rows that changed, coalesced to at most one
 * message per `supervisor.updateEveryMs`. Times are ISO strings; the page counts the seconds.
 */
import { z } from 'zod';
import { PROTOCOL_VERSION, type AgentState, type ErrorCode } from '../agent-ui/protocol';

export const SUPERVISOR_PROTOCOL_VERSION = PROTOCOL_VERSION;

export const MONITOR_MODES = ['listen', 'whisper', 'barge'] as const;
/** listen: hears both, heard by nobody; whisper: heard by the agent only; barge: heard by all. */
export type MonitorMode = (typeof MONITOR_MODES)[number];

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/);
const callId = z.string().uuid();
const base = { v: z.literal(SUPERVISOR_PROTOCOL_VERSION), ref: z.string().max(64).optional() };

/** Messages from the supervisor page. `ref` is echoed in the `done` or `error` reply. */
export const supervisorClientMessage = z.discriminatedUnion('type', [
  z.object({ ...base, type: z.literal('hello'), token: z.string().min(16).max(128) }).strict(),
  z.object({ ...base, type: z.literal('ping') }).strict(),
  z.object({ ...base, type: z.literal('logout') }).strict(),
  /** The agent goes Away with one of agentDesk.awayReasons (refused while on a call). */
  z.object({ ...base, type: z.literal('setAgentAway'), agent: name, reason: z.string().min(1).max(64) }).strict(),
  /** Ends the agent's session: their page logs out, a call in progress ends first. */
  z.object({ ...base, type: z.literal('logoutAgent'), agent: name }).strict(),
  /** Paused: the queue's callers wait and none is offered to an agent. */
  z.object({ ...base, type: z.literal('pauseQueue'), queue: name, paused: z.boolean() }).strict(),
  /** Join the call as listener, coach (whisper) or barge; again with another mode switches modes. */
  z.object({ ...base, type: z.literal('monitor'), callId, mode: z.enum(MONITOR_MODES) }).strict(),
  z.object({ ...base, type: z.literal('stopMonitor'), callId }).strict(),
  /** The page's answer to `monitorOffer`. */
  z.object({ ...base, type: z.literal('webrtcAnswer'), callId, sdp: z.string().min(10).max(20_000) }).strict(),
]);
export type SupervisorClientMessage = z.infer<typeof supervisorClientMessage>;

/** One agent as the supervisor sees them. */
export interface SupervisorAgentRow {
  name: string;
  displayName: string;
  state: AgentState;
  reason: string | null;
  /** Since when in this state (ISO): time in state. */
  since: string;
  /** The call ringing, talked or wrapped up; null otherwise. */
  callId: string | null;
  /** The queue of that call. */
  queue: string | null;
  /** Since when talking (ISO) while on a call: talk time. */
  talkingSince: string | null;
  /** A page of the agent is connected. */
  connected: boolean;
}

/** One caller of a queue not yet talking to an agent. */
export interface SupervisorCaller {
  callId: string;
  /** Masked (last digits only) or `Private`: the supervisor needs the wait, not the number. */
  caller: string;
  queuedAt: string;
  priority: number;
  /** `ringing`: offered to `agent` right now. */
  phase: 'waiting' | 'ringing';
  agent: string | null;
}

export interface SupervisorQueueRow {
  name: string;
  paused: boolean;
  /** Callers not yet talking (waiting + ringing). */
  waiting: number;
  /** When the longest-waiting of them joined (ISO), or null: the page counts the longest wait. */
  oldestSince: string | null;
  /** Agents serving the queue, by state (counts). */
  agents: Record<AgentState, number>;
  /** Waiting and ringing callers in the order they will be offered (at most `callersShown`). */
  callers: SupervisorCaller[];
}

export type SupervisorErrorCode =
  | ErrorCode
  /** Monitoring is not wired in this build, or the call cannot be monitored (ended, not bridged). */
  | 'SUP_MONITOR_UNAVAILABLE'
  | 'SUP_NO_SUCH_AGENT'
  | 'SUP_NO_SUCH_QUEUE';

export type SupervisorServerMessage =
  | {
      v: 1;
      type: 'welcome';
      supervisor: { name: string; displayName: string };
      /** The reasons the page may set with setAgentAway. */
      awayReasons: string[];
      /** Whether Listen / Whisper / Barge can work here. */
      monitoring: boolean;
    }
  | { v: 1; type: 'board'; at: string; agents: SupervisorAgentRow[]; queues: SupervisorQueueRow[] }
  /** Rows that changed since the last board/changes; `removedAgents`/`removedQueues` left the config. */
  | { v: 1; type: 'changes'; at: string; agents: SupervisorAgentRow[]; queues: SupervisorQueueRow[]; removedAgents: string[]; removedQueues: string[] }
  /** An action was carried out (its effect shows in the next changes). */
  | { v: 1; type: 'done'; action: SupervisorClientMessage['type']; ref?: string }
  /** The supervisor's browser gets the call's audio: answer with webrtcAnswer. */
  | { v: 1; type: 'monitorOffer'; callId: string; mode: MonitorMode; sdp: string }
  | { v: 1; type: 'monitoring'; callId: string; mode: MonitorMode }
  | { v: 1; type: 'monitorEnded'; callId: string; reason: string }
  | { v: 1; type: 'error'; code: SupervisorErrorCode; message: string; ref?: string }
  | { v: 1; type: 'pong'; ref?: string };
