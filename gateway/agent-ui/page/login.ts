import type { LoginRequest, LoginResponse } from '../protocol';

/** What a login POST came to: the box's answer, or that it could not be reached. */
export type LoginOutcome =
  | { kind: 'unreachable' }
  | { kind: 'ok'; token: string; agent: { name: string; displayName: string }; clockOffsetMs: number }
  | { kind: 'refused'; status: number; error: { code: string; message: string } | null };

/**
 * POST /agent/login or /supervisor/login (the agent and supervisor pages share one door). The
 * offset corrects only clearly wrong local clocks: the Date header has 1 s resolution.
 */
export async function postLogin(url: string, body: LoginRequest & { newPassword?: string }): Promise<LoginOutcome> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
  } catch {
    return { kind: 'unreachable' };
  }
  let data: LoginResponse | null = null;
  try {
    data = (await res.json()) as LoginResponse;
  } catch {
    data = null;
  }
  if (!res.ok || !data || !('token' in data)) return { kind: 'refused', status: res.status, error: data && 'error' in data ? data.error : null };
  const serverDate = Date.parse(res.headers.get('date') ?? '');
  const offset = Number.isFinite(serverDate) ? serverDate - Date.now() : 0;
  return { kind: 'ok', token: data.token, agent: data.agent, clockOffsetMs: Math.abs(offset) > 2000 ? offset : 0 };
}
