/** The JSON-lines logger hw/ writes to (a pino logger fits structurally; hw/ never imports gateway/). */
export interface HwLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const SILENT_LOG: HwLog = { debug() {}, info() {}, warn() {}, error() {} };
