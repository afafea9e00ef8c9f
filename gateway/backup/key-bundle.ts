import type { Dirent } from 'node:fs';
import { chmod, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeSecretFile } from '../../vault';
import { CcedgeError } from '../errors';

/**
 * Everything under `<dataDir>/keys`: the vault's site keys and export signing key, the site CA
 * and server certificate (gateway/certs), the installer's imported PEMs, the sync HMAC secret,
 * the admin token, update keys. One JSON document; only ever written encrypted.
 */
interface Bundle {
  v: 1;
  files: Array<{ path: string; mode: number; data: string }>;
}

export async function collectKeys(dataDir: string): Promise<{ data: Buffer; files: number }> {
  const root = path.join(dataDir, 'keys');
  const files: Bundle['files'] = [];
  const walk = async (rel: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(root, rel), { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      // Half-written temp files of an atomic write are not keys.
      if (/\.tmp-\d+$/.test(e.name)) continue;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) {
        const full = path.join(root, r);
        files.push({ path: r, mode: (await stat(full)).mode & 0o777, data: (await readFile(full)).toString('base64') });
      }
    }
  };
  await walk('');
  return { data: Buffer.from(JSON.stringify({ v: 1, files } satisfies Bundle)), files: files.length };
}

export async function restoreKeys(dataDir: string, data: Buffer): Promise<number> {
  let b: Bundle;
  try {
    b = JSON.parse(data.toString('utf8')) as Bundle;
  } catch {
    throw new CcedgeError('BACKUP_CORRUPT', 'the key bundle is not readable');
  }
  const root = path.join(dataDir, 'keys');
  await mkdir(root, { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  for (const f of b.files) {
    if (path.isAbsolute(f.path) || f.path.split('/').includes('..')) throw new CcedgeError('BACKUP_CORRUPT', `the key bundle names a bad path ${f.path}`);
    const full = path.join(root, f.path);
    await mkdir(path.dirname(full), { recursive: true, mode: 0o700 });
    writeSecretFile(full, Buffer.from(f.data, 'base64'));
    // Secrets stay 0600 whatever they were; public files (CA, certificates) keep their mode.
    await chmod(full, f.mode & 0o644);
  }
  return b.files.length;
}
