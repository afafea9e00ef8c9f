import type { MqttLink, PublishOptions } from './mqtt-link';
import type { Outbox, OutboxStats } from './outbox';
import { SILENT_LOG, type SyncLog } from './sql';
import { TokenBucket } from './timing';
import { TOPICS } from './topics';

/** What `GET /api/v1/sync` returns (the first three fields are the contract in DESIGN.md). */
export interface SyncStatus {
  connected: boolean;
  outboxDepth: number;
  lastAckedSeq: number;
  lastSeq: number;
  outboxBytes: number;
  droppedTotal: number;
  /** Appends refused since start because their type is not in the event catalogue (sync/events.ts). */
  refusedTotal: number;
  oldestPendingTs: string | null;
  inflight: number;
  configured: boolean;
}

/** Publishes live state (retained snapshots, health) directly, bypassing the outbox; false if offline. */
export type LivePublisher = (suffix: string, payload: unknown, opts?: PublishOptions) => boolean;

export interface SenderOptions {
  outbox: Outbox;
  /** Absent when no broker is configured: events only queue. */
  link?: MqttLink;
  log?: SyncLog;
  drainRatePerS?: number;
  maxInflight?: number;
  /** Called after every (re)connect to publish full live state (queue snapshots, agent states). */
  republish?: (publish: LivePublisher) => void | Promise<void>;
  /** Safety poll for rows appended without a notification (ms). */
  pollMs?: number;
  /** TTL pruning and drop reports (ms). */
  maintenanceMs?: number;
  ackFlushMs?: number;
}

/**
 * Moves outbox rows to `events` in seq order, QoS 1, only while connected; a row is deleted only
 * when its PUBACK arrives. After a reconnect everything unacknowledged is sent again from the
 * lowest pending seq (the cloud deduplicates on (device, seq)). The backlog drains at
 * `drainRatePerS` with at most `maxInflight` PUBACKs outstanding; live publishes are not paced.
 */
export class Sender {
  private readonly log: SyncLog;
  private readonly bucket: TokenBucket;
  private readonly maxInflight: number;
  private readonly inflight = new Set<number>();
  private highestSent = 0;
  private connection = -1;
  private pumping = false;
  private again = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  private acks: number[] = [];
  private ackFlush: Promise<void> = Promise.resolve();
  private closed = false;
  private started = false;
  private readonly onAppended = (): void => this.notify();
  private readonly onConnected = (gen: number): void => this.connected(gen);
  private readonly onDisconnected = (): void => this.disconnected();

  constructor(private readonly opts: SenderOptions) {
    this.log = opts.log ?? SILENT_LOG;
    const rate = opts.drainRatePerS ?? 500;
    this.maxInflight = opts.maxInflight ?? 100;
    this.bucket = new TokenBucket(rate, Math.max(1, Math.min(this.maxInflight, Math.ceil(rate / 10))));
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.opts.outbox.on('appended', this.onAppended);
    this.opts.link?.on('connected', this.onConnected);
    this.opts.link?.on('disconnected', this.onDisconnected);
    this.pollTimer = setInterval(() => this.notify(), this.opts.pollMs ?? 1000);
    this.maintenanceTimer = setInterval(() => void this.maintain(), this.opts.maintenanceMs ?? 60_000);
    void this.maintain();
    this.opts.link?.start();
    if (this.opts.link?.connected) this.connected(this.opts.link.connection);
  }

  /** Wakes the drain (the outbox does this itself on append). */
  notify(): void {
    if (!this.closed && this.opts.link?.connected) void this.pump();
  }

  publishLive: LivePublisher = (suffix, payload, opts = { qos: 1, retain: true }) => {
    const link = this.opts.link;
    if (!link) return false;
    const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
    return link.publish(suffix, body, opts, (err) => {
      if (err) this.log.warn({ err, suffix }, 'live publish not acknowledged');
    });
  };

  async status(): Promise<SyncStatus> {
    const s: OutboxStats = await this.opts.outbox.stats();
    return {
      connected: this.opts.link?.connected ?? false,
      outboxDepth: s.depth,
      lastAckedSeq: s.lastAckedSeq,
      lastSeq: s.lastSeq,
      outboxBytes: s.bytes,
      droppedTotal: s.droppedTotal,
      refusedTotal: this.opts.outbox.refusedTotal,
      oldestPendingTs: s.oldestTs,
      inflight: this.inflight.size,
      configured: !!this.opts.link,
    };
  }

  /** Stops draining and writes the acknowledgements received so far (the link is closed by its owner). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pollTimer);
    clearInterval(this.maintenanceTimer);
    clearTimeout(this.wakeTimer);
    clearTimeout(this.ackTimer);
    this.opts.outbox.off('appended', this.onAppended);
    this.opts.link?.off('connected', this.onConnected);
    this.opts.link?.off('disconnected', this.onDisconnected);
    await this.flushAcks();
  }

  private connected(gen: number): void {
    if (this.closed) return;
    this.connection = gen;
    this.inflight.clear();
    this.highestSent = 0; // resend everything still in the outbox, from its lowest seq
    const hook = this.opts.republish;
    if (hook) {
      Promise.resolve()
        .then(() => hook(this.publishLive))
        .catch((err: unknown) => this.log.error({ err }, 'state republish after connect failed'));
    }
    void this.flushAcks();
    void this.maintain();
    void this.pump();
  }

  private disconnected(): void {
    this.inflight.clear();
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
  }

  private async maintain(): Promise<void> {
    if (this.closed) return;
    try {
      const pruned = await this.opts.outbox.prune();
      if (pruned > 0) this.log.warn({ pruned, ttlS: this.opts.outbox.limits.ttlS }, 'outbox rows older than the TTL dropped');
      if (this.opts.link?.connected) await this.opts.outbox.reportDrops();
    } catch (err) {
      if (!this.closed) this.log.error({ err }, 'outbox maintenance failed');
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        await this.pumpOnce();
      } while (this.again && !this.closed);
    } catch (err) {
      if (!this.closed) this.log.error({ err }, 'outbox drain failed');
    } finally {
      this.pumping = false;
    }
  }

  private async pumpOnce(): Promise<void> {
    const link = this.opts.link;
    while (!this.closed && link?.connected && link.connection === this.connection) {
      const room = this.maxInflight - this.inflight.size;
      if (room <= 0) return; // a PUBACK wakes us
      const wait = this.bucket.msUntilNext();
      if (wait > 0) {
        this.wakeTimer ??= setTimeout(() => {
          this.wakeTimer = undefined;
          void this.pump();
        }, wait);
        return;
      }
      const gen = this.connection;
      const after = this.highestSent;
      await this.ackFlush; // never resend a row whose deletion is being written
      const rows = await this.opts.outbox.pending(Math.min(room, this.bucket.burst), after);
      // A reconnect while we read restarts from the lowest pending seq: these rows may skip some.
      if (gen !== this.connection || after !== this.highestSent) continue;
      if (rows.length === 0) return;
      if (!link.connected || link.connection !== gen) return;
      const n = this.bucket.take(rows.length);
      for (const row of rows.slice(0, n)) {
        this.inflight.add(row.seq);
        this.highestSent = row.seq;
        const sent = link.publish(TOPICS.events, row.payload, { qos: 1 }, (err) => this.onPuback(gen, row.seq, err));
        if (!sent) {
          this.inflight.delete(row.seq);
          return;
        }
      }
    }
  }

  private onPuback(gen: number, seq: number, err: Error | undefined): void {
    if (gen !== this.connection) return; // a PUBACK of an earlier connection: the row is resent anyway
    this.inflight.delete(seq);
    if (err) {
      this.log.warn({ err: { message: err.message }, seq }, 'event publish not acknowledged; it stays in the outbox');
    } else {
      this.acks.push(seq);
      if (this.acks.length >= 500) void this.flushAcks();
      else this.ackTimer ??= setTimeout(() => void this.flushAcks(), this.opts.ackFlushMs ?? 10);
    }
    void this.pump();
  }

  private flushAcks(): Promise<void> {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.acks.length === 0) return this.ackFlush;
    const batch = this.acks;
    this.acks = [];
    this.ackFlush = this.ackFlush
      .then(() => this.opts.outbox.ack(batch))
      .then(
        () => undefined,
        (err: unknown) => this.log.error({ err, rows: batch.length }, 'could not delete acknowledged outbox rows; they will be sent again'),
      );
    return this.ackFlush;
  }
}
