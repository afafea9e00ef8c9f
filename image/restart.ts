/**
 * "Restart me into the new slot": the daemon stops cleanly and exits with EXIT_RESTART. The unit
 * has `RestartForceExitStatus=75` and `SuccessExitStatus=75` (a restart, not a failure); the
 * supervisor restarts on any non-zero exit.
 */
export const EXIT_RESTART = 75;
let requested = false;

export function requestRestart(): void {
  requested = true;
}

export function restartRequested(): boolean {
  return requested;
}
