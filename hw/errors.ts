import { CodedError } from '../lib/coded-error';

/** Stable error codes of hw/ (the gateway's ErrorCode union can adopt them as they are). */
export type HwErrorCode =
  | 'HW_CONFIG_INVALID'
  | 'HW_CLOSED'
  | 'HW_HEALTH_SAMPLE_FAILED'
  | 'HW_SERIAL_OPEN_FAILED'
  | 'HW_SERIAL_DISCONNECTED'
  | 'HW_SERIAL_GARBAGE'
  | 'HW_SERIAL_SILENT'
  | 'HW_SERIAL_WRITE_FAILED'
  | 'HW_DAHDI_UNAVAILABLE'
  | 'HW_DAHDI_SPAN_MISSING'
  | 'HW_DAHDI_PARSE'
  | 'HW_PANEL_INFO_FAILED'
  | 'HW_WATCHDOG_OPEN_FAILED'
  | 'HW_WATCHDOG_WRITE_FAILED'
  | 'HW_WATCHDOG_CHECK_FAILED'
  | 'HW_NOTIFY_FAILED';

export class HwError extends CodedError<HwErrorCode> {}

/** The message of anything thrown, for logs and events. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
