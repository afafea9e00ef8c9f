/**
 * `npm run build:image`: the root-filesystem overlay of the appliance, `dist/image/`:
 *   ccedge-<version>-rootfs.tar (+ .sha256)  extract over a Debian 12 root (`tar -C / -xpf`)
 *   image-manifest.json                      what is inside, with hashes
 * Contents: the binary in A/B slot a (/opt/ccedge/slots/a, `current` and `committed` -> it),
 * /usr/local/bin/ccedge, the systemd units (enabled), /etc/ccedge/update.json and the trusted
 * update keys, sysusers/tmpfiles entries, logrotate and journald settings, the first-boot script
 * and the example config. A raw disk image is not built here (see the README, "The appliance").
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_BINARY, ROOT } from './build-binary';
import { ImageError } from './errors';
import { DEFAULT_SETTINGS } from './settings';
import { TarWriter } from './ustar';

export interface ImageOptions {
  binary?: string;
  out?: string;
  /** Directory of trusted update public keys (*.pub) to put in /etc/ccedge/update-keys.d. */
  keys?: string;
  compatible?: string;
  log?: (line: string) => void;
}

export interface ImageResult {
  tarball: string;
  version: string;
  files: Array<{ path: string; type: string; sha256?: string; bytes?: number; target?: string }>;
}

function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(dir, rel)).sort()) {
    const r = path.posix.join(rel, name);
    if (statSync(path.join(dir, r)).isDirectory()) out.push(`${r}/`, ...walk(dir, r));
    else out.push(r);
  }
  return out;
}

export function buildImage(o: ImageOptions = {}): ImageResult {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const binary = path.resolve(o.binary ?? DEFAULT_BINARY);
  const info = `${binary}.build.json`;
  if (!existsSync(binary) || !existsSync(info)) throw new ImageError('IMAGE_BUILD_FAILED', `${binary} is missing: npm run build:binary first`);
  const build = JSON.parse(readFileSync(info, 'utf8')) as { version: string; commit: string; sha256: string };
  const outDir = path.resolve(o.out ?? path.join(ROOT, 'dist', 'image'));
  mkdirSync(outDir, { recursive: true });
  const tarball = path.join(outDir, `ccedge-${build.version}-rootfs.tar`);
  const files: ImageResult['files'] = [];
  const tar = new TarWriter(tarball);
  const dirs = new Set<string>();
  const dir = (p: string, mode = 0o755): void => {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      tar.addDir(d, i === parts.length ? mode : 0o755);
    }
  };
  const file = (p: string, data: Buffer, mode: number): void => {
    dir(path.posix.dirname(p));
    tar.addBuffer(p, data, mode);
    files.push({ path: `/${p}`, type: 'file', bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
  };
  const link = (p: string, target: string): void => {
    dir(path.posix.dirname(p));
    tar.addSymlink(p, target);
    files.push({ path: `/${p}`, type: 'symlink', target });
  };

  // The binary in slot a; slot b empty; both links on a.
  dir('opt/ccedge/slots/b');
  dir(path.posix.dirname('opt/ccedge/slots/a/ccedge'));
  tar.addFile('opt/ccedge/slots/a/ccedge', binary, 0o755);
  files.push({ path: '/opt/ccedge/slots/a/ccedge', type: 'file', bytes: statSync(binary).size, sha256: build.sha256 });
  file('opt/ccedge/slots/a/manifest.json', Buffer.from(`${JSON.stringify({ version: build.version, commit: build.commit, entry: 'ccedge', factory: true }, null, 2)}\n`), 0o644);
  file('opt/ccedge/state.json', Buffer.from(`${JSON.stringify({ format: 1, history: [] }, null, 2)}\n`), 0o644);
  link('opt/ccedge/current', 'slots/a');
  link('opt/ccedge/committed', 'slots/a');
  link('usr/local/bin/ccedge', '/opt/ccedge/current/ccedge');

  // Static files of image/rootfs.
  const src = path.join(ROOT, 'image', 'rootfs');
  for (const r of walk(src)) {
    if (r.endsWith('/')) dir(r.slice(0, -1));
    else file(r, readFileSync(path.join(src, r)), statSync(path.join(src, r)).mode & 0o111 ? 0o755 : 0o644);
  }
  link('etc/systemd/system/multi-user.target.wants/ccedge.service', '../ccedge.service');
  link('etc/systemd/system/multi-user.target.wants/ccedge-firstboot.service', '../ccedge-firstboot.service');

  // Update settings and trusted keys: the device's identity for bundles.
  const settings = { root: DEFAULT_SETTINGS.root, keysDir: DEFAULT_SETTINGS.keysDir, compatible: o.compatible ?? DEFAULT_SETTINGS.compatible, healthWindowS: 60, healthDeadlineS: 300, maxBoots: 3, unit: 'ccedge.service' };
  file('etc/ccedge/update.json', Buffer.from(`${JSON.stringify(settings, null, 2)}\n`), 0o644);
  dir('etc/ccedge/update-keys.d');
  const keysDir = o.keys ?? process.env.CCEDGE_IMAGE_KEYS;
  const pubs = keysDir && existsSync(keysDir) ? readdirSync(keysDir).filter((n) => n.endsWith('.pub')).sort() : [];
  for (const k of pubs) file(`etc/ccedge/update-keys.d/${k}`, readFileSync(path.join(keysDir as string, k)), 0o644);
  if (pubs.length === 0) log('warning: no trusted update keys (--keys DIR or CCEDGE_IMAGE_KEYS): this image will refuse every update bundle');
  file('usr/share/doc/ccedge/README.md', readFileSync(path.join(ROOT, 'README.md')), 0o644);
  tar.finish();

  const digest = createHash('sha256').update(readFileSync(tarball)).digest('hex');
  writeFileSync(`${tarball}.sha256`, `${digest}  ${path.basename(tarball)}\n`);
  writeFileSync(
    path.join(outDir, 'image-manifest.json'),
    `${JSON.stringify({ version: build.version, commit: build.commit, compatible: settings.compatible, tarball: path.basename(tarball), sha256: digest, trustedKeys: pubs, files }, null, 2)}\n`,
  );
  log(`built ${tarball} (${(statSync(tarball).size / 1e6).toFixed(1)} MB, ${files.length} entries, ${pubs.length} trusted key(s))`);
  return { tarball, version: build.version, files };
}

if (require.main === module) {
  const { values } = parseArgs({ options: { binary: { type: 'string' }, out: { type: 'string' }, keys: { type: 'string' }, compatible: { type: 'string' } }, strict: true });
  try {
    buildImage({ binary: values.binary, out: values.out, keys: values.keys, compatible: values.compatible });
  } catch (e) {
    process.stderr.write(`build-image: ${e instanceof ImageError ? `${e.code}: ${e.message}` : ((e as Error).stack ?? String(e))}\n`);
    process.exit(1);
  }
}
