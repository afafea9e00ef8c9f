/**
 * Agent password hashing: scrypt with a random 16-byte salt, stored as
 * `scrypt$N$r$p$saltB64$hashB64`. Plain passwords are never stored.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** 2^14 × 8 × 128 B = 16 MiB and roughly 50 ms per hash on the appliance class of CPU. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 16384, r: 8, p: 1 };
const KEY_LEN = 32;
const SALT_LEN = 16;
// Bounds on what verifyPassword accepts, so a hostile hash string cannot ask for gigabytes.
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;

function derive(password: string, salt: Buffer, keyLen: number, params: ScryptParams): Promise<Buffer> {
  const opts: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, keyLen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

function validParams(p: ScryptParams): boolean {
  const { N, r, p: par } = p;
  return Number.isInteger(N) && N >= 2 && N <= MAX_N && (N & (N - 1)) === 0 && Number.isInteger(r) && r >= 1 && r <= MAX_R && Number.isInteger(par) && par >= 1 && par <= MAX_P;
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  if (!validParams(params)) throw new RangeError('invalid scrypt parameters');
  const salt = randomBytes(SALT_LEN);
  const key = await derive(password, salt, KEY_LEN, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `password` matches `hash`; false for a wrong password and for a malformed hash. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const params: ScryptParams = { N: Number(parts[1]), r: Number(parts[2]), p: Number(parts[3]) };
  if (!validParams(params)) return false;
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  if (salt.length < 8 || expected.length < 16 || expected.length > 128) return false;
  let actual: Buffer;
  try {
    actual = await derive(password, salt, expected.length, params);
  } catch {
    return false;
  }
  return timingSafeEqual(actual, expected);
}
