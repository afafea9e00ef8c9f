/**
 * The Debian root the boot test starts from: `mmdebstrap` (minbase + systemd as init + what the
 * image needs at run time), as a tarball cached outside the repository and keyed by everything
 * that shapes it (suite, mirror, variant, package list, dpkg options), so a CI machine pays the
 * ~3 minutes once. The overlay (image/build-image.ts) goes on top of a copy of it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

export interface DebianBaseOptions {
  suite?: string;
  mirror?: string;
  /** Packages on top of minbase. */
  packages?: readonly string[];
  /** Where tarballs are kept between runs (CCEDGE_BOOT_CACHE, default /var/cache/ccedge-boot). */
  cacheDir?: string;
  log?: (line: string) => void;
}

export interface DebianBase {
  tarball: string;
  key: string;
  /** false: built by this call. */
  cached: boolean;
  ms: number;
}

/**
 * systemd-sysv makes systemd /sbin/init; openssl makes the device CSR at provisioning (see
 * app/cli/provision-command.ts); libstdc++6 is linked by the node inside the binary.
 */
export const BOOT_PACKAGES = ['systemd', 'systemd-sysv', 'openssl', 'libstdc++6'] as const;

// Documentation and translations are of no use in a test root and make the tarball bigger.
const DPKG_OPTIONS = ['path-exclude=/usr/share/doc/*', 'path-exclude=/usr/share/man/*', 'path-exclude=/usr/share/locale/*', 'path-exclude=/usr/share/info/*'];

export async function debianBase(o: DebianBaseOptions = {}): Promise<DebianBase> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const suite = o.suite ?? 'bookworm';
  const mirror = o.mirror ?? 'http://deb.debian.org/debian';
  const packages = [...(o.packages ?? BOOT_PACKAGES)].sort();
  const cacheDir = o.cacheDir ?? process.env.CCEDGE_BOOT_CACHE ?? '/var/cache/ccedge-boot';
  const key = createHash('sha256')
    .update(JSON.stringify({ suite, mirror, variant: 'minbase', packages, dpkg: DPKG_OPTIONS, arch: process.arch }))
    .digest('hex')
    .slice(0, 16);
  const tarball = path.join(cacheDir, `debian-${suite}-${key}.tar`);
  if (existsSync(tarball) && statSync(tarball).size > 0) return { tarball, key, cached: true, ms: Date.now() - started };
  mkdirSync(cacheDir, { recursive: true });
  // Older bases of other package lists go: one base is ~150 MB.
  for (const f of readdirSync(cacheDir)) if (/^debian-.*\.tar(\.tmp-\d+)?$/.test(f) && f !== path.basename(tarball)) rmSync(path.join(cacheDir, f), { recursive: true, force: true });
  const tmp = `${tarball}.tmp-${process.pid}`;
  const args = ['--variant=minbase', '--format=tar', `--include=${packages.join(',')}`, ...DPKG_OPTIONS.map((d) => `--dpkgopt=${d}`), suite, tmp, mirror];
  log(`mmdebstrap ${args.join(' ')}`);
  try {
    await new Promise<void>((resolve, reject) => {
      execFile('mmdebstrap', args, { timeout: 20 * 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`mmdebstrap failed (${err.message}):\n${String(stderr).split('\n').slice(-30).join('\n')}`));
        else resolve();
      });
    });
    renameSync(tmp, tarball);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { tarball, key, cached: false, ms: Date.now() - started };
}
