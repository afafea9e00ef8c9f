import { EventEmitter } from 'node:events';
import type { Clock } from '../clock';
import type { HwError } from '../errors';
import { HOLD, HoldOff, type Desired, type HoldOffChange } from './hold-off';
import { alarmSeverity, zeroCounters, type AlarmSeverity, type SpanReport, type TrunkState } from './types';

export interface TrunkAlarmEvent {
  trunk: string;
  span: number;
  driver: 'dahdi' | 'serial';
  device: string;
  /** RED | YELLOW | BLUE | LOOPBACK | NOT_OPEN | DCHAN_DOWN | DEVICE */
  alarm: string;
  state: 'raised' | 'cleared';
  severity: AlarmSeverity;
  /** The line state when the event was decided. */
  lineState: TrunkState;
  causes: string[];
  counters: SpanReport['counters'];
  /** ISO time the alarm was raised; for 'cleared' also durationS. */
  raisedAt: string;
  durationS?: number;
  /** DEVICE alarms: the fault code and message. */
  code?: string;
  message?: string;
}

export interface TrunkSnapshot {
  name: string;
  span: number;
  driver: 'dahdi' | 'serial';
  device: string;
  state: TrunkState;
  causes: string[];
  dchannel: 'up' | 'down' | null;
  counters: SpanReport['counters'];
  framing: string | null;
  description: string | null;
  channels: { total: number; inUse: number } | null;
  clockSource: boolean | null;
  /** Alarms currently raised (after hold-off), worst first. */
  alarms: { alarm: string; severity: AlarmSeverity; since: string }[];
  /** The monitor cannot read this span: why, since when. */
  fault: { code: string; message: string; since: string } | null;
  /** Last good reading (ISO) or null. */
  updatedAt: string | null;
}

export interface TrunkEvents {
  alarm: [TrunkAlarmEvent];
  /** Anything shown changed: line state, causes, D-channel, counters, fault. */
  change: [TrunkSnapshot];
}

/** Line states that are alarms in themselves. */
const LINE_ALARMS: ReadonlySet<TrunkState> = new Set(['RED', 'YELLOW', 'BLUE', 'LOOPBACK', 'NOT_OPEN']);

/** One E1 span being watched: its last reading and three hold-off alarm conditions. */
export class Trunk extends EventEmitter<TrunkEvents> {
  private report: SpanReport | undefined;
  private updatedAt: number | undefined;
  private fault: { err: HwError; since: number } | undefined;
  private lastFault: HwError | undefined;
  private readonly line: HoldOff;
  private readonly dchan: HoldOff;
  private readonly dev: HoldOff;

  constructor(
    readonly name: string,
    readonly span: number,
    readonly driver: 'dahdi' | 'serial',
    readonly device: string,
    private readonly clock: Clock,
    holdOff: { raiseMs: number; clearMs: number },
  ) {
    super();
    const on = (c: HoldOffChange): void => this.alarmChanged(c);
    this.line = new HoldOff(clock, holdOff.raiseMs, holdOff.clearMs, on);
    this.dchan = new HoldOff(clock, holdOff.raiseMs, holdOff.clearMs, on);
    this.dev = new HoldOff(clock, holdOff.raiseMs, holdOff.clearMs, on);
  }

  /** The state shown: the line state, NOT_OPEN while the device cannot be read. */
  get state(): TrunkState {
    if (this.fault || !this.report) return 'NOT_OPEN';
    return this.report.state;
  }

  onReport(r: SpanReport): void {
    const before = this.changeKey();
    this.report = r;
    this.updatedAt = this.clock.now();
    const hadFault = !!this.fault;
    this.fault = undefined;
    if (hadFault) this.dev.update(null);
    this.line.update(lineDesired(r.state));
    this.dchan.update(r.state === 'OK' ? (r.dchannel === 'down' ? 'DCHAN_DOWN' : null) : HOLD);
    if (this.changeKey() !== before) this.emit('change', this.snapshot());
  }

  onFault(err: HwError): void {
    const before = this.changeKey();
    if (!this.fault || this.fault.err.code !== err.code) this.fault = { err, since: this.fault?.since ?? this.clock.now() };
    this.lastFault = err;
    // While blind, line and D-channel conditions hold: neither raised nor cleared on a guess.
    this.line.update(HOLD);
    this.dchan.update(HOLD);
    this.dev.update('DEVICE');
    if (this.changeKey() !== before) this.emit('change', this.snapshot());
  }

  /** The device reads again; the next report brings the line state. */
  onRecovered(): void {
    if (!this.fault) return;
    this.fault = undefined;
    this.dev.update(null);
    this.emit('change', this.snapshot());
  }

  /** Raised alarms, worst first. */
  alarms(): { alarm: string; severity: AlarmSeverity; since: number }[] {
    const out: { alarm: string; severity: AlarmSeverity; since: number }[] = [];
    for (const h of [this.dev, this.line, this.dchan]) {
      if (h.raised !== null) out.push({ alarm: h.raised, severity: alarmSeverity(h.raised), since: h.since ?? 0 });
    }
    const rank = { critical: 0, major: 1, minor: 2 };
    return out.sort((a, b) => rank[a.severity] - rank[b.severity]);
  }

  snapshot(): TrunkSnapshot {
    const r = this.report;
    return {
      name: this.name,
      span: this.span,
      driver: this.driver,
      device: this.device,
      state: this.state,
      causes: r && !this.fault ? [...r.causes] : [],
      dchannel: this.fault ? null : (r?.dchannel ?? null),
      counters: r ? { ...r.counters } : zeroCounters(),
      framing: r?.framing ?? null,
      description: r?.description ?? null,
      channels: r?.channels ?? null,
      clockSource: r?.clockSource ?? null,
      alarms: this.alarms().map((a) => ({ ...a, since: new Date(a.since).toISOString() })),
      fault: this.fault ? { code: this.fault.err.code, message: this.fault.err.message, since: new Date(this.fault.since).toISOString() } : null,
      updatedAt: this.updatedAt === undefined ? null : new Date(this.updatedAt).toISOString(),
    };
  }

  close(): void {
    this.line.close();
    this.dchan.close();
    this.dev.close();
    this.removeAllListeners();
  }

  private changeKey(): string {
    const r = this.report;
    return [this.state, r?.dchannel, r?.causes.join(','), this.fault?.err.code, JSON.stringify(r?.counters)].join('|');
  }

  private alarmChanged(c: HoldOffChange): void {
    const r = this.report;
    const now = this.clock.now();
    const ev: TrunkAlarmEvent = {
      trunk: this.name,
      span: this.span,
      driver: this.driver,
      device: this.device,
      alarm: c.alarm,
      state: c.state,
      severity: alarmSeverity(c.alarm),
      lineState: this.state,
      causes: r && !this.fault ? [...r.causes] : [],
      counters: r ? { ...r.counters } : zeroCounters(),
      raisedAt: new Date(c.raisedAt).toISOString(),
    };
    if (c.state === 'cleared') ev.durationS = Math.round((now - c.raisedAt) / 100) / 10;
    const fault = this.fault?.err ?? this.lastFault;
    if (c.alarm === 'DEVICE' && fault) {
      ev.code = fault.code;
      ev.message = fault.message;
    }
    this.emit('alarm', ev);
  }
}

function lineDesired(state: TrunkState): Desired {
  if (state === 'OK') return null;
  if (state === 'RECOVERING') return HOLD;
  return LINE_ALARMS.has(state) ? state : HOLD;
}
