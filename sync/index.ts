import { z } from 'zod';
import { Commands } from './commands';
import { ConfigSync, DEFAULT_MAX_CONFIG_BYTES, type ConfigHooks } from './config-sync';
import { MqttLink, type MqttConfigInput } from './mqtt-link';
import { Outbox, outboxLimitsSchema } from './outbox';
import type { CloudEventData, CloudEventType } from './events';
import { Policy, policyConfigSchema } from './policy';
import { RetainedTopics } from './retained';
import { Sender, type LivePublisher, type SyncStatus } from './sender';
import { SILENT_LOG, type SqlDb, type SqlExec, type SyncLog } from './sql';
import { TOPICS } from './topics';

export { Commands, type CommandResult, type CommandContext } from './commands';
export { ConfigSync, DEFAULT_MAX_CONFIG_BYTES, versionAtEnds, type ConfigHooks, type ConfigReported, type ConfigRefusalCode, type AppliedConfig } from './config-sync';
export { MqttLink, mqttConfigSchema, type MqttConfig, type MqttConfigInput, type PublishOptions } from './mqtt-link';
export { CLOUD_EVENTS, isCloudEventType, type CloudEvent, type CloudEventAppender, type CloudEventData, type CloudEventType } from './events';
export { Outbox, outboxLimitsSchema, type OutboxLimits, type OutboxRow, type OutboxStats } from './outbox';
export { Policy, policyConfigSchema, DEFAULT_EVENT_FIELDS, maskNumber, type PolicyConfig, type FieldKind } from './policy';
export { Sender, type LivePublisher, type SyncStatus } from './sender';
export { RetainedTopics } from './retained';
export { SYNC_DEPTH_TRIGGER_SQL, SYNC_RETAINED_SQL, SYNC_SCHEMA_SQL } from './schema';
export { SyncError, type SyncErrorCode } from './errors';
export { TOPICS, topicPrefix } from './topics';
export type { SqlDb, SqlExec, SyncLog } from './sql';

/** `sync:` block of ccedge.yaml (the `mqtt:` block is `mqttConfigSchema`). */
export const syncConfigSchema = z
  .object({
    outbox: outboxLimitsSchema.prefault({}),
    policy: policyConfigSchema.prefault({}),
    /** Site secret for HMAC'd numbers; default: generated into <dataDir>/keys/sync-hmac.key (resolveSiteSecret). */
    hmacSecret: z.string().min(16).optional(),
    /** Stored command results are kept this long for repeated ids. */
    commandResultsTtlS: z.number().int().min(60).default(7 * 86_400),
    /**
     * Largest `config/desired` payload the device parses (bytes); a larger push is refused unread
     * with `config/reported {version, error, code: CONFIG_TOO_LARGE}`. Default 1 MiB: hundreds of
     * queues, thousands of agents and rules fit; raise it for a config near every list limit at once.
     */
    maxConfigBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(DEFAULT_MAX_CONFIG_BYTES),
  })
  .strict();
export type SyncConfig = z.infer<typeof syncConfigSchema>;
export type SyncConfigInput = z.input<typeof syncConfigSchema>;

export interface SyncServiceOptions<T = unknown> {
  db: SqlDb;
  log?: SyncLog;
  siteId: string;
  deviceId: string;
  version: string;
  bootId: string;
  startedAt: Date;
  mqtt: MqttConfigInput;
  sync?: SyncConfigInput;
  /** Site secret for HMAC'd numbers (policy numbers.mode "hmac"). */
  hmacKey?: Buffer | string;
  /** Full live-state publish after every (re)connect: queue snapshots, agent states. */
  republish?: (publish: LivePublisher) => void | Promise<void>;
  /** `config/desired` handling; without it the device reports every desired config as unsupported. */
  config?: ConfigHooks<T>;
}

/** Outbox, policy, MQTT link, sender, commands and config push, assembled. */
export class SyncService<T = unknown> {
  readonly policy: Policy;
  readonly outbox: Outbox;
  readonly link: MqttLink | undefined;
  readonly sender: Sender;
  readonly commands: Commands;
  readonly config: ConfigSync<T>;
  /** Retained topics we published (`queues/<q>`…), so the gateway can clear those of removed subjects. */
  readonly retained: RetainedTopics;
  readonly settings: SyncConfig;
  private readonly log: SyncLog;

  constructor(opts: SyncServiceOptions<T>) {
    this.log = opts.log ?? SILENT_LOG;
    this.settings = syncConfigSchema.parse(opts.sync ?? {});
    this.policy = new Policy(this.settings.policy, { hmacKey: opts.hmacKey });
    this.outbox = new Outbox(opts.db, { deviceId: opts.deviceId, bootId: opts.bootId, policy: this.policy, limits: this.settings.outbox, log: this.log });
    const birth = (): Record<string, unknown> => ({ version: opts.version, bootId: opts.bootId, startedAt: opts.startedAt.toISOString() });
    const url = opts.mqtt.url;
    this.link = url
      ? new MqttLink({ config: { ...opts.mqtt, url }, siteId: opts.siteId, deviceId: opts.deviceId, birth, subscriptions: [TOPICS.cmdFilter, TOPICS.configDesired], log: this.log })
      : undefined;
    this.sender = new Sender({
      outbox: this.outbox,
      link: this.link,
      log: this.log,
      drainRatePerS: this.link?.config.drainRatePerS,
      maxInflight: this.link?.config.maxInflight,
      republish: opts.republish ? () => opts.republish?.(this.publishLive) : undefined,
    });
    this.retained = new RetainedTopics(opts.db, this.link, this.log);
    this.commands = new Commands(opts.db, { link: this.link, log: this.log, scrub: (r) => this.policy.scrubLive(r) });
    this.config = new ConfigSync<T>(
      opts.db,
      opts.config ?? {
        validate: () => ({ ok: false, error: 'this device does not accept configuration from the cloud' }),
        apply: () => undefined,
      },
      { link: this.link, outbox: this.outbox, log: this.log, maxBytes: this.settings.maxConfigBytes },
    );
    this.link?.on('message', (suffix: string, payload: Buffer) => this.route(suffix, payload));
  }

  /** Checks the tables, prunes old command results, starts the sender (and the connection). */
  async start(): Promise<void> {
    await this.outbox.check();
    await this.commands.prune(this.settings.commandResultsTtlS).catch((err: unknown) => this.log.warn({ err }, 'pruning command results failed'));
    this.sender.start();
  }

  /** Writes an event for the cloud inside the caller's transaction (see Outbox.append). */
  append<T extends CloudEventType>(tx: SqlExec, type: T, data: CloudEventData<T>): Promise<number> {
    return this.outbox.append(tx, type, data);
  }

  /** Live state (retained `queues/<q>` snapshots, `health`): not paced, not queued, through `Policy.scrubLive`. */
  publishLive: LivePublisher = (suffix, payload, opts) => {
    const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : this.policy.scrubLive(payload);
    const sent = this.sender.publishLive(suffix, body, opts);
    // Recorded even when not sent: clearing a topic that holds nothing is harmless, missing one is not.
    const retained = opts === undefined || opts.retain === true; // the sender's default is retained
    if (retained && !(typeof body === 'string' && body === '') && !(Buffer.isBuffer(body) && body.length === 0)) this.retained.note(suffix);
    return sent;
  };

  status(): Promise<SyncStatus> {
    return this.sender.status();
  }

  /** Stops the sender (writing received PUBACKs), then the link (offline status, DISCONNECT). */
  async close(): Promise<void> {
    await this.sender.close();
    await this.link?.close();
  }

  private route(suffix: string, payload: Buffer): void {
    if (suffix.startsWith('cmd/')) {
      void this.commands.onMessage(suffix.slice(4), payload).catch((err: unknown) => this.log.error({ err }, 'command handling failed'));
    } else if (suffix === TOPICS.configDesired) {
      void this.config.onMessage(payload).catch((err: unknown) => this.log.error({ err }, 'config/desired handling failed'));
    }
  }
}
export { explainPolicy, formatOutboxStats } from './cli';
export { resolveSiteSecret } from './site-secret';
