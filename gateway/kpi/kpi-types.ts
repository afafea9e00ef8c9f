/**
 * KPI shapes as served: GET /api/v1/queues, the wallboard WebSocket and MQTT `queues/<queue>`.
 * Type-only and free of Node imports: the wallboard page imports these.
 */
import type { AgentState } from '../acd/agent-state';

/** KPIs of one queue (or, in `intents`, one intent) over the KPI window, plus the live state. */
export interface QueueKpi {
  /** Queue name (or intent name). */
  name: string;
  /** Answered within T ÷ offered (abandon handling as configured), 0..1; null with no calls. */
  serviceLevel: number | null;
  /** Average speed of answer, seconds. */
  asa: number | null;
  /** Average handle time (talk + hold + wrap-up), seconds. */
  aht: number | null;
  /** Abandoned ÷ offered, 0..1. */
  abandonRate: number | null;
  /** (on-call + wrap-up) ÷ (on-call + wrap-up + available) of the agents serving it, 0..1. */
  occupancy: number | null;
  /** First-contact resolution: resolved ÷ dispositioned calls, 0..1. */
  fcr: number | null;
  /** Callers waiting now for an agent (queued or ringing at an agent). */
  waiting: number;
  /** Longest current wait, whole seconds (0 when nobody waits). */
  longestWaitS: number;
  /** Agents serving it, counted by state. */
  agents: Record<AgentState, number>;
  /** Of those away now, how many per reason (break, lunch, no-answer, disconnected, …). */
  away: Record<string, number>;
  offered: number;
  answered: number;
  abandoned: number;
}

export type IntentKpi = QueueKpi;

export interface KpiSnapshot {
  /** When computed (ISO). */
  at: string;
  /** The KPI window: `today` (since local midnight) or `<N>h`, and its bounds (ISO). */
  window: { spec: string; from: string; to: string };
  /** T of the service level, seconds (for labels such as "SL 20 s"). */
  serviceLevelS: number;
  /** Targets the wallboard colours against (and the routing report flags below). */
  targets: { serviceLevel: number; fcr: number };
  queues: QueueKpi[];
  intents: IntentKpi[];
}
