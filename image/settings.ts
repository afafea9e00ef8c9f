/**
 * Settings of the update machinery (the image's "system.conf", like RAUC's): they describe the
 * appliance, not the site, so they live in the image (`/etc/ccedge/update.json`) and not in the
 * site config that provisioning and the cloud write. Environment variables override the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ImageError } from './errors';

export const DEFAULT_COMPATIBLE = 'ccedge-appliance-linux-x64';

export interface UpdateSettings {
  /** Holds slots/a, slots/b, the `current` and `committed` symlinks and state.json. */
  root: string;
  /** Directory of trusted Ed25519 public keys (`*.pub`, PEM). */
  keysDir: string;
  /** The device's compatible string; a bundle must name exactly this. */
  compatible: string;
  /** A new version commits itself after its health checks pass for this long. */
  healthWindowS: number;
  /** Give up (roll back) when the window has not been passed this long after start. */
  healthDeadlineS: number;
  /** Starts of a trial version before it is rolled back (counted by `ccedge update boot`). */
  maxBoots: number;
  /** The systemd unit restarted after an apply from the command line. */
  unit: string;
}

export const DEFAULT_SETTINGS: UpdateSettings = {
  root: '/opt/ccedge',
  keysDir: '/etc/ccedge/update-keys.d',
  compatible: DEFAULT_COMPATIBLE,
  healthWindowS: 60,
  healthDeadlineS: 300,
  maxBoots: 3,
  unit: 'ccedge.service',
};

const ENV: Array<[string, keyof UpdateSettings, 'string' | 'int']> = [
  ['CCEDGE_UPDATE_ROOT', 'root', 'string'],
  ['CCEDGE_UPDATE_KEYS', 'keysDir', 'string'],
  ['CCEDGE_UPDATE_COMPATIBLE', 'compatible', 'string'],
  ['CCEDGE_UPDATE_HEALTH_WINDOW_S', 'healthWindowS', 'int'],
  ['CCEDGE_UPDATE_HEALTH_DEADLINE_S', 'healthDeadlineS', 'int'],
  ['CCEDGE_UPDATE_MAX_BOOTS', 'maxBoots', 'int'],
  ['CCEDGE_UPDATE_UNIT', 'unit', 'string'],
];

export function loadUpdateSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<UpdateSettings> = {}): UpdateSettings {
  const s: UpdateSettings = { ...DEFAULT_SETTINGS };
  const file = env.CCEDGE_UPDATE_CONF ?? '/etc/ccedge/update.json';
  if (existsSync(file)) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ImageError('IMAGE_USAGE', `${file}: not valid JSON: ${(e as Error).message}`);
    }
    for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
      if (!(k in s)) throw new ImageError('IMAGE_USAGE', `${file}: unknown setting "${k}" (known: ${Object.keys(s).join(', ')})`);
      if (typeof v !== typeof (s as unknown as Record<string, unknown>)[k]) throw new ImageError('IMAGE_USAGE', `${file}: "${k}" must be a ${typeof (s as unknown as Record<string, unknown>)[k]}`);
      (s as unknown as Record<string, unknown>)[k] = v;
    }
  }
  for (const [name, key, kind] of ENV) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (kind === 'int') {
      if (!/^\d+$/.test(v)) throw new ImageError('IMAGE_USAGE', `${name} must be a whole number, got "${v}"`);
      (s as unknown as Record<string, unknown>)[key] = Number(v);
    } else (s as unknown as Record<string, unknown>)[key] = v;
  }
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (s as unknown as Record<string, unknown>)[k] = v;
  s.root = path.resolve(s.root);
  s.keysDir = path.resolve(s.keysDir);
  if (s.maxBoots < 1) throw new ImageError('IMAGE_USAGE', 'maxBoots must be at least 1');
  return s;
}
