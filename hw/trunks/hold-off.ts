import type { Clock, TimerHandle } from '../clock';

/** Neither trouble nor clean (RECOVERING, or the monitor cannot see the line): nothing moves. */
export const HOLD = Symbol('hold');
export type Desired = string | null | typeof HOLD;

export interface HoldOffChange {
  alarm: string;
  state: 'raised' | 'cleared';
  /** When the condition was raised (for 'cleared': how long it lasted). */
  raisedAt: number;
}

/**
 * Alarm raise/clear with hold-off, in the way line alarms are declared on telco gear:
 * - an alarm is raised once `raiseMs` of trouble has ACCUMULATED in a trouble window (so a trunk
 *   flapping faster than the hold-off still raises, exactly once);
 * - it clears only after `clearMs` of CONTINUOUSLY clean line (so flapping never clears and
 *   re-raises); a clean period that long also ends the trouble window (a lone glitch is forgotten);
 * - a raised alarm that changes kind (RED → YELLOW) moves after the new kind held `raiseMs`.
 * With hold-offs of 0 everything happens synchronously in update().
 */
export class HoldOff {
  private raisedAlarm: string | null = null;
  private raisedAt = 0;
  /** The current trouble (null: clean, HOLD: held) and since when. */
  private current: Desired = null;
  private currentSince = 0;
  private accumulated = 0;
  private raiseTimer: TimerHandle | undefined;
  private clearTimer: TimerHandle | undefined;
  private kindTimer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly raiseMs: number,
    private readonly clearMs: number,
    private readonly onChange: (c: HoldOffChange) => void,
  ) {}

  get raised(): string | null {
    return this.raisedAlarm;
  }

  get since(): number | null {
    return this.raisedAlarm === null ? null : this.raisedAt;
  }

  update(desired: Desired): void {
    const now = this.clock.now();
    const was = this.current;
    if (desired === was) return;
    // Close the previous period.
    if (typeof was === 'string') this.accumulated += now - this.currentSince;
    this.raiseTimer = cancel(this.raiseTimer);
    this.clearTimer = cancel(this.clearTimer);
    if (typeof desired !== 'string' || desired === this.raisedAlarm) this.kindTimer = cancel(this.kindTimer);
    this.current = desired;
    this.currentSince = now;

    if (desired === HOLD) return;
    if (desired === null) {
      // Clean: after clearMs continuously, the alarm clears and the trouble window ends.
      this.clearTimer = this.after(this.clearMs, () => {
        this.clearTimer = undefined;
        this.accumulated = 0;
        if (this.raisedAlarm !== null) this.transition(null);
      });
      return;
    }
    if (this.raisedAlarm === null) {
      this.raiseTimer = this.after(Math.max(0, this.raiseMs - this.accumulated), () => {
        this.raiseTimer = undefined;
        if (typeof this.current === 'string' && this.raisedAlarm === null) this.transition(this.current);
      });
    } else if (desired !== this.raisedAlarm && !this.kindTimer) {
      this.kindTimer = this.after(this.raiseMs, () => {
        this.kindTimer = undefined;
        if (typeof this.current === 'string' && this.current !== this.raisedAlarm) this.transition(this.current);
      });
    }
  }

  close(): void {
    this.raiseTimer = cancel(this.raiseTimer);
    this.clearTimer = cancel(this.clearTimer);
    this.kindTimer = cancel(this.kindTimer);
  }

  private transition(next: string | null): void {
    const prev = this.raisedAlarm;
    const prevAt = this.raisedAt;
    this.raisedAlarm = next;
    this.raisedAt = this.clock.now();
    if (prev !== null) this.onChange({ alarm: prev, state: 'cleared', raisedAt: prevAt });
    if (next !== null) this.onChange({ alarm: next, state: 'raised', raisedAt: this.raisedAt });
  }

  /** A timer, or a synchronous call for 0 (no hold-off). */
  private after(ms: number, fn: () => void): TimerHandle | undefined {
    if (ms <= 0) {
      fn();
      return undefined;
    }
    return this.clock.after(ms, fn);
  }
}

function cancel(t: TimerHandle | undefined): undefined {
  t?.cancel();
  return undefined;
}
