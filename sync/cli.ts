import type { OutboxStats } from './outbox';
import { Policy, type PolicyConfigInput } from './policy';

/**
 * `ccedge policy explain EVENT_TYPE` text; without EVENT_TYPE, the list of event types with an
 * allow-list. Needs no site secret (nothing is hashed).
 */
export function explainPolicy(config: PolicyConfigInput, eventType?: string): string {
  const policy = new Policy(config, { hmacKey: 'explain-only-not-a-site-secret' });
  if (!eventType) return `event types with an allow-list (everything else leaves as the envelope only):\n${policy.eventTypes().map((t) => `  ${t}\n`).join('')}`;
  return policy.explain(eventType);
}

/** `ccedge outbox` text. */
export function formatOutboxStats(s: OutboxStats, connected?: boolean): string {
  const lines = [
    ...(connected === undefined ? [] : [`connected:      ${connected ? 'yes' : 'no'}`]),
    `pending events: ${s.depth} (${s.bytes} bytes)`,
    `oldest pending: ${s.oldestTs ?? '-'}`,
    `last seq:       ${s.lastSeq}`,
    `last acked seq: ${s.lastAckedSeq}`,
    `dropped:        ${s.droppedTotal} total${s.unreportedDrops > 0 ? `, ${s.unreportedDrops} not yet reported to the cloud` : ''}`,
  ];
  return `${lines.join('\n')}\n`;
}
