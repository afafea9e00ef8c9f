import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The site secret keying HMAC'd numbers (policy numbers.mode "hmac"): configured, or generated
 * once into `<dataDir>/keys/sync-hmac.key` (0600). It never leaves the site; the cloud can match
 * equal numbers across events but cannot recover them.
 */
export function resolveSiteSecret(dataDir: string, configured?: string): { key: Buffer; file?: string } {
  if (configured) return { key: Buffer.from(configured) };
  const dir = path.join(dataDir, 'keys');
  const file = path.join(dir, 'sync-hmac.key');
  if (existsSync(file)) return { key: Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url'), file };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { key, file };
}
