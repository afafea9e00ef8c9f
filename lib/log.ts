/**
 * The JSON-lines logger every folder writes to. A pino logger fits structurally, so media/, sync/,
 * hw/ and image/ take one without importing gateway/logging.ts. A module that needs fewer levels
 * asks for `Pick<Log, 'info' | 'warn'>`, so a test can hand it a small object.
 */
export interface Log {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** For callers that did not pass a logger. */
export const SILENT_LOG: Log = { debug() {}, info() {}, warn() {}, error() {} };
