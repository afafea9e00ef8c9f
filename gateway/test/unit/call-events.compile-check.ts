/**
 * Compile-time checks that the gateway's event writers are held to the cloud event catalogue
 * (sync/events.ts): never run, only compiled. An unused `@ts-expect-error` breaks the build.
 */
import type { DeskCall } from '../../calls/contract';
import type { AgentStore } from '../../store/agent-store';
import type { CallStore } from '../../store/call-store';

export async function callStoreWrites(store: CallStore): Promise<void> {
  await store.update('id', {}, 'call.held', { direction: 'sendonly' });
  // @ts-expect-error a misspelled event type
  await store.update('id', {}, 'call.hled', { direction: 'sendonly' });
  // @ts-expect-error a field call.held does not have
  await store.update('id', {}, 'call.held', { direction: 'sendonly', codec: 'PCMU' });
  // @ts-expect-error not an event of a call (no callId in its payload)
  await store.update('id', {}, 'queue.paused', { queue: 'q' });
}

export function deskCallRecords(call: DeskCall, on: boolean): void {
  call.record('call.agent-offered', { agent: 'a' });
  call.record(on ? 'call.agent-hold' : 'call.agent-unhold', {});
  // @ts-expect-error a misspelled event type
  call.record('call.agent-ofered', { agent: 'a' });
  // @ts-expect-error a field the type does not have
  call.record('call.agent-offered', { agnet: 'a' });
  // @ts-expect-error a required field is missing (a transfer says how and by whom)
  call.record('call.transferred', { mode: 'blind' });
}

export async function agentStoreWrites(agents: AgentStore): Promise<void> {
  await agents.recordSession('agent.login', 'a', null);
  // @ts-expect-error only session events
  await agents.recordSession('agent.state', 'a', null);
}
