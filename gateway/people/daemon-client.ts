import { resolveAdminToken } from '../http/admin-token';
import type { Config } from '../config/schema';

/**
 * One admin API request to the daemon running with `config` (its HTTP port, the admin token);
 * undefined when nothing answers there (the daemon is not running).
 */
export async function daemonRequest<T = Record<string, unknown>>(config: Config, method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT', pathname: string, body?: unknown, timeoutMs = 30_000): Promise<{ status: number; body: T } | undefined> {
  const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host === '::' ? '[::1]' : config.http.host;
  const { token } = resolveAdminToken(config.dataDir, config.http.adminToken);
  let res: Response;
  try {
    res = await fetch(`http://${host}:${config.http.port}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch {
    return undefined;
  }
  return { status: res.status, body: (await res.json().catch(() => ({}))) as T };
}
