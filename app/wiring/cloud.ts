import { randomUUID } from 'node:crypto';
import type { Acd } from '../../gateway/acd/acd';
import { registerCloudCommands } from '../../gateway/cloud-commands';
import { assignHotSections, checkDesiredConfig } from '../../gateway/config/live-config';
import type { Config } from '../../gateway/config/schema';
import type { KpiService } from '../../gateway/kpi/kpi-service';
import type { Logger } from '../../gateway/logging';
import { assignPeople } from '../../gateway/people/people-service';
import type { People } from '../../gateway/people/people-edit';
import type { Db } from '../../gateway/store/db';
import { VERSION } from '../../gateway/version';
import { registerUpdateCommands, type UpdateCommands } from '../../image/update-cloud';
import { resolveSiteSecret, SyncService, type CloudEvent } from '../../sync';
import type { Vault } from '../../vault';
import type { Closer } from '../lifecycle';

export interface CloudWiring {
  /** The running config, which every part shares (a push from the cloud changes its hot sections). */
  config: Config;
  /** The config file's config: pushes are checked against it with the live people in place (desired: cloud wins). */
  fileConfig: Config;
  db: Db;
  log: Logger;
  closer: Closer;
  /** The agents and queues changed live: newer than a push, so they stay when the last push runs again. */
  storedPeople: People | undefined;
}

/**
 * The cloud link's callbacks into parts built after it. The link opens early (call records, the
 * vault's audit anchoring, KPI snapshots, hardware and backup events go out through it), but its
 * republish-after-connect and config-apply hooks need the KPI service, the update commands and the
 * routing, which are built later in the start. Each is set once during the start, before
 * `sync.start()` connects; until then a republish skips what is not there and a push is refused.
 */
export interface CloudLateBound {
  kpi: KpiService | undefined;
  updates: UpdateCommands | undefined;
  applyPushed: ((next: Config) => Promise<void>) | undefined;
}

export interface CloudLink {
  sync: SyncService<Config>;
  /** This run's id (the cloud tells restarts apart by it). */
  bootId: string;
  late: CloudLateBound;
  /**
   * An event with no call behind it (queue, recording, hardware, backup, certificate) in its own
   * transaction; a failed write is logged, never thrown at the part that raised it.
   */
  writeEvent(event: CloudEvent, what: string): void;
  /** Sends the audit log's head to the cloud (the vault's off-site anchor). */
  anchorAuditHead(head: { seq: number; hash: string }): Promise<void>;
  /** The retained `queues/<q>` topics that may exist: those of the running config's queues. */
  queueTopics(): Set<string>;
  /** Clears the retained snapshots of queues that are gone (logged, never thrown). */
  pruneQueueTopics(): void;
}

/**
 * The cloud link (sync/): outbox, MQTT, retained state, cloud commands and config pushes. The last
 * config the cloud pushed runs again here, before anything reads the config, unless it no longer
 * fits the file's. The link connects later (`sync.start()`), when everything it calls back exists.
 */
export async function openCloudLink(w: CloudWiring): Promise<CloudLink> {
  const { config, fileConfig, db, log, closer } = w;
  const bootId = randomUUID();
  const late: CloudLateBound = { kpi: undefined, updates: undefined, applyPushed: undefined };
  // Pushes are checked against the file's config with the live people in place.
  const pushBase = (): Config => ({ ...fileConfig, agents: config.agents, queues: config.queues });
  const queueTopics = (): Set<string> => new Set(config.queues.map((q) => `queues/${q.name}`));
  const pruneQueueTopics = (): void => {
    sync.retained.prune('queues/', queueTopics()).catch((err: unknown) => log.warn({ err }, 'clearing retained snapshots of removed queues failed'));
  };
  const sync = new SyncService<Config>({
    db,
    log: log.child({ component: 'sync' }),
    siteId: config.site.id,
    deviceId: config.site.deviceId,
    version: VERSION,
    bootId,
    startedAt: new Date(),
    mqtt: config.mqtt,
    sync: config.sync,
    hmacKey: config.sync.policy.numbers.mode === 'hmac' ? resolveSiteSecret(config.dataDir, config.sync.hmacSecret).key : undefined,
    // After every (re)connect the cloud gets the full live state: queue snapshots (aggregates only).
    republish: (publish) => {
      for (const q of late.kpi?.current().queues ?? []) if (queueTopics().has(`queues/${q.name}`)) publish(`queues/${q.name}`, q, { qos: 1, retain: true });
      late.updates?.republish();
      // Queues gone since their snapshot was retained (a push, or a restart with a smaller config
      // file) are cleared on the broker; a clear that failed before is retried here.
      pruneQueueTopics();
    },
    config: {
      validate: (desired) => checkDesiredConfig(pushBase(), desired),
      apply: async (next) => {
        if (!late.applyPushed) throw new Error('the daemon is still starting');
        await late.applyPushed(next);
      },
    },
  });
  closer.defer('cloud sync', () => sync.close());
  const writeEvent = (event: CloudEvent, what: string): void => {
    db.transaction((tx) => sync.append(tx, event.type, event.data)).catch((err: unknown) => log.error({ err, code: 'DB_FAILED', type: event.type }, `${what} event write failed`));
  };
  const pushed = await sync.config.applied();
  if (pushed) {
    // The last config the cloud pushed runs again after a restart, unless it no longer fits the file's.
    const checked = checkDesiredConfig(pushBase(), pushed.config);
    if (checked.ok) {
      assignHotSections(config, checked.value);
      log.info({ version: pushed.version, appliedAt: pushed.appliedAt }, 'running the config pushed by the cloud');
    } else log.error({ code: 'CONFIG_INVALID', version: pushed.version, error: checked.error }, 'the config pushed by the cloud no longer fits this config file; running the file config');
    // A push also saved its people; a later live change (API, CLI) is newer than the push.
    if (w.storedPeople) assignPeople(config, w.storedPeople);
  }
  return {
    sync,
    bootId,
    late,
    writeEvent,
    anchorAuditHead: (head) => db.transaction((tx) => sync.append(tx, 'recording.audit-head', { seq: head.seq, hash: head.hash })).then(() => undefined),
    queueTopics,
    pruneQueueTopics,
  };
}

export interface CloudCommandsWiring {
  config: Config;
  log: Logger;
  closer: Closer;
  cloud: Pick<CloudLink, 'sync' | 'bootId'>;
  acd: Acd;
  vault: Vault;
  /** Live counters for the health the cloud asks for. */
  health: () => Record<string, unknown>;
}

/**
 * The commands the cloud may send (gateway/cloud-commands.ts) and the signed A/B updates
 * (image/: update.apply, update.chunk, update.status). Returns the update commands, which the
 * link's republish needs.
 */
export function wireCloudCommands(w: CloudCommandsWiring): UpdateCommands {
  const { config, log, cloud } = w;
  registerCloudCommands(cloud.sync, { config, acd: w.acd, bootId: cloud.bootId, vault: w.vault, health: w.health });
  const updates = registerUpdateCommands(cloud.sync.commands, {
    dataDir: config.dataDir,
    version: VERSION,
    publish: (suffix, payload, opts) => cloud.sync.publishLive(suffix, payload, opts),
    log: log.child({ component: 'update' }),
  });
  w.closer.defer('update commands', () => updates.close());
  return updates;
}
