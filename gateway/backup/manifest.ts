import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { CcedgeError } from '../errors';
import { assertPassphrase, mac, sha256File, type BackupKeys, type KdfInfo } from './crypto';

export const MANIFEST_FILE = 'manifest.json';
/** Backups are directories `ccedge-<UTC time>-<random>` under the backup path. */
export const BACKUP_DIR_RE = /^ccedge-\d{8}T\d{6}Z-[0-9a-f]{6}$/;
/** Recordings (already encrypted by the vault) live once under the backup path, shared by backups. */
export const POOL_DIR = 'recordings';

export type FileKind = 'db' | 'keys' | 'recording' | 'recording-open';

export interface ManifestFile {
  /** Relative to the backup path (the pool is shared: `recordings/<file>`). */
  path: string;
  kind: FileKind;
  bytes: number;
  sha256: string;
  recordingId?: string;
}

export interface Manifest {
  format: 'ccedge-backup';
  v: 1;
  id: string;
  createdAt: string;
  finishedAt: string;
  site: string;
  device: string;
  version: string;
  kdf: KdfInfo;
  /** HMAC of a fixed label: a wrong passphrase is named before anything is decrypted. */
  check: string;
  db: { schemaVersion: number; pages: number; calls: number };
  /** The outbox position in the snapshot: a restore moves it on so no seq is used twice. */
  outbox: { lastSeq: number; lastAckedSeq: number };
  files: ManifestFile[];
  /** HMAC over the rest of the manifest (canonical JSON without `mac`), with the passphrase's key. */
  mac: string;
}

export type UnsignedManifest = Omit<Manifest, 'mac'>;

function body(m: Manifest | UnsignedManifest): UnsignedManifest {
  const { mac: _mac, ...rest } = m as Manifest;
  return rest;
}

export function signManifest(m: UnsignedManifest, keys: BackupKeys): Manifest {
  return { ...m, mac: mac(keys, JSON.stringify(body(m), replacerSorted)) };
}

/** Keys sorted at every level: the MAC does not depend on the order a JSON writer chose. */
function replacerSorted(this: unknown, _k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return v;
}

/** The passphrase opens this backup, and the manifest is as it was written. */
export function checkManifest(m: Manifest, keys: BackupKeys): void {
  assertPassphrase(keys, m.check);
  if (mac(keys, JSON.stringify(body(m), replacerSorted)) !== m.mac) throw new CcedgeError('BACKUP_CORRUPT', `backup ${m.id}: the manifest was changed after it was written`);
}

export async function readManifest(root: string, id: string): Promise<Manifest> {
  const file = path.join(root, id, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CcedgeError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'BACKUP_NOT_FOUND' : 'BACKUP_CORRUPT', `${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    throw new CcedgeError('BACKUP_CORRUPT', `${file}: not JSON`);
  }
  if (m.format !== 'ccedge-backup' || m.v !== 1 || m.id !== id || !Array.isArray(m.files)) throw new CcedgeError('BACKUP_CORRUPT', `${file}: not a ccedge backup manifest (or for another backup)`);
  for (const f of m.files) {
    // A manifest cannot point a restore outside the backup path.
    if (typeof f.path !== 'string' || path.isAbsolute(f.path) || f.path.split(/[\\/]/).includes('..')) throw new CcedgeError('BACKUP_CORRUPT', `${file}: bad file path ${String(f.path)}`);
  }
  return m;
}

/** Complete backups under `root`, oldest first (a run that did not finish has no manifest). */
export async function listBackups(root: string): Promise<Manifest[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CcedgeError('BACKUP_NOT_FOUND', `no backup directory ${root}`);
    throw new CcedgeError('BACKUP_FAILED', `cannot read ${root}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const out: Manifest[] = [];
  for (const n of names.filter((x) => BACKUP_DIR_RE.test(x)).sort()) {
    try {
      out.push(await readManifest(root, n));
    } catch (e) {
      if ((e as CcedgeError).code !== 'BACKUP_NOT_FOUND') throw e;
    }
  }
  return out;
}

export interface VerifyProblem {
  path: string;
  message: string;
}

/** Every file the manifest names: present, its size and SHA-256 as written. */
export async function verifyFiles(root: string, m: Manifest): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  for (const f of m.files) {
    const file = path.join(root, f.path);
    const st = await stat(file).catch(() => undefined);
    if (!st) {
      problems.push({ path: f.path, message: 'missing' });
      continue;
    }
    if (st.size !== f.bytes) {
      problems.push({ path: f.path, message: `${st.size} bytes, the manifest says ${f.bytes}` });
      continue;
    }
    const h = await sha256File(file);
    if (h.sha256 !== f.sha256) problems.push({ path: f.path, message: 'SHA-256 differs from the manifest (damaged or changed)' });
  }
  return problems;
}
