import { errorMessage } from './errors';
import type { ThresholdChange } from './health/thresholds';
import type { HwLog } from './log';
import type { TrunkAlarmEvent } from './trunks/trunk';

/**
 * Event types hw/ emits through the sink (DESIGN.md: `events` topic, via the outbox):
 * - `health.alarm` {metric, state: 'raised'|'cleared', value, threshold, unit}
 * - `trunk.alarm`  {trunk, span, alarm, state: 'raised'|'cleared', severity, driver, counters, ...}
 * - `hw.fault`     {component, device, state: 'raised'|'cleared', code, message}
 * hw/ does not know the cloud: the composition root maps these onto the cloud event catalogue
 * (sync/events.ts), where the compiler checks that they fit.
 */
export type HwEventType = 'health.alarm' | 'trunk.alarm' | 'hw.fault';

export type AlarmState = 'raised' | 'cleared';

export interface HwFaultEvent {
  component: 'panel' | 'watchdog';
  device: string;
  state: AlarmState;
  code?: string;
  message?: string;
}

/** The payload of each hw event type. */
export interface HwEventMap {
  'health.alarm': ThresholdChange;
  'trunk.alarm': TrunkAlarmEvent;
  'hw.fault': HwFaultEvent;
}

/** A sink's arguments: a type and its payload, as a union so a sink can narrow one by the other. */
export type HwEventArgs = { [T in HwEventType]: [type: T, data: HwEventMap[T]] }[HwEventType];

/** The event sink the composition root passes in; it may be async (a db transaction). */
export type HwEventSink = (...event: HwEventArgs) => void | Promise<unknown>;

/** Calls the sink without ever letting it throw into hw/ (a failed write is logged, not fatal). */
export function safeEmit(sink: HwEventSink | undefined, log: HwLog, ...event: HwEventArgs): void {
  if (!sink) return;
  const type = event[0];
  try {
    const r = sink(...event);
    if (r && typeof (r as Promise<unknown>).then === 'function') {
      (r as Promise<unknown>).then(undefined, (err: unknown) => log.error({ err: errorMessage(err), type }, 'hw event sink failed'));
    }
  } catch (err) {
    log.error({ err: errorMessage(err), type }, 'hw event sink failed');
  }
}
