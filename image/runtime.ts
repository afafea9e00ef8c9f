/**
 * Runtime of the single binary (Node SEA): native addons and web pages travel inside the
 * executable as SEA assets. At first start they are written to a versioned directory under the
 * data dir (`<dataDir>/runtime/<version>-<hash>/`, not /tmp, which may be noexec), checked against
 * the hashes baked in at build time, and the addons are loaded from there with `process.dlopen`.
 *
 * The esbuild plugin of image/build-binary.ts rewrites sqlite3's `bindings('node_sqlite3.node')`
 * and serialport's `node-gyp-build(...)` into `loadNative(<asset>)`, and gives every app module
 * that uses `__dirname` a directory inside the runtime dir (`appDir`), so the agent page and the
 * wallboard are served from the extracted copies without changes to the HTTP code.
 *
 * Run from dist/ (not a binary) none of this is used.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { ImageError } from './errors';

/** The asset that lists every other asset with its sha256 (written by the build). */
export const RUNTIME_MANIFEST_ASSET = 'runtime-manifest.json';

export interface RuntimeManifest {
  version: string;
  commit: string;
  /** sha256 over the sorted (name, sha256) list: the directory name suffix. */
  hash: string;
  /** asset name → sha256 (hex); names are `native/<file>.node` or `app/<dir>/<file>`. */
  files: Record<string, string>;
}

interface SeaApi {
  isSea(): boolean;
  getAsset(key: string): ArrayBuffer;
}

function sea(): SeaApi | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const api = require('node:sea') as SeaApi;
    return api.isSea() ? api : undefined;
  } catch {
    return undefined;
  }
}

export function isBinary(): boolean {
  return sea() !== undefined;
}

let dataDirForRuntime: string | undefined;
let runtimeDir: string | undefined;

/** Where the runtime directory goes (the daemon's data dir); set by sea-main before the app loads. */
export function setRuntimeDataDir(dataDir: string): void {
  dataDirForRuntime = dataDir;
}

export function runtimeManifest(): RuntimeManifest {
  const api = sea();
  if (!api) throw new ImageError('IMAGE_RUNTIME_EXTRACT_FAILED', 'not running as the single binary');
  return JSON.parse(Buffer.from(api.getAsset(RUNTIME_MANIFEST_ASSET)).toString('utf8')) as RuntimeManifest;
}

/** The extracted runtime directory, writing it on first use. */
export function ensureRuntimeDir(): string {
  if (runtimeDir) return runtimeDir;
  const api = sea();
  if (!api) throw new ImageError('IMAGE_RUNTIME_EXTRACT_FAILED', 'not running as the single binary');
  const manifest = runtimeManifest();
  const name = `${manifest.version}-${manifest.hash.slice(0, 12)}`;
  const candidates = [path.join(dataDirForRuntime ?? path.resolve('var'), 'runtime')];
  // A user without write access to the data dir (an operator running `ccedge status`) uses a cache.
  if (homedir()) candidates.push(path.join(homedir(), '.cache', 'ccedge', 'runtime'));
  const problems: string[] = [];
  for (const base of candidates) {
    const dir = path.join(base, name);
    try {
      if (existsSync(dir) && intact(dir, manifest)) return (runtimeDir = dir);
      extract(api, manifest, base, dir);
      return (runtimeDir = dir);
    } catch (e) {
      problems.push(`${dir}: ${(e as Error).message}`);
    }
  }
  throw new ImageError('IMAGE_RUNTIME_EXTRACT_FAILED', `cannot write the binary's native modules and pages to disk:\n  ${problems.join('\n  ')}`);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function intact(dir: string, manifest: RuntimeManifest): boolean {
  for (const [name, hash] of Object.entries(manifest.files)) {
    try {
      if (sha256(readFileSync(path.join(dir, name))) !== hash) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function extract(api: SeaApi, manifest: RuntimeManifest, base: string, dir: string): void {
  mkdirSync(base, { recursive: true, mode: 0o755 });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const [name, hash] of Object.entries(manifest.files)) {
    const data = Buffer.from(api.getAsset(name));
    if (sha256(data) !== hash) throw new Error(`asset ${name} does not match its build hash`);
    const file = path.join(tmp, name);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, data, { mode: name.endsWith('.node') ? 0o555 : 0o444 });
  }
  chmodSync(tmp, 0o755);
  // Another process may have finished first: its copy is as good as ours.
  rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dir)) throw e;
  }
}

const loaded = new Map<string, unknown>();

/** Loads an embedded native addon (`native/<file>`) with process.dlopen. */
export function loadNative(file: string): unknown {
  const cached = loaded.get(file);
  if (cached) return cached;
  const full = path.join(ensureRuntimeDir(), 'native', file);
  const mod = { exports: {} as unknown };
  process.dlopen(mod, full);
  loaded.set(file, mod.exports);
  return mod.exports;
}

/** The stand-in `__dirname` for an app module that lived in dist/<rel> (see the header). */
export function appDir(rel: string): string {
  if (!sea()) return path.resolve(rel);
  return path.join(ensureRuntimeDir(), 'app', rel);
}
