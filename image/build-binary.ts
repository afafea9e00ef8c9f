/**
 * `npm run build:binary`: one executable `dist/bin/ccedge` for linux-x64 with Node's Single
 * Executable Application support, offline:
 *   1. esbuild bundles dist/app/sea-main.js (the tsc output) into one CommonJS file; a plugin
 *      replaces sqlite3's and serialport's addon lookups with image/runtime.ts#loadNative and gives
 *      page-serving modules a `__dirname` inside the extracted runtime directory;
 *   2. the native addons, the agent page and the wallboard become SEA assets, listed with their
 *      sha256 in `runtime-manifest.json`;
 *   3. `node --experimental-sea-config` writes the blob; a copy of this node gets it with postject.
 * The version (package.json, or --version) and the git commit are baked in with esbuild `define`.
 * A build whose inputs are unchanged is skipped (dist/bin/ccedge.build.json records them).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ImageError } from './errors';
import { RUNTIME_MANIFEST_ASSET, type RuntimeManifest } from './runtime';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DEFAULT_BINARY = path.join(ROOT, 'dist', 'bin', 'ccedge');
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Scripts started with `new Worker(path.join(__dirname, …))`, relative to dist/. */
const WORKER_SCRIPTS = [path.join('hw', 'health', 'sample-worker.js'), path.join('media', 'workers', 'media-worker.js')];

export interface BuildOptions {
  out?: string;
  /** Version baked in (default: package.json). Test builds use it to make "newer" binaries. */
  version?: string;
  commit?: string;
  force?: boolean;
  log?: (line: string) => void;
}

export interface BuildResult {
  file: string;
  version: string;
  commit: string;
  bytes: number;
  sha256: string;
  skipped: boolean;
  ms: number;
}

interface Asset {
  name: string;
  file: string;
}

function nativeAssets(): Asset[] {
  const sqlite = path.join(ROOT, 'node_modules', 'sqlite3', 'build', 'Release', 'node_sqlite3.node');
  const spDir = path.join(ROOT, 'node_modules', '@serialport', 'bindings-cpp');
  // node-gyp-build prefers a local build; otherwise the glibc prebuild for linux-x64.
  const serial = [path.join(spDir, 'build', 'Release', 'bindings.node'), path.join(spDir, 'prebuilds', 'linux-x64', '@serialport+bindings-cpp.glibc.node')].find((f) =>
    existsSync(f),
  );
  if (!existsSync(sqlite)) throw new ImageError('IMAGE_BUILD_FAILED', `${sqlite} is missing: run npm ci (sqlite3 builds from source, ~70 s)`);
  if (!serial) throw new ImageError('IMAGE_BUILD_FAILED', `no serialport addon for linux-x64 under ${spDir}`);
  return [
    { name: 'native/node_sqlite3.node', file: sqlite },
    { name: 'native/serialport-bindings-cpp.node', file: serial },
  ];
}

/** dist/agent-ui and dist/wallboard (scripts/build-agent-page.js) as `app/<dir>/<file>`. */
function pageAssets(): Asset[] {
  const out: Asset[] = [];
  for (const dir of ['agent-ui', 'wallboard']) {
    const full = path.join(ROOT, 'dist', dir);
    if (!existsSync(full)) throw new ImageError('IMAGE_BUILD_FAILED', `${full} is missing: run npm run build first`);
    for (const f of readdirSync(full).sort()) {
      if (f.endsWith('.map') || !statSync(path.join(full, f)).isFile()) continue;
      out.push({ name: `app/${dir}/${f}`, file: path.join(full, f) });
    }
  }
  return out;
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    let dirty = false;
    try {
      execFileSync('git', ['diff', '--quiet', 'HEAD', '--', '.'], { cwd: ROOT, stdio: 'ignore' });
    } catch {
      dirty = true;
    }
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

async function bundle(entry: string, define: Record<string, string>): Promise<{ code: string; rewritten: string[] }> {
  // esbuild is a devDependency: loaded only when building.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  const runtimeModule = path.join(ROOT, 'dist', 'image', 'runtime.js');
  const distDir = path.join(ROOT, 'dist');
  const rewritten: string[] = [];
  const loaderRequire = `require(${JSON.stringify(runtimeModule)})`;
  const plugin: import('esbuild').Plugin = {
    name: 'ccedge-sea-natives',
    setup(build) {
      // ws's optional speed-ups are not installed: a stub that fails like a missing module, so ws
      // takes its JavaScript path and the SEA's require() never sees a non-builtin name.
      build.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (args) => ({ path: args.path, namespace: 'ccedge-absent' }));
      build.onLoad({ filter: /.*/, namespace: 'ccedge-absent' }, (args) => ({
        contents: `throw Object.assign(new Error(${JSON.stringify(`Cannot find module '${args.path}' (not in the single binary)`)}), { code: 'MODULE_NOT_FOUND' });\n`,
        loader: 'js',
      }));
      // sqlite3: lib/sqlite3-binding.js is `module.exports = require('bindings')('node_sqlite3.node')`.
      build.onLoad({ filter: /[\\/]node_modules[\\/]sqlite3[\\/]lib[\\/]sqlite3-binding\.js$/ }, () => ({
        contents: `module.exports = ${loaderRequire}.loadNative('node_sqlite3.node');\n`,
        loader: 'js',
      }));
      // serialport: dist/serialport-bindings.js is `exports.binding = nodeGypBuild(join(__dirname, '../'))`.
      build.onLoad({ filter: /[\\/]node_modules[\\/]@serialport[\\/]bindings-cpp[\\/]dist[\\/]serialport-bindings\.js$/ }, () => ({
        contents: `"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.binding = ${loaderRequire}.loadNative('serialport-bindings-cpp.node');\n`,
        loader: 'js',
      }));
      // App modules that locate files with __dirname (the page servers) get a directory that
      // mirrors dist/ inside the extracted runtime dir. gateway/version.js only reads
      // package.json when no version was baked in: left alone.
      build.onLoad({ filter: /\.js$/ }, (args) => {
        const rel = path.relative(distDir, args.path);
        if (rel.startsWith('..') || rel.startsWith(`image${path.sep}`) || rel.includes(`node_modules${path.sep}`) || rel === path.join('gateway', 'version.js')) return undefined;
        const text = readFileSync(args.path, 'utf8');
        if (!/\b__dirname\b/.test(text)) return undefined;
        rewritten.push(rel);
        const decl = `var __dirname = ${loaderRequire}.appDir(${JSON.stringify(path.dirname(rel))});`;
        // Keep "use strict" the first statement of the module.
        const contents = text.startsWith('"use strict";') ? `"use strict";${decl}${text.slice('"use strict";'.length)}` : `${decl}\n${text}`;
        return { contents, loader: 'js', resolveDir: path.dirname(args.path) };
      });
    },
  };
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    write: false,
    define,
    plugins: [plugin],
    logLevel: 'silent',
    keepNames: true,
    legalComments: 'none',
  });
  if (result.errors.length) throw new ImageError('IMAGE_BUILD_FAILED', `esbuild: ${result.errors.map((e) => e.text).join('; ')}`);
  return { code: result.outputFiles[0].text, rewritten };
}

export async function buildBinary(opts: BuildOptions = {}): Promise<BuildResult> {
  const started = Date.now();
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const out = path.resolve(opts.out ?? DEFAULT_BINARY);
  const entry = path.join(ROOT, 'dist', 'app', 'sea-main.js');
  if (!existsSync(entry)) throw new ImageError('IMAGE_BUILD_FAILED', `${entry} is missing: run npx tsc -p tsconfig.json first`);
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new ImageError('IMAGE_BUILD_FAILED', `the binary is built for linux-x64 on linux-x64, not ${process.platform}-${process.arch}`);
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const version = opts.version ?? pkg.version;
  const commit = opts.commit ?? process.env.CCEDGE_BUILD_COMMIT ?? gitCommit();
  const define = { __CCEDGE_BUILD__: JSON.stringify({ version, commit }) };
  const { code, rewritten } = await bundle(entry, define);
  const assets = [...nativeAssets(), ...pageAssets()];
  // Worker threads load their script from disk: each becomes its own bundle, extracted with the
  // pages (hw's health sampler; its module finds it through the rewritten __dirname).
  const workerCode = new Map<string, string>();
  for (const rel of WORKER_SCRIPTS) {
    const file = path.join(ROOT, 'dist', rel);
    if (!existsSync(file)) continue;
    workerCode.set(`app/${rel.split(path.sep).join('/')}`, (await bundle(file, define)).code);
  }
  const files: Record<string, string> = {};
  for (const a of assets) files[a.name] = sha256(readFileSync(a.file));
  for (const [name, text] of workerCode) files[name] = sha256(text);
  const hash = sha256(
    Object.keys(files)
      .sort()
      .map((n) => `${n}\0${files[n]}\n`)
      .join(''),
  );
  const manifest: RuntimeManifest = { version, commit, hash, files };
  const nodeStat = statSync(process.execPath);
  const inputs = sha256(JSON.stringify({ code: sha256(code), manifest, node: [process.execPath, process.version, nodeStat.size, nodeStat.mtimeMs] }));
  const infoFile = `${out}.build.json`;
  if (!opts.force && existsSync(out) && existsSync(infoFile)) {
    const info = JSON.parse(readFileSync(infoFile, 'utf8')) as BuildResult & { inputs: string };
    if (info.inputs === inputs && statSync(out).size === info.bytes) {
      log(`ccedge binary is up to date: ${out}`);
      return { ...info, file: out, skipped: true, ms: Date.now() - started };
    }
  }

  const work = path.join(path.dirname(out), `.sea-work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const mainFile = path.join(work, 'ccedge.js');
    writeFileSync(mainFile, code);
    for (const [name, text] of workerCode) {
      const f = path.join(work, 'workers', name);
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, text);
      assets.push({ name, file: f });
    }
    const manifestFile = path.join(work, RUNTIME_MANIFEST_ASSET);
    writeFileSync(manifestFile, JSON.stringify(manifest));
    const seaConfig = {
      main: mainFile,
      output: path.join(work, 'sea-prep.blob'),
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      assets: Object.fromEntries([[RUNTIME_MANIFEST_ASSET, manifestFile], ...assets.map((a) => [a.name, a.file])]),
    };
    writeFileSync(path.join(work, 'sea-config.json'), JSON.stringify(seaConfig, null, 2));
    execFileSync(process.execPath, ['--experimental-sea-config', path.join(work, 'sea-config.json')], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    const exe = path.join(work, 'ccedge');
    copyFileSync(process.execPath, exe);
    chmodSync(exe, 0o755);
    // postject's CLI in a child: LIEF's harmless ELF note warnings stay out of our output.
    const postject = path.join(path.dirname(require.resolve('postject')), 'cli.js');
    execFileSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', seaConfig.output, '--sentinel-fuse', SEA_FUSE], { stdio: ['ignore', 'pipe', 'pipe'] });
    const bytes = statSync(exe).size;
    const digest = sha256(readFileSync(exe));
    renameSync(exe, out);
    const result: BuildResult = { file: out, version, commit, bytes, sha256: digest, skipped: false, ms: Date.now() - started };
    writeFileSync(infoFile, `${JSON.stringify({ ...result, inputs, bundleBytes: Buffer.byteLength(code), rewritten }, null, 2)}\n`);
    log(`built ${out}: ccedge ${version} (${commit.slice(0, 12)}), ${(bytes / 1e6).toFixed(1)} MB, ${result.ms} ms; __dirname rewritten in ${rewritten.join(', ') || 'nothing'}`);
    return result;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, version: { type: 'string' }, force: { type: 'boolean', default: false } }, strict: true });
  buildBinary({ out: values.out, version: values.version, force: values.force }).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`build-binary: ${e instanceof ImageError ? `${e.code}: ${e.message}` : ((e as Error).stack ?? String(e))}\n`);
      process.exit(1);
    },
  );
}
