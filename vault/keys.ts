import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { VaultError } from './errors';

export const SITE_KEY_FILE = 'site.key';
/** The next site key while a rotation is under way (kept, with the old one, until it is done). */
export const SITE_KEY_NEXT_FILE = 'site.key.next';
export const SIGNING_KEY_FILE = 'export-signing.key';
export const SIGNING_PUB_FILE = 'export-signing.pub';

/** A short, one-way name for a key: what the recordings table stores in key_id. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('ccedge-site-key-id\0').update(key).digest('hex').slice(0, 16);
}

/** Creates `dir` 0700 (and fixes the mode of an existing one). */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Writes a secret file 0600 atomically (temp file, fsync, rename). */
export function writeSecretFile(file: string, data: Buffer | string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

function readKeyFile(file: string): Buffer {
  const k = readFileSync(file);
  if (k.length !== 32) throw new VaultError('VAULT_KEY_UNAVAILABLE', `${file} is not a 32-byte AES-256 key`);
  return k;
}

function wrapAad(recordingId: string, keyId: string): Buffer {
  return Buffer.from(`ccedge-dk\0${recordingId}\0${keyId}`);
}

/**
 * The site key(s) in `<dataDir>/keys`: `site.key` (32 random bytes, 0600, created if absent)
 * and, during a rotation, `site.key.next`. Data keys are wrapped with AES-256-GCM; the AAD binds
 * a wrapped key to its recording and key id, so wrapped keys cannot be swapped between rows.
 */
export class SiteKeyRing {
  private readonly keys = new Map<string, Buffer>();
  private currentId: string;
  private nextId: string | undefined;

  private stamp = '';

  private constructor(readonly dir: string) {
    ensurePrivateDir(dir);
    const file = path.join(dir, SITE_KEY_FILE);
    if (!existsSync(file)) writeSecretFile(file, randomBytes(32));
    chmodSync(file, 0o600);
    this.currentId = '';
    this.reload();
  }

  private fileStamp(): string {
    const s = (f: string): string => {
      try {
        const st = statSync(path.join(this.dir, f));
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return '-';
      }
    };
    return `${s(SITE_KEY_FILE)}|${s(SITE_KEY_NEXT_FILE)}`;
  }

  private reload(): void {
    this.stamp = this.fileStamp();
    const current = readKeyFile(path.join(this.dir, SITE_KEY_FILE));
    this.currentId = keyIdOf(current);
    this.keys.set(this.currentId, current);
    const nextFile = path.join(this.dir, SITE_KEY_NEXT_FILE);
    this.nextId = undefined;
    if (existsSync(nextFile)) {
      const next = readKeyFile(nextFile);
      this.nextId = keyIdOf(next);
      this.keys.set(this.nextId, next);
    }
  }

  /**
   * Re-reads the key files if another process (the CLI) rotated or began rotating the site key,
   * so new recordings are never wrapped with a key that is about to be retired. Keys already
   * in memory are kept.
   */
  refresh(): void {
    if (this.fileStamp() !== this.stamp) this.reload();
  }

  static load(dir: string): SiteKeyRing {
    return new SiteKeyRing(dir);
  }

  /** The key new recordings are wrapped with: the next key while a rotation is under way. */
  get activeKeyId(): string {
    return this.nextId ?? this.currentId;
  }

  get rotationPending(): string | undefined {
    return this.nextId;
  }

  has(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  wrap(dataKey: Buffer, recordingId: string, keyId = this.activeKeyId): string {
    const kek = this.keys.get(keyId);
    if (!kek) throw new VaultError('VAULT_KEY_UNAVAILABLE', `site key ${keyId} is not in ${this.dir}`);
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', kek, nonce);
    c.setAAD(wrapAad(recordingId, keyId));
    const ct = Buffer.concat([c.update(dataKey), c.final()]);
    return Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64');
  }

  unwrap(wrapped: string, recordingId: string, keyId: string): Buffer {
    if (!this.keys.has(keyId)) this.refresh();
    const kek = this.keys.get(keyId);
    if (!kek) throw new VaultError('VAULT_KEY_UNAVAILABLE', `site key ${keyId} of recording ${recordingId} is not in ${this.dir}`, { recordingId, keyId });
    const raw = Buffer.from(wrapped, 'base64');
    if (raw.length !== 12 + 32 + 16) throw new VaultError('VAULT_TAMPERED', `wrapped data key of recording ${recordingId} is malformed`, { recordingId });
    try {
      const d = createDecipheriv('aes-256-gcm', kek, raw.subarray(0, 12));
      d.setAAD(wrapAad(recordingId, keyId));
      d.setAuthTag(raw.subarray(44));
      return Buffer.concat([d.update(raw.subarray(12, 44)), d.final()]);
    } catch {
      throw new VaultError('VAULT_TAMPERED', `wrapped data key of recording ${recordingId} failed authentication`, { recordingId });
    }
  }

  /** Step 1 of a rotation: creates (or, after a crash, reuses) site.key.next. */
  beginRotation(): { from: string; to: string } {
    this.refresh();
    if (!this.nextId) {
      const next = randomBytes(32);
      writeSecretFile(path.join(this.dir, SITE_KEY_NEXT_FILE), next);
      this.nextId = keyIdOf(next);
      this.keys.set(this.nextId, next);
      this.stamp = this.fileStamp();
    }
    return { from: this.currentId, to: this.nextId };
  }

  /** Last step: site.key.next replaces site.key (atomic rename); the old key is forgotten. */
  completeRotation(): void {
    if (!this.nextId) return;
    const old = this.currentId;
    renameSync(path.join(this.dir, SITE_KEY_NEXT_FILE), path.join(this.dir, SITE_KEY_FILE));
    this.keys.get(old)?.fill(0);
    this.keys.delete(old);
    this.currentId = this.nextId;
    this.nextId = undefined;
    this.stamp = this.fileStamp();
  }
}

/** The Ed25519 key that signs export manifests (`keys/export-signing.key`, 0600; `.pub` beside it). */
export function loadSigningKey(dir: string): { privateKey: KeyObject; publicKeyPem: string } {
  ensurePrivateDir(dir);
  const file = path.join(dir, SIGNING_KEY_FILE);
  const pubFile = path.join(dir, SIGNING_PUB_FILE);
  if (!existsSync(file)) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeSecretFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    writeSecretFile(pubFile, publicKey.export({ type: 'spki', format: 'pem' }) as string);
    chmodSync(pubFile, 0o644);
  }
  const privateKey = createPrivateKey(readFileSync(file));
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string;
  return { privateKey, publicKeyPem };
}

/** Removes a file if it exists (used for deleted recordings). */
export function unlinkIfExists(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
