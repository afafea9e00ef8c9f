/** The scripted KPI scenario shared by the KPI tests (hand computations in kpi.test.ts). */
import type { AgentChange, Disposition, QueueEvent } from '../../kpi/kpi';

export const T0 = Date.UTC(2025, 0, 1, 9, 0, 0);
export const s = (sec: number): number => T0 + sec * 1000;

export function ev(type: QueueEvent['type'], sec: number, callId: string, queue: string, intent: string | null, over: Partial<QueueEvent> = {}): QueueEvent {
  return { ts: s(sec), queue, intent, callId, agent: null, type, waitMs: null, talkMs: null, holdMs: null, wrapMs: null, disposition: null, ...over };
}

/** An answered call: offered at `at`, answered after `wait` s by `agent`, talk/hold/wrap in s, then a disposition. */
export function handled(callId: string, queue: string, intent: string | null, at: number, wait: number, agent: string, talk: number, hold: number, wrap: number, d: Disposition | null): QueueEvent[] {
  const ans = at + wait;
  const end = ans + talk + hold;
  const list = [
    ev('offered', at, callId, queue, intent),
    ev('answered', ans, callId, queue, intent, { agent, waitMs: wait * 1000 }),
    ev('ended', end, callId, queue, intent, { agent, talkMs: talk * 1000, holdMs: hold * 1000, wrapMs: wrap * 1000 }),
  ];
  if (d) list.push(ev('disposition', end + 5, callId, queue, intent, { agent, disposition: d }));
  return list;
}

/**
 * The scripted scenario (seconds after T0). Queue `support` (alice, bob, dave), queue `sales` (carol).
 *   c1 billing: offered 0,  answered 10 (wait 10) by alice, talk 100 hold 20 wrap 30 (= 150), resolved
 *   c2 billing: offered 5,  answered 35 (wait 30) by bob,   talk 200 hold 0  wrap 40 (= 240), not-resolved
 *   c3 tech:    offered 20, abandoned 23 (wait 3: short)
 *   c4 tech:    offered 30, abandoned 60 (wait 30)
 *   c5 tech:    offered 40, answered 55 (wait 15) by dave,  talk 60 hold 10 wrap 20 (= 90), follow-up
 *   c6 billing: offered 50 in support, overflowed 110 (wait 60) to sales, answered 120 (wait 10)
 *               by carol, talk 50 hold 0 wrap 10 (= 60), resolved
 *   c7 tech:    offered 100, still waiting
 */
export function scenario(): QueueEvent[] {
  return [
    ...handled('c1', 'support', 'billing', 0, 10, 'alice', 100, 20, 30, 'resolved'),
    ...handled('c2', 'support', 'billing', 5, 30, 'bob', 200, 0, 40, 'not-resolved'),
    ev('offered', 20, 'c3', 'support', 'tech'),
    ev('abandoned', 23, 'c3', 'support', 'tech', { waitMs: 3000 }),
    ev('offered', 30, 'c4', 'support', 'tech'),
    ev('abandoned', 60, 'c4', 'support', 'tech', { waitMs: 30_000 }),
    ...handled('c5', 'support', 'tech', 40, 15, 'dave', 60, 10, 20, 'follow-up'),
    ev('offered', 50, 'c6', 'support', 'billing'),
    ev('overflowed', 110, 'c6', 'support', 'billing', { waitMs: 60_000 }),
    ...handled('c6', 'sales', 'billing', 110, 10, 'carol', 50, 0, 10, 'resolved'),
    ev('offered', 100, 'c7', 'support', 'tech'),
  ];
}

/**
 * Agent states over the window [0, 1000) s:
 *   alice (support): available 0-10, on-call 10-130, wrap-up 130-160, available 160-300, away 300-1000
 *                    → busy 120 + 30 = 150, available 10 + 140 = 150
 *   bob (support):   offline until 30 (no earlier change), available 30-33, ringing 33-35,
 *                    on-call 35-235, wrap-up 235-275, available 275-1000
 *                    → busy 200 + 40 = 240, available 3 + 725 = 728 (ringing counts for neither)
 *   dave (support):  available since before the window (change at -100), on-call 55-125,
 *                    wrap-up 125-145, available 145-1000 → busy 90, available 55 + 855 = 910
 *   carol (sales):   available 0-120, on-call 120-170, wrap-up 170-180, available 180-1000
 *                    → busy 60, available 120 + 820 = 940
 */
export function changes(): AgentChange[] {
  const c = (agent: string, sec: number, state: AgentChange['state']): AgentChange => ({ agent, state, at: s(sec) });
  return [
    c('alice', 0, 'available'), c('alice', 10, 'on-call'), c('alice', 130, 'wrap-up'), c('alice', 160, 'available'), c('alice', 300, 'away'),
    c('bob', 30, 'available'), c('bob', 33, 'ringing'), c('bob', 35, 'on-call'), c('bob', 235, 'wrap-up'), c('bob', 275, 'available'),
    c('dave', -100, 'available'), c('dave', 55, 'on-call'), c('dave', 125, 'wrap-up'), c('dave', 145, 'available'),
    c('carol', 0, 'available'), c('carol', 120, 'on-call'), c('carol', 170, 'wrap-up'), c('carol', 180, 'available'),
  ];
}

export const AGENT_QUEUES: Record<string, string[]> = { alice: ['support'], bob: ['support'], dave: ['support'], carol: ['sales'] };
