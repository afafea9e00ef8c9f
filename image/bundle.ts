/**
 * Update bundles: a ustar archive of
 *   manifest.json   {format, version, compatible, minVersion, commit, createdAt, entry, payloads: {name: {sha256, size, mode}}}
 *   manifest.sig    {alg: "ed25519", keyId, signature}: Ed25519 over the exact bytes of manifest.json
 *   payload/<name>  the files of a slot (the `ccedge` binary, …)
 * in that order. Trusted public keys are `*.pub` files (PEM SPKI) in a directory of the image.
 * Verification order: shape → key known → signature → compatible → minVersion → not a downgrade
 * → every payload's sha256 (streamed). Each refusal has its own stable code.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { z } from 'zod';
import { ImageError } from './errors';
import { compareVersions, isVersion } from './semver';
import { listRegularFiles, readEntry, TarFormatError, TarWriter, type TarEntry } from './ustar';

export const BUNDLE_FORMAT = 'ccedge-update/1';
const PAYLOAD_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_MANIFEST = 64 * 1024;

const versionString = z.string().refine(isVersion, { message: 'must be MAJOR.MINOR.PATCH[-pre]' });
export const manifestSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    version: versionString,
    compatible: z.string().min(1).max(128),
    minVersion: versionString.optional(),
    commit: z.string().max(64).optional(),
    createdAt: z.string(),
    /** The executable of the slot, one of the payloads. */
    entry: z.string().regex(PAYLOAD_NAME),
    payloads: z.record(
      z.string().regex(PAYLOAD_NAME),
      z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().min(0), mode: z.number().int().min(0).max(0o777) }).strict(),
    ),
  })
  .strict()
  .refine((m) => m.entry in m.payloads, { message: 'entry must be one of the payloads', path: ['entry'] });
export type Manifest = z.infer<typeof manifestSchema>;

const signatureSchema = z.object({ alg: z.literal('ed25519'), keyId: z.string().regex(/^[0-9a-f]{16}$/), signature: z.string().min(1) }).strict();

export function keyId(key: KeyObject): string {
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** `ccedge update keygen`: a signing key (PKCS#8 PEM, 0600) and its public key for the image's keys dir. */
export function generateSigningKey(dir: string, name: string): { privateKey: string; publicKey: string; keyId: string } {
  if (!PAYLOAD_NAME.test(name)) throw new ImageError('IMAGE_USAGE', `key name "${name}": letters, digits, . _ - only`);
  mkdirSync(dir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = path.join(dir, `${name}.key`);
  const pub = path.join(dir, `${name}.pub`);
  if (existsSync(priv) || existsSync(pub)) throw new ImageError('IMAGE_USAGE', `${priv} or ${pub} exists already; choose another --name`);
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' });
  return { privateKey: priv, publicKey: pub, keyId: keyId(publicKey) };
}

export function loadTrustedKeys(dir: string): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.pub'));
  } catch {
    // reported below
  }
  for (const n of names) {
    try {
      const k = createPublicKey(readFileSync(path.join(dir, n)));
      if (k.asymmetricKeyType !== 'ed25519') continue;
      keys.set(keyId(k), k);
    } catch {
      // an unreadable key file trusts nothing
    }
  }
  if (keys.size === 0) throw new ImageError('UPDATE_NO_TRUSTED_KEYS', `no Ed25519 public keys (*.pub) in ${dir}: this device trusts no update`);
  return keys;
}

export interface BuildBundleOptions {
  out: string;
  version: string;
  compatible: string;
  minVersion?: string;
  commit?: string;
  signingKey: string;
  /** name → file; `entry` names the executable. */
  payloads: Record<string, string>;
  entry: string;
}

export function buildBundle(o: BuildBundleOptions): Manifest {
  const key = createPrivateKey(readFileSync(o.signingKey));
  if (key.asymmetricKeyType !== 'ed25519') throw new ImageError('IMAGE_USAGE', `${o.signingKey} is not an Ed25519 private key`);
  const payloads: Manifest['payloads'] = {};
  for (const [name, file] of Object.entries(o.payloads)) {
    if (!PAYLOAD_NAME.test(name)) throw new ImageError('IMAGE_USAGE', `payload name "${name}": letters, digits, . _ - only`);
    const st = statSync(file);
    const h = createHash('sha256');
    h.update(readFileSync(file));
    payloads[name] = { sha256: h.digest('hex'), size: st.size, mode: st.mode & 0o777 };
  }
  const manifest = manifestSchema.parse({
    format: BUNDLE_FORMAT,
    version: o.version,
    compatible: o.compatible,
    minVersion: o.minVersion,
    commit: o.commit,
    createdAt: new Date().toISOString(),
    entry: o.entry,
    payloads,
  });
  const text = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const sig = { alg: 'ed25519', keyId: keyId(createPublicKey(key)), signature: sign(null, text, key).toString('base64') };
  const tar = new TarWriter(o.out);
  tar.addBuffer('manifest.json', text);
  tar.addBuffer('manifest.sig', Buffer.from(`${JSON.stringify(sig)}\n`));
  for (const [name, file] of Object.entries(o.payloads)) tar.addFile(`payload/${name}`, file, payloads[name].mode);
  tar.finish();
  return manifest;
}

export interface VerifyContext {
  keysDir: string;
  compatible: string;
  /** The version installed and committed: the floor below which nothing installs. */
  installedVersion: string;
  /** Allow re-installing the same version (never a lower one). */
  allowSameVersion?: boolean;
}

export interface OpenedBundle {
  file: string;
  manifest: Manifest;
  keyId: string;
  payloads: Map<string, TarEntry>;
}

function malformed(file: string, why: string): ImageError {
  return new ImageError('UPDATE_BUNDLE_MALFORMED', `${file} is not a valid update bundle: ${why}`);
}

/** Checks everything except the payload hashes (see `streamPayloads`). */
export async function openBundle(file: string, ctx: VerifyContext): Promise<OpenedBundle> {
  let entries: TarEntry[];
  try {
    entries = await listRegularFiles(file);
  } catch (e) {
    if (e instanceof TarFormatError) throw malformed(file, e.message);
    throw new ImageError('UPDATE_BUNDLE_UNREADABLE', `cannot read ${file}: ${(e as Error).message}`);
  }
  if (entries[0]?.name !== 'manifest.json' || entries[1]?.name !== 'manifest.sig') throw malformed(file, 'it must start with manifest.json and manifest.sig');
  let text: Buffer;
  let sigDoc: unknown;
  try {
    text = await readEntry(file, entries[0], MAX_MANIFEST);
    sigDoc = JSON.parse((await readEntry(file, entries[1], 4096)).toString('utf8'));
  } catch (e) {
    throw malformed(file, (e as Error).message);
  }
  const sig = signatureSchema.safeParse(sigDoc);
  if (!sig.success) throw malformed(file, 'manifest.sig is not {alg: "ed25519", keyId, signature}');
  const keys = loadTrustedKeys(ctx.keysDir);
  const key = keys.get(sig.data.keyId);
  if (!key) throw new ImageError('UPDATE_UNTRUSTED_KEY', `the bundle is signed with key ${sig.data.keyId}, which this device does not trust (trusted: ${[...keys.keys()].join(', ')} in ${ctx.keysDir})`, { keyId: sig.data.keyId });
  if (!verify(null, text, key, Buffer.from(sig.data.signature, 'base64'))) {
    throw new ImageError('UPDATE_BAD_SIGNATURE', `the manifest signature does not verify with key ${sig.data.keyId}: the bundle was altered after signing`, { keyId: sig.data.keyId });
  }
  // Signed by a trusted key: from here on the manifest is the publisher's word.
  let manifest: Manifest;
  try {
    manifest = manifestSchema.parse(JSON.parse(text.toString('utf8')));
  } catch (e) {
    throw malformed(file, `manifest.json: ${(e as Error).message}`);
  }
  if (manifest.compatible !== ctx.compatible) {
    throw new ImageError('UPDATE_INCOMPATIBLE', `the bundle is for "${manifest.compatible}", this device is "${ctx.compatible}"`, { compatible: manifest.compatible });
  }
  if (manifest.minVersion && compareVersions(ctx.installedVersion, manifest.minVersion) < 0) {
    throw new ImageError('UPDATE_MIN_VERSION', `version ${manifest.version} needs ${manifest.minVersion} or newer installed first; this device has ${ctx.installedVersion}`, {
      minVersion: manifest.minVersion,
    });
  }
  const cmp = compareVersions(manifest.version, ctx.installedVersion);
  if (cmp < 0 || (cmp === 0 && !ctx.allowSameVersion)) {
    throw new ImageError(
      'UPDATE_DOWNGRADE',
      cmp < 0
        ? `version ${manifest.version} is older than the installed ${ctx.installedVersion}: downgrades are refused`
        : `version ${manifest.version} is already installed (use --reinstall to install it again)`,
      { version: manifest.version, installed: ctx.installedVersion },
    );
  }
  const payloads = new Map<string, TarEntry>();
  for (const e of entries.slice(2)) {
    const name = e.name.startsWith('payload/') ? e.name.slice('payload/'.length) : '';
    if (!PAYLOAD_NAME.test(name)) throw malformed(file, `unexpected entry "${e.name}"`);
    if (payloads.has(name)) throw malformed(file, `payload "${name}" appears twice`);
    if (!(name in manifest.payloads)) throw malformed(file, `payload "${name}" is not in the signed manifest`);
    payloads.set(name, e);
  }
  for (const name of Object.keys(manifest.payloads)) if (!payloads.has(name)) throw malformed(file, `payload "${name}" of the manifest is missing`);
  return { file, manifest, keyId: sig.data.keyId, payloads };
}

/**
 * Streams every payload through sha256 into `dir` (or nowhere) and checks it against the signed
 * manifest. The copy written is the one hashed, so a bundle changed after `openBundle` is caught.
 */
export async function streamPayloads(b: OpenedBundle, dir: string | undefined, progress?: (done: number, total: number) => void): Promise<void> {
  const total = [...b.payloads.values()].reduce((n, e) => n + e.size, 0);
  let done = 0;
  if (dir) mkdirSync(dir, { recursive: true });
  for (const [name, e] of b.payloads) {
    const want = b.manifest.payloads[name];
    if (e.size !== want.size) throw new ImageError('UPDATE_PAYLOAD_HASH', `payload "${name}" is ${e.size} bytes, the manifest says ${want.size}`, { payload: name });
    const hash = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        done += chunk.length;
        progress?.(done, total);
        cb(null, chunk);
      },
    });
    const source = e.size === 0 ? [] : createReadStream(b.file, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 });
    if (dir) await pipeline(source, tap, createWriteStream(path.join(dir, name), { mode: want.mode }));
    else
      await pipeline(source, tap, async (src: AsyncIterable<Buffer>) => {
        for await (const _ of src) void _;
      });
    const got = hash.digest('hex');
    if (got !== want.sha256) throw new ImageError('UPDATE_PAYLOAD_HASH', `payload "${name}" has sha256 ${got}, the signed manifest says ${want.sha256}`, { payload: name });
  }
}

/** Full verification (`ccedge update verify`). */
export async function verifyBundle(file: string, ctx: VerifyContext): Promise<OpenedBundle> {
  const b = await openBundle(file, ctx);
  await streamPayloads(b, undefined);
  return b;
}
