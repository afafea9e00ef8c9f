import { isDeepStrictEqual } from 'node:util';
import { configSchema, type Config } from './schema';

/**
 * Sections the cloud may change while the daemon runs (`config/desired`). Everything else (SIP and
 * HTTP listeners, data dir, broker, trunks, …) needs a restart and is refused from the cloud when
 * it differs from the running value. `agents` and `queues` are applied as live people data
 * (gateway/people/): a pushed agent carries a passwordHash, never a clear password.
 */
export const HOT_KEYS = ['queues', 'agents', 'intents', 'routing', 'vipCallers', 'recording', 'calls'] as const;
export type HotKey = (typeof HOT_KEYS)[number];

export type DesiredCheck = { ok: true; value: Config } | { ok: false; error: string };

/**
 * Cheap bounds on a pushed config's raw shape, checked in one walk before the schema runs. The
 * schema's own limits (ACD_LIMITS, ROUTING_LIMITS, IVR_LIMITS, CONFIG_LIMITS) are the real ones,
 * but zod parses every element of a list before it checks the list's length: 100,000 queues cost
 * ~200 ms of event loop to be told "at most 500". No section's limit is above `entries`.
 */
export const RAW_SHAPE_LIMITS = {
  /** Entries of any one array or object (the largest list limit is vipCallers, 10,000). */
  entries: 10_000,
  /** Nesting depth (config files are a handful of levels deep). */
  depth: 16,
} as const;

/** The first bound `value` breaks, as `path: reason`, or undefined. */
export function rawShapeProblem(value: unknown, limits: { entries: number; depth: number } = RAW_SHAPE_LIMITS): string | undefined {
  const walk = (v: unknown, path: string[]): string | undefined => {
    if (v === null || typeof v !== 'object') return undefined;
    const where = path.join('.') || '(root)';
    if (path.length > limits.depth) return `${where}: nested deeper than ${limits.depth} levels`;
    const entries = Array.isArray(v) ? v.length : Object.keys(v).length;
    if (entries > limits.entries) return `${where}: ${entries} entries, at most ${limits.entries} per list`;
    const children: Array<[string, unknown]> = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
    for (const [k, child] of children) {
      const problem = walk(child, [...path, k]);
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
  return walk(value, []);
}

/**
 * Validates a desired config from the cloud: an object in the config file's format whose sections
 * replace the base (file + environment) config's; the merged whole must pass the same schema as a
 * config file (cross-checks included: queues named by agents, intents, recording policy…).
 */
export function checkDesiredConfig(base: Config, desired: unknown): DesiredCheck {
  if (desired === null || typeof desired !== 'object' || Array.isArray(desired)) return { ok: false, error: 'config must be an object of config-file sections' };
  const overlay = desired as Record<string, unknown>;
  const known = new Set(Object.keys(configSchema.shape));
  const unknown = Object.keys(overlay).filter((k) => !known.has(k));
  if (unknown.length) return { ok: false, error: `unknown config section(s): ${unknown.join(', ')}` };
  const shape = rawShapeProblem(overlay);
  if (shape !== undefined) return { ok: false, error: shape };
  const clear = clearPasswordProblem(overlay.agents);
  if (clear !== undefined) return { ok: false, error: clear };
  const parsed = configSchema.safeParse({ ...structuredClone(base), ...structuredClone(overlay) });
  if (!parsed.success) {
    return { ok: false, error: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  }
  const next = parsed.data;
  next.dataDir = base.dataDir;
  const coldChanges = (Object.keys(overlay) as Array<keyof Config>).filter((k) => !(HOT_KEYS as readonly string[]).includes(k) && !isDeepStrictEqual(next[k], base[k]));
  if (coldChanges.length) return { ok: false, error: `section(s) ${coldChanges.join(', ')} cannot change while running (restart with a new config file)` };
  return { ok: true, value: next };
}

/**
 * Puts the hot sections of `next` into the running config object in one synchronous step, so
 * every component that reads the shared config sees the new sections from the next call on;
 * calls already routed keep their queue.
 */
export function assignHotSections(running: Config, next: Config): void {
  for (const key of HOT_KEYS) (running as Record<HotKey, unknown>)[key] = next[key];
}

/** A pushed `agents` list with a clear password in it: refused, never hashed on the box. */
export function clearPasswordProblem(agents: unknown): string | undefined {
  if (!Array.isArray(agents)) return undefined;
  const bad = agents.map((a: unknown, i) => (a !== null && typeof a === 'object' && 'password' in a ? i : -1)).filter((i) => i >= 0);
  if (bad.length === 0) return undefined;
  return `agents.${bad.join(', agents.')}: a pushed agent never carries a clear password (send passwordHash)`;
}
