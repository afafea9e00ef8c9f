import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { z } from 'zod';
import { SyncError } from './errors';
import { SILENT_LOG, type SyncLog } from './sql';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './timing';
import { TOPICS, topicPrefix } from './topics';

export const mqttConfigSchema = z
  .object({
    /** Broker URL (`mqtt://`, `mqtts://`); unset: no connection, events queue in the outbox. */
    url: z.string().regex(/^mqtts?:\/\//, 'must start with mqtt:// or mqtts://').optional(),
    /** MQTT client id; default `ccedge-<site>-<device>`. */
    clientId: z.string().min(1).max(128).optional(),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** mqtts: per-device client certificate, its key, and the CA that signed the broker's certificate. */
    tls: z
      .object({
        caFile: z.string().min(1).optional(),
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
        /** Name checked against the broker's certificate when it differs from the URL's host. */
        servername: z.string().min(1).optional(),
        rejectUnauthorized: z.boolean().default(true),
      })
      .strict()
      .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), { message: 'certFile and keyFile go together' })
      .optional(),
    keepaliveS: z.number().int().min(5).max(3600).default(30),
    /** MQTT 5 session expiry: subscriptions and QoS 1 commands are kept this long while we are away. */
    sessionExpiryS: z.number().int().min(0).max(4_294_967_295).default(7 * 86_400),
    connectTimeoutMs: z.number().int().min(1000).max(120_000).default(15_000),
    backoff: z
      .object({
        minMs: z.number().int().min(10).default(DEFAULT_BACKOFF.minMs),
        maxMs: z.number().int().min(10).default(DEFAULT_BACKOFF.maxMs),
        factor: z.number().min(1).max(10).default(DEFAULT_BACKOFF.factor),
        jitter: z.number().min(0).max(1).default(DEFAULT_BACKOFF.jitter),
        stableMs: z.number().int().min(0).default(DEFAULT_BACKOFF.stableMs),
      })
      .strict()
      .prefault({}),
    /** Backlog drain rate (outbox events/s) and PUBACKs awaited at once. */
    drainRatePerS: z.number().min(1).max(100_000).default(500),
    maxInflight: z.number().int().min(1).max(65_000).default(100),
  })
  .strict();
export type MqttConfig = z.infer<typeof mqttConfigSchema>;
export type MqttConfigInput = z.input<typeof mqttConfigSchema>;

export interface PublishOptions {
  qos: 0 | 1;
  retain?: boolean;
}

export interface MqttLinkOptions {
  config: MqttConfigInput & { url: string };
  siteId: string;
  deviceId: string;
  /** The birth `status` payload, published retained on every connect (`online: true` is added). */
  birth: () => Record<string, unknown>;
  /** Topic suffixes (under the device prefix) subscribed on every connect. */
  subscriptions?: string[];
  log?: SyncLog;
}

/**
 * One MQTT 5 connection to the cloud broker, kept up with our own capped exponential backoff with
 * jitter (mqtt.js's reconnect is off: each attempt is a fresh client, so nothing published while
 * offline can sit in mqtt.js's memory and nothing is resent behind our back).
 *
 * Events: `connected` (after CONNACK; birth published and subscriptions sent), `disconnected`,
 * `message` (suffix, payload Buffer).
 */
export class MqttLink extends EventEmitter {
  readonly prefix: string;
  readonly config: MqttConfig & { url: string };
  private client: MqttClient | undefined;
  private generation = 0;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private up = false;
  private readonly log: SyncLog;

  constructor(private readonly opts: MqttLinkOptions) {
    super();
    const parsed = mqttConfigSchema.safeParse(opts.config);
    if (!parsed.success || !parsed.data.url) {
      throw new SyncError('SYNC_CONFIG_INVALID', `mqtt config: ${parsed.success ? 'url is required' : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    this.config = parsed.data as MqttConfig & { url: string };
    this.prefix = topicPrefix(opts.siteId, opts.deviceId);
    this.log = opts.log ?? SILENT_LOG;
  }

  get connected(): boolean {
    return this.up && !!this.client?.connected;
  }

  /** Increases on every successful connect; publish callbacks of an older connection are stale. */
  get connection(): number {
    return this.generation;
  }

  get clientId(): string {
    return this.config.clientId ?? `ccedge-${this.opts.siteId}-${this.opts.deviceId}`;
  }

  topic(suffix: string): string {
    return this.prefix + suffix;
  }

  start(): void {
    if (this.closed || this.client) return;
    this.connectOnce();
  }

  /**
   * Publishes now if connected; returns false (and publishes nothing) otherwise. `done` gets the
   * PUBACK (QoS 1) or the write (QoS 0); it is never called if the connection is lost first.
   */
  publish(suffix: string, payload: string | Buffer, opts: PublishOptions, done?: (err?: Error) => void): boolean {
    const client = this.client;
    if (!client || !this.connected) return false;
    client.publish(this.topic(suffix), payload, { qos: opts.qos, retain: opts.retain ?? false }, (err) => done?.(err ?? undefined));
    return true;
  }

  /** Like `publish`, as a promise that rejects with SYNC_NOT_CONNECTED or the broker's error. */
  publishAsync(suffix: string, payload: string | Buffer, opts: PublishOptions, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const gen = this.generation;
      const timer = setTimeout(() => reject(new SyncError('SYNC_NOT_CONNECTED', `no PUBACK within ${timeoutMs} ms`)), timeoutMs);
      const onDown = (): void => {
        clearTimeout(timer);
        reject(new SyncError('SYNC_NOT_CONNECTED', 'connection lost before PUBACK'));
      };
      this.once('disconnected', onDown);
      const ok = this.publish(suffix, payload, opts, (err) => {
        clearTimeout(timer);
        this.off('disconnected', onDown);
        if (err) reject(err);
        else if (gen !== this.generation) reject(new SyncError('SYNC_NOT_CONNECTED', 'connection lost before PUBACK'));
        else resolve();
      });
      if (!ok) {
        clearTimeout(timer);
        this.off('disconnected', onDown);
        reject(new SyncError('SYNC_NOT_CONNECTED', 'not connected to the broker'));
      }
    });
  }

  /** Graceful stop: retained `status {online:false}`, DISCONNECT (no LWT), no reconnect. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.stableTimer);
    const client = this.client;
    if (!client) return;
    if (this.connected) {
      await this.publishAsync(TOPICS.status, JSON.stringify({ ...this.opts.birth(), online: false }), { qos: 1, retain: true }, 2000).catch((err: unknown) =>
        this.log.warn({ err }, 'could not publish offline status'),
      );
    }
    this.client = undefined;
    this.markDown();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        client.end(true);
        resolve();
      }, 2000);
      client.end(false, {}, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * Drops the TCP connection without DISCONNECT, as a crash would (the broker publishes the LWT).
   * The link then reconnects with backoff, unless `thenStop`.
   */
  dropConnection(thenStop = false): void {
    if (thenStop) {
      this.closed = true;
      clearTimeout(this.reconnectTimer);
    }
    this.client?.stream.destroy();
  }

  private connectOnce(): void {
    const c = this.config;
    const status = this.topic(TOPICS.status);
    const options: IClientOptions = {
      clientId: this.clientId,
      protocolVersion: 5,
      clean: false,
      reconnectPeriod: 0,
      connectTimeout: c.connectTimeoutMs,
      keepalive: c.keepaliveS,
      queueQoSZero: false,
      resubscribe: false,
      properties: { sessionExpiryInterval: c.sessionExpiryS },
      will: { topic: status, payload: Buffer.from(JSON.stringify({ ...this.opts.birth(), online: false })), qos: 1, retain: true },
      ...(c.username !== undefined ? { username: c.username } : {}),
      ...(c.password !== undefined ? { password: c.password } : {}),
    };
    try {
      if (c.tls) {
        // Read on every attempt, so a renewed device certificate is used on the next connect.
        if (c.tls.caFile) options.ca = readFileSync(c.tls.caFile);
        if (c.tls.certFile) options.cert = readFileSync(c.tls.certFile);
        if (c.tls.keyFile) options.key = readFileSync(c.tls.keyFile);
        if (c.tls.servername) options.servername = c.tls.servername;
        options.rejectUnauthorized = c.tls.rejectUnauthorized;
      }
    } catch (err) {
      this.log.error({ err, code: 'SYNC_CONFIG_INVALID' }, 'cannot read MQTT TLS files; retrying later');
      this.scheduleReconnect();
      return;
    }
    this.log.debug({ url: c.url, clientId: this.clientId, attempt: this.attempt }, 'connecting to MQTT broker');
    const client = connect(c.url, options);
    this.client = client;
    client.on('connect', (connack) => {
      if (this.client !== client) return;
      this.generation++;
      this.up = true;
      clearTimeout(this.stableTimer);
      this.stableTimer = setTimeout(() => (this.attempt = 0), c.backoff.stableMs);
      this.log.info({ url: c.url, clientId: this.clientId, sessionPresent: connack.sessionPresent, connection: this.generation }, 'connected to MQTT broker');
      client.publish(status, JSON.stringify({ ...this.opts.birth(), online: true }), { qos: 1, retain: true }, (err) => {
        if (err) this.log.warn({ err }, 'birth status not acknowledged');
      });
      const subs = this.opts.subscriptions ?? [];
      if (subs.length > 0) {
        client.subscribe(
          subs.map((s) => this.topic(s)),
          { qos: 1 },
          (err, granted) => {
            if (err) this.log.error({ err }, 'MQTT subscribe failed');
            else if (granted?.some((g) => g.qos > 1)) this.log.error({ granted }, 'MQTT subscription refused by the broker');
          },
        );
      }
      this.emit('connected', this.generation);
    });
    client.on('message', (topic, payload) => {
      if (this.client !== client || !topic.startsWith(this.prefix)) return;
      this.emit('message', topic.slice(this.prefix.length), payload);
    });
    client.on('disconnect', (packet) => {
      this.log.warn({ reasonCode: packet.reasonCode, reason: packet.properties?.reasonString }, 'broker disconnected us');
    });
    client.on('error', (err) => {
      if (this.client === client) this.log.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, 'MQTT connection error');
    });
    client.on('close', () => {
      if (this.client !== client) return;
      this.client = undefined;
      this.markDown();
      client.end(true);
      if (!this.closed) this.scheduleReconnect();
    });
  }

  private markDown(): void {
    clearTimeout(this.stableTimer);
    if (!this.up) return;
    this.up = false;
    this.log.warn({ connection: this.generation }, 'disconnected from MQTT broker');
    this.emit('disconnected', this.generation);
  }

  private scheduleReconnect(): void {
    clearTimeout(this.reconnectTimer);
    const delay = backoffDelay(this.attempt, this.config.backoff);
    this.attempt++;
    this.log.debug({ delayMs: delay, attempt: this.attempt }, 'MQTT reconnect scheduled');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed && !this.client) this.connectOnce();
    }, delay);
  }
}
