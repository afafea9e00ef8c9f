import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { CcedgeError } from '../errors';
import { DEMO_PASSWORD_PLACEHOLDER, demoConfig } from './demo';
import { configSchema, type Config } from './schema';

type Raw = Record<string, unknown>;

/** Environment variables of DESIGN.md and the config key each one sets. */
export const ENV_KEYS: ReadonlyArray<{ env: string; key: string; kind: 'string' | 'int' | 'list' }> = [
  { env: 'CCEDGE_DATA_DIR', key: 'dataDir', kind: 'string' },
  { env: 'CCEDGE_SIP_HOST', key: 'sip.host', kind: 'string' },
  { env: 'CCEDGE_SIP_PORT', key: 'sip.port', kind: 'int' },
  { env: 'CCEDGE_SIP_TLS_PORT', key: 'sip.tls.port', kind: 'int' },
  { env: 'CCEDGE_RTP_PORTS', key: 'rtp.ports', kind: 'string' },
  { env: 'CCEDGE_MEDIA_WORKERS', key: 'media.workers', kind: 'int' },
  { env: 'CCEDGE_HTTP_HOST', key: 'http.host', kind: 'string' },
  { env: 'CCEDGE_HTTP_PORT', key: 'http.port', kind: 'int' },
  { env: 'CCEDGE_HTTPS_HOST', key: 'https.host', kind: 'string' },
  { env: 'CCEDGE_HTTPS_PORT', key: 'https.port', kind: 'int' },
  { env: 'CCEDGE_MQTT_URL', key: 'mqtt.url', kind: 'string' },
  { env: 'CCEDGE_SITE_ID', key: 'site.id', kind: 'string' },
  { env: 'CCEDGE_DEVICE_ID', key: 'site.deviceId', kind: 'string' },
  { env: 'CCEDGE_WEBRTC_INTERFACES', key: 'webrtc.interfaces', kind: 'list' },
  { env: 'CCEDGE_DAHDI_DIR', key: 'hw.dahdiDir', kind: 'string' },
  { env: 'CCEDGE_LOG_LEVEL', key: 'log.level', kind: 'string' },
  { env: 'CCEDGE_ADMIN_TOKEN', key: 'http.adminToken', kind: 'string' },
  { env: 'CCEDGE_DEMO_PASSWORD', key: 'demo.password', kind: 'string' },
];

export interface LoadedConfig {
  config: Config;
  /** Where the settings came from, for the start-up log line. */
  source: string;
}

export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  let file = opts.file;
  if (!file && existsSync(path.join(cwd, 'ccedge.yaml'))) file = path.join(cwd, 'ccedge.yaml');

  const raw: Raw = file ? readYaml(file) : demoConfig();
  const fromEnv = new Map<string, string>();
  for (const { env: name, key, kind } of ENV_KEYS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, key, convertEnv(name, value, kind));
    fromEnv.set(key, name);
  }
  if (raw.site === undefined) raw.site = {};
  const site = raw.site;
  if (site !== null && typeof site === 'object' && !Array.isArray(site) && (site as Raw).deviceId === undefined) {
    (site as Raw).deviceId = hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64) || 'ccedge';
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw configError(parsed.error, file ?? 'embedded demo config', fromEnv);
  const config = parsed.data;
  config.dataDir = path.resolve(cwd, config.dataDir);
  for (const agent of config.agents) if (agent.password === DEMO_PASSWORD_PLACEHOLDER) agent.password = config.demo.password;
  return { config, source: file ?? 'embedded demo config' };
}

function readYaml(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CcedgeError('CONFIG_UNREADABLE', `cannot read config file ${file}: ${(e as Error).message}`, { file });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: 100 });
  } catch (e) {
    throw new CcedgeError('CONFIG_INVALID', `${file}: not valid YAML: ${(e as Error).message}`, { file });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new CcedgeError('CONFIG_INVALID', `${file}: the top level must be a mapping of keys`, { file });
  }
  return doc as Raw;
}

function convertEnv(name: string, value: string, kind: 'string' | 'int' | 'list'): unknown {
  if (kind === 'string') return value;
  if (kind === 'list') return value.split(',').map((s) => s.trim()).filter(Boolean);
  if (!/^\d+$/.test(value)) {
    throw new CcedgeError('CONFIG_INVALID', `${name}: must be a whole number, got "${value}"`, { key: name });
  }
  return Number(value);
}

function configError(error: z.ZodError, source: string, fromEnv: Map<string, string>): CcedgeError {
  const problems = error.issues.map((issue) => {
    const key = issue.path.map(String).join('.') || '(top level)';
    const env = fromEnv.get(key);
    return `${env ? `${env} (${key})` : key}: ${issue.message}`;
  });
  return new CcedgeError('CONFIG_INVALID', `invalid configuration (${source}):\n  ${problems.join('\n  ')}`, {
    keys: error.issues.map((i) => i.path.map(String).join('.')),
  });
}

function ensureObject(raw: Raw, key: string): Raw {
  const v = raw[key];
  if (v === null || typeof v !== 'object' || Array.isArray(v)) raw[key] = {};
  return raw[key] as Raw;
}

function setPath(raw: Raw, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = raw;
  for (const p of parts.slice(0, -1)) node = ensureObject(node, p);
  node[parts[parts.length - 1]] = value;
}
