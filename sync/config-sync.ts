import { z } from 'zod';
import type { MqttLink } from './mqtt-link';
import type { Outbox } from './outbox';
import { SILENT_LOG, type SqlDb, type SyncLog } from './sql';
import { TOPICS } from './topics';

export interface ConfigHooks<T = unknown> {
  /** Validates the whole desired config; a message per problem on failure. */
  validate(config: unknown): { ok: true; value: T } | { ok: false; error: string };
  /** Applies a validated config atomically (calls in progress keep their routing); throws to refuse. */
  apply(value: T, version: number): void | Promise<void>;
}

/** Why a desired config was refused: too large to parse, or not valid / not applicable. */
export type ConfigRefusalCode = 'CONFIG_TOO_LARGE' | 'CONFIG_INVALID';

export interface ConfigReported {
  version: number;
  appliedAt?: string;
  error?: string;
  /** Set with `error`: a stable code the cloud can match on (the message is for people). */
  code?: ConfigRefusalCode;
}

/** Default bound on a `config/desired` payload (sync.maxConfigBytes). */
export const DEFAULT_MAX_CONFIG_BYTES = 1024 * 1024;

export interface AppliedConfig {
  version: number;
  appliedAt: string;
  config: unknown;
}

const desiredSchema = z.object({ version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), config: z.unknown() }).strict();

/**
 * Retained `config/desired {version, config}` from the cloud: validated by the gateway's hook,
 * applied by its hook, stored (`sync_config`) with the version, reported retained on
 * `config/reported` `{version, appliedAt}` or `{version, error}`. On error the previous config keeps
 * running. A version older than the applied one is ignored; the same version is not applied twice
 * (its report is repeated). Desired: cloud wins; reported: device wins.
 */
export class ConfigSync<T = unknown> {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly log: SyncLog;

  constructor(
    private readonly db: SqlDb,
    private readonly hooks: ConfigHooks<T>,
    private readonly opts: { link?: MqttLink; outbox?: Outbox; log?: SyncLog; now?: () => Date; maxBytes?: number } = {},
  ) {
    this.log = opts.log ?? SILENT_LOG;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_CONFIG_BYTES;
  }

  /** Largest `config/desired` payload parsed; a larger one is refused unread (CONFIG_TOO_LARGE). */
  readonly maxBytes: number;
  /**
   * The last refused push (version, size, reason). The retained desired config is redelivered on
   * every reconnect: the same refusal is reported again but not logged again, and not re-checked.
   */
  private lastRefused: { version: number; bytes: number; error: string; code: ConfigRefusalCode } | undefined;

  /** The config last applied from the cloud (the gateway runs it at start instead of the file's). */
  async applied(): Promise<AppliedConfig | undefined> {
    const row = await this.db.transaction((tx) => tx.get<{ version: number; applied_at: string; config: string }>('SELECT version, applied_at, config FROM sync_config WHERE id = 1'));
    return row ? { version: row.version, appliedAt: row.applied_at, config: JSON.parse(row.config) as unknown } : undefined;
  }

  /** Handles one `config/desired` message (serialised); resolves with what was reported (undefined: ignored). */
  onMessage(payload: Buffer | string): Promise<ConfigReported | undefined> {
    const next = this.chain.then(() => this.handle(payload));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async handle(payload: Buffer | string): Promise<ConfigReported | undefined> {
    const bytes = Buffer.isBuffer(payload) ? payload.length : Buffer.byteLength(payload);
    if (bytes === 0) return undefined; // retained message cleared by the cloud
    if (bytes > this.maxBytes) {
      // Refused before it is decoded or parsed: JSON.parse and the schema walk of a huge document
      // are what stalled the event loop. Its version is read from the ends of the text only.
      const version = versionAtEnds(payload);
      const error = `config/desired is ${bytes} bytes, more than the ${this.maxBytes} allowed (sync.maxConfigBytes)`;
      return this.refuse(version, bytes, error, 'CONFIG_TOO_LARGE');
    }
    const text = Buffer.isBuffer(payload) ? payload.toString('utf8') : payload;
    let desired: z.infer<typeof desiredSchema>;
    try {
      const parsed = desiredSchema.safeParse(JSON.parse(text));
      if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
      desired = parsed.data;
    } catch (e) {
      return this.refuse(safeVersion(text) ?? versionAtEnds(payload), bytes, `malformed config/desired: ${(e as Error).message}`, 'CONFIG_INVALID');
    }
    const current = await this.applied();
    if (current && desired.version < current.version) {
      this.log.info({ version: desired.version, applied: current.version }, 'config/desired older than the applied config; ignored');
      return undefined;
    }
    if (current && desired.version === current.version) return this.report({ version: current.version, appliedAt: current.appliedAt });
    const refused = this.lastRefused;
    if (refused && refused.version === desired.version && refused.bytes === bytes) return this.report({ version: refused.version, error: refused.error, code: refused.code });
    let checked: ReturnType<ConfigHooks<T>['validate']>;
    try {
      checked = this.hooks.validate(desired.config);
    } catch (e) {
      checked = { ok: false, error: (e as Error).message };
    }
    if (!checked.ok) return this.refuse(desired.version, bytes, checked.error, 'CONFIG_INVALID');
    try {
      await this.hooks.apply(checked.value, desired.version);
    } catch (e) {
      this.log.error({ code: 'CONFIG_INVALID', version: desired.version, err: { message: (e as Error).message } }, 'config from the cloud could not be applied; previous config keeps running');
      return this.report({ version: desired.version, error: `apply failed: ${(e as Error).message}`, code: 'CONFIG_INVALID' });
    }
    const appliedAt = (this.opts.now?.() ?? new Date()).toISOString();
    await this.db.transaction(async (tx) => {
      await tx.run('INSERT INTO sync_config (id, version, applied_at, config) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at, config = excluded.config', [
        desired.version,
        appliedAt,
        JSON.stringify(desired.config),
      ]);
      if (this.opts.outbox) await this.opts.outbox.append(tx, 'config.applied', { version: desired.version, appliedAt });
    });
    this.log.info({ version: desired.version }, 'config from the cloud applied');
    return this.report({ version: desired.version, appliedAt });
  }

  /**
   * Reports a refusal (the previous config keeps running) and logs it once: the same refusal of the
   * same push, redelivered, is reported again without a new log line. Without a version there is
   * nothing the cloud could match the report to: logged only.
   */
  private refuse(version: number | undefined, bytes: number, error: string, code: ConfigRefusalCode): ConfigReported | undefined {
    const last = this.lastRefused;
    const repeat = last !== undefined && last.version === version && last.bytes === bytes && last.error === error;
    if (!repeat) {
      // The reason is cut for the log line: a schema refusal can list many issues.
      this.log.warn({ code, version, bytes, error: error.length > 2000 ? `${error.slice(0, 2000)}…` : error }, 'config from the cloud refused; previous config keeps running');
    }
    if (version === undefined) return undefined;
    this.lastRefused = { version, bytes, error, code };
    return this.report({ version, error, code });
  }

  private report(r: ConfigReported): ConfigReported {
    const sent = this.opts.link?.publish(TOPICS.configReported, JSON.stringify(r), { qos: 1, retain: true }, (err) => {
      if (err) this.log.warn({ err }, 'config/reported not acknowledged');
    });
    if (this.opts.link && !sent) this.log.warn({ version: r.version }, 'config/reported not sent (offline); reported again when config/desired is redelivered');
    return r;
  }
}

/**
 * The top-level `version` of an oversized payload without parsing it: `{"version":N,` at the start
 * or `,"version":N}` at the end (where JSON.stringify of `{version, config}` / `{config, version}`
 * puts it). Only the first and last 64 bytes are looked at; anything else: undefined.
 */
export function versionAtEnds(payload: Buffer | string): number | undefined {
  const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const head = buf.subarray(0, 64).toString('latin1');
  const tail = buf.subarray(Math.max(0, buf.length - 64)).toString('latin1');
  const m = /^\s*\{\s*"version"\s*:\s*(\d{1,16})\s*[,}]/.exec(head) ?? /,\s*"version"\s*:\s*(\d{1,16})\s*\}\s*$/.exec(tail);
  if (!m) return undefined;
  const v = Number(m[1]);
  return Number.isSafeInteger(v) && v >= 1 ? v : undefined;
}

function safeVersion(text: string): number | undefined {
  try {
    const v = (JSON.parse(text) as { version?: unknown }).version;
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? v : undefined;
  } catch {
    return undefined;
  }
}
