import type { EventEmitter } from 'node:events';
import type { HwError } from '../errors';

/**
 * One state vocabulary for every driver (DAHDI's, named the way installers read them):
 * OK; RECOVERING (alarm just cleared, the span is re-syncing); LOOPBACK (span looped, for tests by
 * the carrier); RED (we lost the incoming signal or framing: LOS, LOF, LMFA); YELLOW (the far end
 * reports it lost ours: RAI); BLUE (the far end/carrier sends all-ones: AIS); NOT_OPEN (the span is
 * not configured/opened — or the monitor cannot see it, then `fault` says why).
 */
export const TRUNK_STATES = ['OK', 'RECOVERING', 'LOOPBACK', 'RED', 'YELLOW', 'BLUE', 'NOT_OPEN'] as const;
export type TrunkState = (typeof TRUNK_STATES)[number];

/** Detailed alarm causes (a driver reports those it knows). */
export const ALARM_CAUSES = ['LOS', 'LOF', 'LMFA', 'RAI', 'AIS'] as const;
export type AlarmCause = (typeof ALARM_CAUSES)[number];

export type DChannel = 'up' | 'down' | null;

/** Cumulative error counters of a span (since the driver/card last reset them). */
export interface SpanCounters {
  /** Bipolar violations / line-code violations. */
  bpv: number;
  crc4: number;
  /** E-bit errors (far-end CRC4 errors). */
  ebit: number;
  /** Frame alignment signal errors. */
  fas: number;
  /** Timing (controlled) slips. */
  slips: number;
}

export const COUNTER_NAMES: readonly (keyof SpanCounters)[] = ['bpv', 'crc4', 'ebit', 'fas', 'slips'];

export function zeroCounters(): SpanCounters {
  return { bpv: 0, crc4: 0, ebit: 0, fas: 0, slips: 0 };
}

/** One status reading of one span, as a driver reports it. */
export interface SpanReport {
  span: number;
  state: TrunkState;
  causes: AlarmCause[];
  dchannel: DChannel;
  counters: SpanCounters;
  /** Line config as the driver names it, e.g. HDB3/CCS/CRC4. */
  framing?: string;
  description?: string;
  /** Channels configured / in use (DAHDI). */
  channels?: { total: number; inUse: number };
  /** DAHDI: this span is the timing source (ClockSource) / the sync master ((MASTER)). */
  clockSource?: boolean;
  syncMaster?: boolean;
}

export interface TrunkDriverEvents {
  report: [SpanReport];
  /** The driver cannot read the device (spans listed, or all when omitted); it retries by itself. */
  fault: [HwError, number[] | undefined];
  /** The device reads again (spans listed, or all). */
  recovered: [number[] | undefined];
}

/** A source of span status: one DAHDI dir, one serial management port, ... */
export interface TrunkDriver extends EventEmitter<TrunkDriverEvents> {
  readonly kind: 'dahdi' | 'serial';
  /** Human-readable device (dir or serial path) for snapshots and events. */
  readonly device: string;
  start(): void;
  close(): Promise<void>;
}

/** Worst first: the state shown when several alarm bits are set. */
const SEVERITY_ORDER: TrunkState[] = ['NOT_OPEN', 'RED', 'BLUE', 'YELLOW', 'LOOPBACK', 'RECOVERING', 'OK'];

export function worstState(states: Iterable<TrunkState>): TrunkState {
  let best = SEVERITY_ORDER.length - 1;
  for (const s of states) best = Math.min(best, SEVERITY_ORDER.indexOf(s));
  return SEVERITY_ORDER[best] as TrunkState;
}

export type AlarmSeverity = 'critical' | 'major' | 'minor';

export function alarmSeverity(alarm: string): AlarmSeverity {
  switch (alarm) {
    case 'RED':
    case 'BLUE':
    case 'DEVICE':
      return 'critical';
    case 'YELLOW':
    case 'NOT_OPEN':
    case 'DCHAN_DOWN':
      return 'major';
    default:
      return 'minor';
  }
}
