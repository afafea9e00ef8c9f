import { errorMessage } from './errors';
import type { HwLog } from './log';

/**
 * Event types hw/ emits through the sink (DESIGN.md: `events` topic, via the outbox):
 * - `health.alarm` {metric, state: 'raised'|'cleared', value, threshold, unit}
 * - `trunk.alarm`  {trunk, span, alarm, state: 'raised'|'cleared', severity, driver, counters, ...}
 * - `hw.fault`     {component, device, state: 'raised'|'cleared', code, message}
 */
export type HwEventType = 'health.alarm' | 'trunk.alarm' | 'hw.fault';

export type AlarmState = 'raised' | 'cleared';

/** The event sink the composition root passes in; it may be async (a db transaction). */
export type HwEventSink = (type: HwEventType, data: Record<string, unknown>) => void | Promise<unknown>;

/** Calls the sink without ever letting it throw into hw/ (a failed write is logged, not fatal). */
export function safeEmit(sink: HwEventSink | undefined, log: HwLog, type: HwEventType, data: Record<string, unknown>): void {
  if (!sink) return;
  try {
    const r = sink(type, data);
    if (r && typeof (r as Promise<unknown>).then === 'function') {
      (r as Promise<unknown>).then(undefined, (err: unknown) => log.error({ err: errorMessage(err), type }, 'hw event sink failed'));
    }
  } catch (err) {
    log.error({ err: errorMessage(err), type }, 'hw event sink failed');
  }
}
