/**
 * Compile-time checks of the event catalogue: never run, only compiled (tsc, `npm run build`).
 * Each `@ts-expect-error` line must fail to compile; if a change makes it compile (the catalogue
 * stopped checking a type or a field), tsc reports the directive as unused and the build breaks.
 */
import type { CloudEventData, CloudEventType } from '../../events';
import type { Outbox } from '../../outbox';
import type { SyncService } from '../../index';
import type { SqlExec } from '../../sql';

export async function outboxAppends(ob: Outbox, tx: SqlExec): Promise<void> {
  await ob.append(tx, 'call.offered', { callId: 'c', from: '+15551234567', trunk: 'pbx' });
  // @ts-expect-error a misspelled event type
  await ob.append(tx, 'call.offerd', { callId: 'c' });
  // @ts-expect-error a field the type does not have (call.dtmf has `digit`)
  await ob.append(tx, 'call.dtmf', { callId: 'c', digits: '1' });
  // @ts-expect-error a value of the wrong type (durationMs is a number)
  await ob.append(tx, 'call.dtmf', { callId: 'c', durationMs: '80' });
  // @ts-expect-error envelope fields are not data
  await ob.append(tx, 'call.answered', { callId: 'c', seq: 1 });
  // @ts-expect-error a nested object is not a plain value
  await ob.append(tx, 'queue.paused', { queue: 'q', paused: { on: true } });
}

export async function serviceAppends(sync: SyncService, tx: SqlExec, on: boolean): Promise<void> {
  await sync.append(tx, 'queue.paused', { queue: 'q', paused: on });
  // A type built at runtime is a union of literals; the data is checked against its members.
  await sync.append(tx, on ? 'agent.login' : 'agent.logout', { agent: 'a' });
  // @ts-expect-error neither agent.login nor agent.logout has `queue`
  await sync.append(tx, on ? 'agent.login' : 'agent.logout', { agent: 'a', queue: 'q' });
  // @ts-expect-error a required field is missing (queue.paused means nothing without `paused`)
  await sync.append(tx, 'queue.paused', { queue: 'q' });
  // @ts-expect-error a required field cannot be left undefined
  await sync.append(tx, 'agent.login', { agent: undefined });
  const dynamic: string = on ? 'queue.paused' : 'x';
  // @ts-expect-error a plain string is not a cloud event type (narrow it with isCloudEventType)
  await sync.append(tx, dynamic, {});
}

// A payload type is usable on its own (e.g. a helper that builds one).
export const offered: CloudEventData<'call.offered'> = { callId: 'c', delayedOffer: true };
// @ts-expect-error not a catalogued type
export const nope: CloudEventType = 'call.nope';
