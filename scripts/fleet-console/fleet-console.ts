/**
 * The fleet console: the cloud side of DESIGN.md "MQTT topics" (ccedge/v1/<site>/<device>/…),
 * small enough for an operator demo and used by the e2e tests as "the cloud".
 */
import { randomUUID } from 'node:crypto';
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt';
import { TOPICS, TOPIC_ID } from '../../sync/topics';

export class FleetConsoleError extends Error {
  constructor(
    readonly code: 'BAD_URL' | 'BAD_ARGS' | 'UNREACHABLE' | 'TIMEOUT',
    message: string,
  ) {
    super(message);
  }
}

export interface FleetConsoleOptions {
  url: string;
  /** Restricts everything to one site; `+` (all sites) when absent. Required for command/pushConfig. */
  site?: string;
  connectTimeoutMs?: number;
}

export interface DeviceInfo {
  site: string;
  device: string;
  online: boolean;
  version?: string;
  bootId?: string;
  startedAt?: string;
  health?: Record<string, unknown>;
}

export interface QueueSnapshot {
  site: string;
  device: string;
  queue: string;
  snapshot: Record<string, unknown>;
}

export interface FleetEvent {
  site: string;
  device: string;
  seq: number;
  type?: string;
  [k: string]: unknown;
}

export interface Gap {
  /** `site/device` */
  device: string;
  from: number;
  to: number;
}

export interface CommandResult {
  id: string;
  ok: boolean;
  error?: string;
  code?: string;
  result?: unknown;
}

export interface ConfigReported {
  version: number;
  appliedAt?: string;
  error?: string;
  [k: string]: unknown;
}

const PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:']);

export function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FleetConsoleError('BAD_URL', `"${url}" is not a URL (expected e.g. mqtt://127.0.0.1:1883)`);
  }
  if (!PROTOCOLS.has(u.protocol)) throw new FleetConsoleError('BAD_URL', `"${url}": unsupported scheme ${u.protocol} (use mqtt:// or mqtts://)`);
  if (!u.hostname) throw new FleetConsoleError('BAD_URL', `"${url}" has no host`);
}

function checkId(what: string, v: string): void {
  if (!TOPIC_ID.test(v)) throw new FleetConsoleError('BAD_ARGS', `${what} "${v}" is not a valid id (letters, digits, _ . - only)`);
}

/** Connects once (no retry): resolves on CONNACK, rejects with UNREACHABLE on error/close/timeout. */
async function connectOnce(url: string, opts: IClientOptions, timeoutMs: number): Promise<MqttClient> {
  checkUrl(url);
  const client = mqttConnect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: timeoutMs, ...opts });
  return new Promise<MqttClient>((resolve, reject) => {
    const fail = (why: string): void => {
      cleanup();
      client.end(true);
      reject(new FleetConsoleError('UNREACHABLE', `cannot connect to broker ${url}: ${why}`));
    };
    const onConnect = (): void => {
      cleanup();
      // Later transient errors must not crash the process (no 'error' listener = throw).
      client.on('error', () => undefined);
      resolve(client);
    };
    const onError = (e: Error): void => fail(e.message || String(e));
    const onClose = (): void => fail('connection closed');
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs + 500);
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    client.once('connect', onConnect);
    client.on('error', onError);
    client.once('close', onClose);
  });
}

/** Splits `ccedge/v1/<site>/<device>/<rest>`. */
function parseTopic(topic: string): { site: string; device: string; rest: string } | undefined {
  const p = topic.split('/');
  if (p.length < 5 || p[0] !== 'ccedge' || p[1] !== 'v1') return undefined;
  return { site: p[2], device: p[3], rest: p.slice(4).join('/') };
}

function parseJson(payload: Buffer): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(payload.toString()) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class FleetConsole {
  private followers: MqttClient[] = [];
  /** Dedup state per `site/device`: seqs seen and the highest one. */
  private readonly seen = new Map<string, { seqs: Set<number>; max: number }>();

  private constructor(
    readonly client: MqttClient,
    private readonly opts: FleetConsoleOptions & { connectTimeoutMs: number },
  ) {}

  static async connect(opts: FleetConsoleOptions): Promise<FleetConsole> {
    if (opts.site !== undefined) checkId('site', opts.site);
    const full = { connectTimeoutMs: 5000, ...opts };
    const client = await connectOnce(opts.url, { clientId: `fleet-console-${randomUUID().slice(0, 8)}`, clean: true }, full.connectTimeoutMs);
    return new FleetConsole(client, full);
  }

  private get site(): string {
    return this.opts.site ?? '+';
  }

  private requireSite(): string {
    if (this.opts.site === undefined) throw new FleetConsoleError('BAD_ARGS', 'this command needs --site');
    return this.opts.site;
  }

  /** Subscribes `filters`, collects messages for `waitMs`, unsubscribes. */
  private async collect(filters: string[], waitMs: number): Promise<Array<{ topic: string; payload: Buffer }>> {
    const got: Array<{ topic: string; payload: Buffer }> = [];
    const on = (topic: string, payload: Buffer): void => {
      if (filters.some((f) => mqttMatch(f, topic))) got.push({ topic, payload });
    };
    this.client.on('message', on);
    try {
      await this.client.subscribeAsync(filters, { qos: 1 });
      await sleep(waitMs);
      await this.client.unsubscribeAsync(filters);
    } finally {
      this.client.off('message', on);
    }
    return got;
  }

  /** Devices from retained `status` (plus `health` if one arrives while waiting). */
  async devices(waitMs = 1000): Promise<DeviceInfo[]> {
    const base = `ccedge/v1/${this.site}/+/`;
    const msgs = await this.collect([`${base}${TOPICS.status}`, `${base}${TOPICS.health}`], waitMs);
    const byKey = new Map<string, DeviceInfo>();
    for (const m of msgs) {
      const t = parseTopic(m.topic);
      const body = parseJson(m.payload);
      if (!t || !body) continue;
      const key = `${t.site}/${t.device}`;
      const d = byKey.get(key) ?? { site: t.site, device: t.device, online: false };
      if (t.rest === TOPICS.status) {
        d.online = body.online === true;
        if (typeof body.version === 'string') d.version = body.version;
        if (typeof body.bootId === 'string') d.bootId = body.bootId;
        if (typeof body.startedAt === 'string') d.startedAt = body.startedAt;
      } else if (t.rest === TOPICS.health) {
        d.health = body;
      }
      byKey.set(key, d);
    }
    return [...byKey.values()].sort((a, b) => `${a.site}/${a.device}`.localeCompare(`${b.site}/${b.device}`));
  }

  /** Retained `queues/<queue>` snapshots. */
  async queues(waitMs = 1000): Promise<QueueSnapshot[]> {
    const msgs = await this.collect([`ccedge/v1/${this.site}/+/queues/#`], waitMs);
    const out: QueueSnapshot[] = [];
    for (const m of msgs) {
      const t = parseTopic(m.topic);
      const body = parseJson(m.payload);
      if (!t || !body || !t.rest.startsWith('queues/')) continue;
      out.push({ site: t.site, device: t.device, queue: t.rest.slice('queues/'.length), snapshot: body });
    }
    return out;
  }

  /**
   * Follows `events` on a persistent MQTT 5 session (clientId fixed per site, clean:false), so
   * events published while the console is away are queued by the broker. Each (device, seq) is
   * delivered once; a jump in a device's seq is reported as a gap (the first event seen from a
   * device only sets the baseline). Resolves once subscribed.
   */
  async followEvents(onEvent: (e: FleetEvent) => void, onGap: (g: Gap) => void = () => undefined): Promise<void> {
    const clientId = `fleet-console-events-${this.opts.site ?? 'all-sites'}`;
    const client = await connectOnce(
      this.opts.url,
      { clientId, clean: false, reconnectPeriod: 1000, properties: { sessionExpiryInterval: 24 * 3600 } },
      this.opts.connectTimeoutMs,
    );
    this.followers.push(client);
    client.on('message', (topic, payload) => {
      const t = parseTopic(topic);
      const body = parseJson(payload);
      if (!t || t.rest !== TOPICS.events || !body || typeof body.seq !== 'number') return;
      const key = `${t.site}/${t.device}`;
      let s = this.seen.get(key);
      if (!s) {
        s = { seqs: new Set(), max: body.seq - 1 };
        this.seen.set(key, s);
      }
      if (s.seqs.has(body.seq)) return; // duplicate (redelivery, or the device re-sent after a lost PUBACK)
      if (body.seq > s.max + 1) onGap({ device: key, from: s.max + 1, to: body.seq - 1 });
      s.seqs.add(body.seq);
      s.max = Math.max(s.max, body.seq);
      onEvent({ ...body, site: t.site, device: t.device, seq: body.seq });
    });
    await client.subscribeAsync(`ccedge/v1/${this.site}/+/${TOPICS.events}`, { qos: 1 });
  }

  /** Publishes `{id, ...args}` on `cmd/<name>` and waits for `cmd-result/<id>`. */
  async command(device: string, name: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<CommandResult> {
    return this.commandAt(this.requireSite(), device, name, args, timeoutMs);
  }

  /** `command` to a device of any site (rollouts span sites). */
  async commandAt(site: string, device: string, name: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<CommandResult> {
    checkId('site', site);
    checkId('device', device);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new FleetConsoleError('BAD_ARGS', `command name "${name}" is not valid in a topic`);
    const id = randomUUID();
    const prefix = `ccedge/v1/${site}/${device}/`;
    const body = await this.request(prefix + TOPICS.cmdResult(id), () => true, prefix + `cmd/${name}`, JSON.stringify({ ...args, id }), false, timeoutMs, `cmd-result/${id}`);
    return body as unknown as CommandResult;
  }

  /** Publishes retained `config/desired {version, config}` and waits for `config/reported` of that version. */
  async pushConfig(device: string, version: number, config: unknown, timeoutMs = 10_000): Promise<ConfigReported> {
    const site = this.requireSite();
    checkId('device', device);
    if (!Number.isInteger(version) || version < 0) throw new FleetConsoleError('BAD_ARGS', `--version must be a non-negative integer`);
    const prefix = `ccedge/v1/${site}/${device}/`;
    const body = await this.request(
      prefix + TOPICS.configReported,
      (b) => b.version === version,
      prefix + TOPICS.configDesired,
      JSON.stringify({ version, config }),
      true,
      timeoutMs,
      `config/reported version ${version}`,
    );
    return body as unknown as ConfigReported;
  }

  /**
   * Waits until a device's (retained) `suffix` topic carries a payload `accept` takes; resolves
   * with it. Retained values that are already there count.
   */
  async waitFor(site: string, device: string, suffix: string, accept: (b: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    checkId('site', site);
    checkId('device', device);
    const topic = `ccedge/v1/${site}/${device}/${suffix}`;
    let on: ((t: string, p: Buffer) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const got = new Promise<Record<string, unknown>>((resolve, reject) => {
      on = (t: string, p: Buffer): void => {
        if (t !== topic) return;
        const b = parseJson(p);
        if (b && accept(b)) resolve(b);
      };
      this.client.on('message', on);
      timer = setTimeout(() => reject(new FleetConsoleError('TIMEOUT', `${site}/${device}: no matching ${suffix} within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      await this.client.subscribeAsync(topic, { qos: 1 });
      return await got;
    } finally {
      clearTimeout(timer);
      if (on) this.client.off('message', on);
      await this.client.unsubscribeAsync(topic).catch(() => undefined);
    }
  }

  private async request(
    replyTopic: string,
    accept: (b: Record<string, unknown>) => boolean,
    topic: string,
    payload: string,
    retain: boolean,
    timeoutMs: number,
    what: string,
  ): Promise<Record<string, unknown>> {
    let on: ((t: string, p: Buffer) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      on = (t: string, p: Buffer): void => {
        if (t !== replyTopic) return;
        const b = parseJson(p);
        if (b && accept(b)) resolve(b);
      };
      this.client.on('message', on);
      timer = setTimeout(() => reject(new FleetConsoleError('TIMEOUT', `no ${what} within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      await this.client.subscribeAsync(replyTopic, { qos: 1 });
      await this.client.publishAsync(topic, payload, { qos: 1, retain });
      return await reply;
    } finally {
      clearTimeout(timer);
      if (on) this.client.off('message', on);
      await this.client.unsubscribeAsync(replyTopic).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.followers.splice(0), this.client].map((c) => c.endAsync(true).catch(() => undefined)));
  }
}

/** MQTT topic filter match (`+` one level, `#` the rest). */
export function mqttMatch(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
