/** Opaque timer handle: whatever the clock's setTimeout returned. */
export type Timer = object;

/**
 * Time as the ACD sees it: wall-clock milliseconds and one-shot timers. Injected so that
 * ring-no-answer, wrap-up and session expiry can be tested without sleeping.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(t: Timer): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};
