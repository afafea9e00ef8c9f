/** Shared by the desk (server) and the agent page: no imports, so the page bundle stays small. */

/** The most calls `CallContext.recentCalls` counts (a count beyond it is shown as "100+"). */
export const RECENT_CALLS_MAX = 100;

/** What the page shows for `recentCalls`. */
export function recentCallsText(n: number): string {
  return n >= RECENT_CALLS_MAX ? `${RECENT_CALLS_MAX}+` : String(n);
}
