import { z } from 'zod';
import type { SyncService } from '../sync';
import type { Vault } from '../vault';
import type { Acd } from './acd/acd';
import type { Config } from './config/schema';
import { VERSION } from './version';

/** Commands the cloud may send on cmd/<name>; each is validated by its schema before it runs. */
export function registerCloudCommands(
  sync: SyncService,
  deps: { config: Config; acd: Acd; bootId: string; health: () => Record<string, unknown>; vault: Vault },
): void {
  const { commands } = sync;
  commands.register(
    'agent.setState',
    z.object({ agent: z.string().min(1).max(64), state: z.enum(['available', 'away']), reason: z.string().max(64).optional() }).strict(),
    (a) => (a.state === 'available' ? deps.acd.setAvailable(a.agent) : deps.acd.setAway(a.agent, a.reason ?? 'cloud')),
  );
  commands.register('diagnostics', z.object({}).strict(), async () => ({
    version: VERSION,
    node: process.version,
    bootId: deps.bootId,
    sync: await sync.status(),
    health: deps.health(),
    queues: deps.acd.snapshot().queues.map((q) => ({ name: q.name, waiting: q.waiting, offered: q.offered, connected: q.connected })),
  }));
  // Pausing a queue keeps its callers waiting (overflow still applies) and offers none to agents.
  commands.register(
    'queue.pause',
    z.object({ queue: z.string().min(1).max(64), paused: z.boolean().default(true), reason: z.string().min(1).max(64).optional() }).strict(),
    (a) => deps.acd.setQueuePaused(a.queue, a.paused, a.reason ?? 'cloud'),
  );
  commands.register('config.get', z.object({}).strict(), () => redactSecrets(deps.config));
  // Legal hold by call id: the recording of that call (now or later) is never deleted by retention.
  commands.register(
    'recording.hold',
    z.object({ callId: z.string().min(1).max(128), on: z.boolean().default(true), reason: z.string().min(1).max(500), actor: z.string().min(1).max(64).default('cloud') }).strict(),
    async (a) => ({ callId: a.callId, on: a.on, recordings: await deps.vault.setLegalHold(a.callId, a.on, a.actor, a.reason) }),
  );
}

/** The running config without passwords, tokens, secrets or key material. */
export function redactSecrets(config: Config): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) => (/password|token|secret|hash|key$/i.test(key) && typeof value === 'string' ? '[redacted]' : value)),
  ) as unknown;
}
