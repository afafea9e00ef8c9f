import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The admin API bearer token: configured, or generated once into keys/admin.token (0600). */
export function resolveAdminToken(dataDir: string, configured?: string): { token: string; file?: string } {
  if (configured) return { token: configured };
  const dir = path.join(dataDir, 'keys');
  const file = path.join(dir, 'admin.token');
  if (existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), file };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { token, file };
}
