import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { CcedgeError } from '../errors';

/*
 * Encrypted backup file (database snapshot, key bundle):
 *   magic "CCBACK01" | u32 BE n | n bytes of JSON header {v, name, chunkSize}
 *   chunk 0 | chunk 1 | …     chunk = nonce (12) | AES-256-GCM ciphertext | tag (16)
 * Every chunk but the last holds chunkSize bytes of plaintext. The AAD of chunk i is
 * SHA-256(magic..header) ‖ u64 BE i ‖ u8 last: chunks cannot be reordered, dropped from the end or
 * moved into another file, and the header (which names the file) cannot be edited.
 */
const MAGIC = Buffer.from('CCBACK01', 'ascii');
const NONCE = 12;
const TAG = 16;
/** 64 KiB: the synchronous cipher and hash work per chunk stays well under a 20 ms RTP packet time. */
export const BACKUP_CHUNK = 64 * 1024;

/** scrypt cost: ~100 ms and 32 MiB once per backup; it runs on the libuv pool, not the event loop. */
export const KDF_PARAMS = { N: 1 << 15, r: 8, p: 1 } as const;
const CHECK_LABEL = 'ccedge-backup-passphrase-check';

export interface KdfInfo {
  alg: 'scrypt';
  salt: string;
  N: number;
  r: number;
  p: number;
}

/** The keys of one backup, derived from the passphrase and that backup's salt. */
export interface BackupKeys {
  enc: Buffer;
  mac: Buffer;
  kdf: KdfInfo;
}

export const MIN_PASSPHRASE_CHARS = 12;

export async function deriveKeys(passphrase: string, kdf?: KdfInfo): Promise<BackupKeys> {
  const info: KdfInfo = kdf ?? { alg: 'scrypt', salt: randomBytes(16).toString('base64'), ...KDF_PARAMS };
  if (info.alg !== 'scrypt' || info.N > 1 << 20 || info.r > 32 || info.p > 16) throw new CcedgeError('BACKUP_CORRUPT', 'the manifest names an unknown or too costly key derivation');
  const salt = Buffer.from(info.salt, 'base64');
  const master = await new Promise<Buffer>((resolve, reject) =>
    scrypt(passphrase.normalize('NFC'), salt, 32, { N: info.N, r: info.r, p: info.p, maxmem: 256 * info.N * info.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
  const sub = (label: string): Buffer => Buffer.from(hkdfSync('sha256', master, salt, label, 32));
  return { enc: sub('ccedge-backup-enc'), mac: sub('ccedge-backup-mac'), kdf: info };
}

/** What the manifest stores so a wrong passphrase is named as such before anything is decrypted. */
export function passphraseCheck(keys: BackupKeys): string {
  return createHmac('sha256', keys.mac).update(CHECK_LABEL).digest('hex');
}

export function assertPassphrase(keys: BackupKeys, check: string): void {
  const want = Buffer.from(passphraseCheck(keys), 'hex');
  const got = Buffer.from(check, 'hex');
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw new CcedgeError('BACKUP_BAD_PASSPHRASE', 'wrong backup passphrase (it does not open this backup)');
}

export function mac(keys: BackupKeys, text: string): string {
  return createHmac('sha256', keys.mac).update(text).digest('hex');
}

function chunkAad(headerHash: Buffer, index: number, last: boolean): Buffer {
  const b = Buffer.alloc(headerHash.length + 9);
  headerHash.copy(b, 0);
  b.writeBigUInt64BE(BigInt(index), headerHash.length);
  b[headerHash.length + 8] = last ? 1 : 0;
  return b;
}

function headerBytes(name: string, chunkSize: number): { bytes: Buffer; hash: Buffer } {
  const json = Buffer.from(JSON.stringify({ v: 1, name, chunkSize }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  const bytes = Buffer.concat([MAGIC, len, json]);
  return { bytes, hash: createHash('sha256').update(bytes).digest() };
}

/** Plaintext source: a file read in chunks, or a buffer (the key bundle). */
export type PlainSource = { file: string } | { data: Buffer };

/**
 * Encrypts `source` into `dest` (written as dest.partial, then renamed) under `name`. Returns
 * the size and SHA-256 of what was written (the manifest's checksum is of the ciphertext, so
 * `verify` needs no passphrase).
 */
export async function encryptTo(source: PlainSource, dest: string, name: string, key: Buffer, chunkSize = BACKUP_CHUNK): Promise<{ bytes: number; sha256: string }> {
  const tmp = `${dest}.partial`;
  const { bytes: header, hash: headerHash } = headerBytes(name, chunkSize);
  const out = await open(tmp, 'w', 0o600);
  const sha = createHash('sha256');
  let written = 0;
  const write = async (b: Buffer): Promise<void> => {
    sha.update(b);
    written += b.length;
    await out.write(b);
  };
  const src = 'file' in source ? await open(source.file, 'r') : undefined;
  try {
    await write(header);
    const total = src ? (await src.stat()).size : (source as { data: Buffer }).data.length;
    const buf = Buffer.alloc(chunkSize);
    let index = 0;
    let pos = 0;
    do {
      const len = Math.min(chunkSize, total - pos);
      let plain: Buffer;
      if (src) {
        const { bytesRead } = await src.read(buf, 0, len, pos);
        if (bytesRead !== len) throw new CcedgeError('BACKUP_FAILED', `${name}: the source changed size while it was encrypted`);
        plain = buf.subarray(0, len);
      } else plain = (source as { data: Buffer }).data.subarray(pos, pos + len);
      pos += len;
      const last = pos >= total;
      const nonce = randomBytes(NONCE);
      const c = createCipheriv('aes-256-gcm', key, nonce);
      c.setAAD(chunkAad(headerHash, index, last));
      const ct = Buffer.concat([c.update(plain), c.final()]);
      await write(Buffer.concat([nonce, ct, c.getAuthTag()]));
      index++;
    } while (pos < total);
    await out.sync();
  } catch (e) {
    await out.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  } finally {
    await src?.close();
  }
  await out.close();
  await rename(tmp, dest);
  return { bytes: written, sha256: sha.digest('hex') };
}

/**
 * Decrypts `file` (made by encryptTo under `name`), chunk by chunk, into `sink`. Any damage, a
 * wrong key, a renamed file or a cut-off end is BACKUP_CORRUPT naming the file.
 */
export async function decryptFrom(file: string, name: string, key: Buffer, sink: (plain: Buffer) => Promise<void>): Promise<number> {
  const fh = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new CcedgeError('BACKUP_CORRUPT', `${file}: cannot be read (${e.code ?? e.message})`);
  });
  const corrupt = (why: string): CcedgeError => new CcedgeError('BACKUP_CORRUPT', `${file}: ${why}`);
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(12);
    if ((await fh.read(head, 0, 12, 0)).bytesRead !== 12 || !head.subarray(0, 8).equals(MAGIC)) throw corrupt('not a ccedge backup file');
    const n = head.readUInt32BE(8);
    if (n > 4096) throw corrupt('header too large');
    const json = Buffer.alloc(n);
    if ((await fh.read(json, 0, n, 12)).bytesRead !== n) throw corrupt('truncated header');
    let hdr: { v?: unknown; name?: unknown; chunkSize?: unknown };
    try {
      hdr = JSON.parse(json.toString('utf8')) as typeof hdr;
    } catch {
      throw corrupt('unreadable header');
    }
    if (hdr.v !== 1 || hdr.name !== name || typeof hdr.chunkSize !== 'number' || hdr.chunkSize < 1 || hdr.chunkSize > 64 * 1024 * 1024) throw corrupt(`header does not describe ${name}`);
    const chunkSize = hdr.chunkSize;
    const headerHash = createHash('sha256').update(Buffer.concat([head, json])).digest();
    const record = chunkSize + NONCE + TAG;
    let pos = 12 + n;
    let index = 0;
    let plainBytes = 0;
    const buf = Buffer.alloc(record);
    do {
      const len = Math.min(record, size - pos);
      if (len < NONCE + TAG) throw corrupt(`truncated at chunk ${index}`);
      await fh.read(buf, 0, len, pos);
      pos += len;
      const last = pos >= size;
      const d = createDecipheriv('aes-256-gcm', key, buf.subarray(0, NONCE));
      d.setAAD(chunkAad(headerHash, index, last));
      d.setAuthTag(buf.subarray(len - TAG, len));
      let plain: Buffer;
      try {
        plain = Buffer.concat([d.update(buf.subarray(NONCE, len - TAG)), d.final()]);
      } catch {
        throw corrupt(`chunk ${index} failed authentication (damaged, cut short, or another passphrase)`);
      }
      plainBytes += plain.length;
      await sink(plain);
      index++;
    } while (pos < size);
    return plainBytes;
  } finally {
    await fh.close();
  }
}

/** SHA-256 of a file, read asynchronously. */
export async function sha256File(file: string): Promise<{ bytes: number; sha256: string }> {
  const fh = await open(file, 'r');
  const sha = createHash('sha256');
  let bytes = 0;
  try {
    const buf = Buffer.alloc(BACKUP_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, bytes);
      if (bytesRead === 0) break;
      sha.update(buf.subarray(0, bytesRead));
      bytes += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { bytes, sha256: sha.digest('hex') };
}
