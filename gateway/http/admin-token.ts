import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
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

/**
 * Compares a presented bearer token with every known one in constant time: both sides are
 * HMAC-ed with a per-process random key to 32 bytes first, so neither the token's length nor
 * which entry (or how much of it) matched shows in the timing, and every entry is compared
 * (no early exit).
 */
export class TokenMatcher<T extends { token: string }> {
  private readonly key = randomBytes(32);
  private readonly digests: Array<{ entry: T; digest: Buffer }>;

  constructor(entries: readonly T[]) {
    this.digests = entries.map((entry) => ({ entry, digest: this.digest(entry.token) }));
  }

  match(given: string): T | undefined {
    const d = this.digest(given);
    let hit: T | undefined;
    for (const e of this.digests) {
      if (timingSafeEqual(d, e.digest) && hit === undefined) hit = e.entry;
    }
    return hit;
  }

  private digest(s: string): Buffer {
    return createHmac('sha256', this.key).update(s, 'utf8').digest();
  }
}
