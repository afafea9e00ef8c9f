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

export interface ConfigReported {
  version: number;
  appliedAt?: string;
  error?: string;
}

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
    private readonly opts: { link?: MqttLink; outbox?: Outbox; log?: SyncLog; now?: () => Date } = {},
  ) {
    this.log = opts.log ?? SILENT_LOG;
  }

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
    const text = Buffer.isBuffer(payload) ? payload.toString('utf8') : payload;
    if (text.length === 0) return undefined; // retained message cleared by the cloud
    let desired: z.infer<typeof desiredSchema>;
    try {
      const parsed = desiredSchema.safeParse(JSON.parse(text));
      if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
      desired = parsed.data;
    } catch (e) {
      this.log.warn({ code: 'CONFIG_INVALID', err: { message: (e as Error).message } }, 'config/desired is malformed; ignored');
      const version = safeVersion(text);
      return version === undefined ? undefined : this.report({ version, error: `malformed config/desired: ${(e as Error).message}` });
    }
    const current = await this.applied();
    if (current && desired.version < current.version) {
      this.log.info({ version: desired.version, applied: current.version }, 'config/desired older than the applied config; ignored');
      return undefined;
    }
    if (current && desired.version === current.version) return this.report({ version: current.version, appliedAt: current.appliedAt });
    let checked: ReturnType<ConfigHooks<T>['validate']>;
    try {
      checked = this.hooks.validate(desired.config);
    } catch (e) {
      checked = { ok: false, error: (e as Error).message };
    }
    if (!checked.ok) {
      this.log.warn({ code: 'CONFIG_INVALID', version: desired.version, error: checked.error }, 'config from the cloud rejected; previous config keeps running');
      return this.report({ version: desired.version, error: checked.error });
    }
    try {
      await this.hooks.apply(checked.value, desired.version);
    } catch (e) {
      this.log.error({ code: 'CONFIG_INVALID', version: desired.version, err: { message: (e as Error).message } }, 'config from the cloud could not be applied; previous config keeps running');
      return this.report({ version: desired.version, error: `apply failed: ${(e as Error).message}` });
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

  private report(r: ConfigReported): ConfigReported {
    const sent = this.opts.link?.publish(TOPICS.configReported, JSON.stringify(r), { qos: 1, retain: true }, (err) => {
      if (err) this.log.warn({ err }, 'config/reported not acknowledged');
    });
    if (this.opts.link && !sent) this.log.warn({ version: r.version }, 'config/reported not sent (offline); reported again when config/desired is redelivered');
    return r;
  }
}

function safeVersion(text: string): number | undefined {
  try {
    const v = (JSON.parse(text) as { version?: unknown }).version;
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? v : undefined;
  } catch {
    return undefined;
  }
}
