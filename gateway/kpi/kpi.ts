/**
 * Contact-center KPIs with their industry definitions, as pure functions over call outcomes and
 * agent state intervals. No I/O, no clock: the store, the live service and the routing report all
 * compute through these, so a number means the same on the wallboard, in /metrics and in a report.
 *
 * Definitions (a "segment" is one call's stay in one queue; an overflowed call has one per queue):
 * - offered: segments with a final outcome (answered, abandoned, overflowed) in the group; with
 *   `abandons: 'exclude-short'` short abandons (wait < shortAbandonS) are not offered at all.
 *   Calls still waiting are not offered yet (they show in `waiting`).
 * - service level: answered within T (`serviceLevelS`, default 20 s) ÷ denominator, where the
 *   denominator is, by `abandons`:
 *     'fail'          answered + overflowed + abandoned          (every abandon fails)
 *     'exclude'       answered + overflowed                       (abandons left out)
 *     'exclude-short' answered + overflowed + abandons ≥ short    (short abandons left out, others fail)
 *   An overflowed call left the queue unanswered: it always counts, as failed.
 * - ASA: mean wait of answered segments.
 * - AHT: mean of talk + hold + wrap-up over handled calls whose wrap-up has ended (talk excludes
 *   hold time).
 * - abandonment rate: abandoned ÷ offered; with 'exclude-short' short abandons leave both.
 * - occupancy: (on-call + wrap-up) ÷ (on-call + wrap-up + available) of the group's agents over
 *   the window (ringing, away and offline time are in neither).
 * - FCR: calls dispositioned `resolved` ÷ calls dispositioned (the latest disposition of a call wins).
 */
import type { AgentState } from '../acd/agent-state';

export const QUEUE_EVENT_TYPES = ['offered', 'answered', 'abandoned', 'overflowed', 'ended', 'disposition'] as const;
export type QueueEventType = (typeof QUEUE_EVENT_TYPES)[number];

/** What the agent chose in wrap-up. */
export const DISPOSITIONS = ['resolved', 'not-resolved', 'follow-up'] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

/** One row of `queue_events` (times in ms epoch, durations in ms). */
export interface QueueEvent {
  ts: number;
  queue: string;
  intent: string | null;
  callId: string;
  agent: string | null;
  type: QueueEventType;
  /** offered → answered/abandoned/overflowed: time spent in this queue. */
  waitMs: number | null;
  /** ended: connected time minus hold. */
  talkMs: number | null;
  /** ended: time the agent had the caller on hold. */
  holdMs: number | null;
  /** ended: wrap-up after the call; null until the wrap-up is over. */
  wrapMs: number | null;
  disposition: Disposition | null;
}

export type AbandonHandling = 'fail' | 'exclude' | 'exclude-short';

export interface KpiOptions {
  /** T of the service level, seconds. */
  serviceLevelS: number;
  abandons: AbandonHandling;
  /** Abandons with a wait below this (seconds) are "short". */
  shortAbandonS: number;
}

export const DEFAULT_KPI_OPTIONS: Readonly<KpiOptions> = Object.freeze({ serviceLevelS: 20, abandons: 'exclude-short', shortAbandonS: 5 });

export type SegmentResult = 'waiting' | 'answered' | 'abandoned' | 'overflowed';

/** One call's stay in one queue, built from its events. */
export interface CallOutcome {
  callId: string;
  queue: string;
  intent: string | null;
  /** When the call entered this queue (ms epoch). */
  offeredAt: number;
  result: SegmentResult;
  waitMs: number | null;
  agent: string | null;
  /** The call ended after being answered here (talk and hold known). */
  ended: boolean;
  talkMs: number | null;
  holdMs: number | null;
  wrapMs: number | null;
  disposition: Disposition | null;
}

/** A stretch of time an agent spent in one state. */
export interface AgentInterval {
  agent: string;
  state: AgentState;
  from: number;
  to: number;
}

/** A state change as stored in agent_events. */
export interface AgentChange {
  agent: string;
  state: AgentState;
  at: number;
}

export interface KpiValues {
  /** Final outcomes counted as offered (see the module comment). */
  offered: number;
  answered: number;
  /** Abandons counted as offered (short ones excluded under 'exclude-short'). */
  abandoned: number;
  /** Abandons under shortAbandonS, whatever the handling. */
  shortAbandoned: number;
  overflowed: number;
  answeredWithinT: number;
  /** 0..1, null with nothing to count. */
  serviceLevel: number | null;
  /** Seconds. */
  asaS: number | null;
  /** Seconds. */
  ahtS: number | null;
  abandonRate: number | null;
  occupancy: number | null;
  fcr: number | null;
  dispositions: number;
  resolved: number;
}

const ratio = (n: number, d: number): number | null => (d > 0 ? n / d : null);
const mean = (xs: number[]): number | null => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/**
 * Segments from events (any order). Events of a call are matched to the open segment of their
 * queue; a disposition attaches to the segment the call was answered in.
 */
export function outcomesFromEvents(events: readonly QueueEvent[]): CallOutcome[] {
  const sorted = [...events].sort((a, b) => a.ts - b.ts);
  const byCall = new Map<string, CallOutcome[]>();
  const out: CallOutcome[] = [];
  for (const e of sorted) {
    let segs = byCall.get(e.callId);
    if (!segs) byCall.set(e.callId, (segs = []));
    if (e.type === 'offered') {
      const seg: CallOutcome = {
        callId: e.callId,
        queue: e.queue,
        intent: e.intent,
        offeredAt: e.ts,
        result: 'waiting',
        waitMs: null,
        agent: null,
        ended: false,
        talkMs: null,
        holdMs: null,
        wrapMs: null,
        disposition: null,
      };
      segs.push(seg);
      out.push(seg);
      continue;
    }
    // The latest segment of this call in this queue (an event without its offered row is ignored:
    // the call was offered before the window).
    const seg = [...segs].reverse().find((s) => s.queue === e.queue);
    if (!seg) continue;
    if (e.intent !== null) seg.intent = e.intent;
    switch (e.type) {
      case 'answered':
      case 'abandoned':
      case 'overflowed':
        seg.result = e.type;
        seg.waitMs = e.waitMs ?? Math.max(0, e.ts - seg.offeredAt);
        if (e.type === 'answered') seg.agent = e.agent;
        break;
      case 'ended':
        seg.ended = true;
        seg.talkMs = e.talkMs;
        seg.holdMs = e.holdMs;
        seg.wrapMs = e.wrapMs;
        seg.agent ??= e.agent;
        break;
      case 'disposition':
        seg.disposition = e.disposition;
        break;
    }
  }
  return out;
}

/**
 * One outcome per call for intent views: the call's first entry, its waits summed over every
 * queue it went through, and the result, agent and handling of its last segment.
 */
export function mergeByCall(outcomes: readonly CallOutcome[]): CallOutcome[] {
  const byCall = new Map<string, CallOutcome[]>();
  for (const o of outcomes) {
    const list = byCall.get(o.callId);
    if (list) list.push(o);
    else byCall.set(o.callId, [o]);
  }
  const merged: CallOutcome[] = [];
  for (const segs of byCall.values()) {
    segs.sort((a, b) => a.offeredAt - b.offeredAt);
    const first = segs[0];
    const last = segs[segs.length - 1];
    const waits = segs.map((s) => s.waitMs).filter((w): w is number => w !== null);
    const result = last.result;
    merged.push({
      ...last,
      queue: last.queue,
      intent: segs.map((s) => s.intent).find((i) => i !== null) ?? null,
      offeredAt: first.offeredAt,
      result,
      waitMs: result === 'waiting' ? null : waits.reduce((a, b) => a + b, 0),
      disposition: segs.map((s) => s.disposition).reverse().find((d) => d !== null) ?? null,
    });
  }
  return merged;
}

/**
 * Intervals of each agent's states within [from, to): `changes` in any order; the latest change at
 * or before `from` gives the state the window starts in (agents with none start offline).
 */
export function agentIntervals(changes: readonly AgentChange[], from: number, to: number): AgentInterval[] {
  const byAgent = new Map<string, AgentChange[]>();
  for (const c of changes) {
    const list = byAgent.get(c.agent);
    if (list) list.push(c);
    else byAgent.set(c.agent, [c]);
  }
  const out: AgentInterval[] = [];
  for (const [agent, list] of byAgent) {
    list.sort((a, b) => a.at - b.at);
    let state: AgentState = 'offline';
    let since = from;
    for (const c of list) {
      if (c.at <= from) {
        state = c.state;
        continue;
      }
      if (c.at >= to) break;
      if (c.at > since) out.push({ agent, state, from: since, to: c.at });
      state = c.state;
      since = c.at;
    }
    if (to > since) out.push({ agent, state, from: since, to });
  }
  return out;
}

function isShortAbandon(o: CallOutcome, opts: KpiOptions): boolean {
  return o.result === 'abandoned' && (o.waitMs ?? 0) < opts.shortAbandonS * 1000;
}

/** Service level (0..1) of final outcomes; null when nothing counts. */
export function serviceLevel(outcomes: readonly CallOutcome[], opts: KpiOptions = DEFAULT_KPI_OPTIONS): number | null {
  const t = opts.serviceLevelS * 1000;
  let within = 0;
  let denominator = 0;
  for (const o of outcomes) {
    if (o.result === 'answered') {
      denominator++;
      if ((o.waitMs ?? 0) <= t) within++;
    } else if (o.result === 'overflowed') {
      denominator++;
    } else if (o.result === 'abandoned') {
      if (opts.abandons === 'fail' || (opts.abandons === 'exclude-short' && !isShortAbandon(o, opts))) denominator++;
    }
  }
  return ratio(within, denominator);
}

/** Average speed of answer, seconds. */
export function asa(outcomes: readonly CallOutcome[]): number | null {
  const m = mean(outcomes.filter((o) => o.result === 'answered').map((o) => o.waitMs ?? 0));
  return m === null ? null : m / 1000;
}

/** Average handle time (talk + hold + wrap-up), seconds, over calls whose wrap-up is over. */
export function aht(outcomes: readonly CallOutcome[]): number | null {
  const m = mean(outcomes.filter((o) => o.ended && o.wrapMs !== null).map((o) => (o.talkMs ?? 0) + (o.holdMs ?? 0) + (o.wrapMs ?? 0)));
  return m === null ? null : m / 1000;
}

/** Abandoned ÷ offered; under 'exclude-short' short abandons are in neither. */
export function abandonRate(outcomes: readonly CallOutcome[], opts: KpiOptions = DEFAULT_KPI_OPTIONS): number | null {
  const c = counts(outcomes, opts);
  return ratio(c.abandoned, c.offered);
}

/** (on-call + wrap-up) ÷ (on-call + wrap-up + available). */
export function occupancy(intervals: readonly AgentInterval[]): number | null {
  let busy = 0;
  let idle = 0;
  for (const i of intervals) {
    const d = Math.max(0, i.to - i.from);
    if (i.state === 'on-call' || i.state === 'wrap-up') busy += d;
    else if (i.state === 'available') idle += d;
  }
  return ratio(busy, busy + idle);
}

/** First-contact resolution: resolved ÷ dispositioned calls. */
export function fcr(outcomes: readonly CallOutcome[]): number | null {
  const d = dispositionCounts(outcomes);
  return ratio(d.resolved, d.dispositions);
}

function dispositionCounts(outcomes: readonly CallOutcome[]): { dispositions: number; resolved: number } {
  let dispositions = 0;
  let resolved = 0;
  for (const o of outcomes) {
    if (o.disposition === null) continue;
    dispositions++;
    if (o.disposition === 'resolved') resolved++;
  }
  return { dispositions, resolved };
}

function counts(outcomes: readonly CallOutcome[], opts: KpiOptions) {
  let answered = 0;
  let abandoned = 0;
  let shortAbandoned = 0;
  let overflowed = 0;
  let answeredWithinT = 0;
  for (const o of outcomes) {
    if (o.result === 'answered') {
      answered++;
      if ((o.waitMs ?? 0) <= opts.serviceLevelS * 1000) answeredWithinT++;
    } else if (o.result === 'overflowed') overflowed++;
    else if (o.result === 'abandoned') {
      const short = isShortAbandon(o, opts);
      if (short) shortAbandoned++;
      if (!(short && opts.abandons === 'exclude-short')) abandoned++;
    }
  }
  return { offered: answered + abandoned + overflowed, answered, abandoned, shortAbandoned, overflowed, answeredWithinT };
}

/** Every KPI of one group (a queue, an intent, or anything else the caller filtered by). */
export function computeKpis(outcomes: readonly CallOutcome[], intervals: readonly AgentInterval[], opts: KpiOptions = DEFAULT_KPI_OPTIONS): KpiValues {
  const c = counts(outcomes, opts);
  const d = dispositionCounts(outcomes);
  return {
    ...c,
    serviceLevel: serviceLevel(outcomes, opts),
    asaS: asa(outcomes),
    ahtS: aht(outcomes),
    abandonRate: ratio(c.abandoned, c.offered),
    occupancy: occupancy(intervals),
    fcr: ratio(d.resolved, d.dispositions),
    ...d,
  };
}

/** Which queues an agent serves: null = every queue (as in the agents config). */
export type AgentQueues = (agent: string) => readonly string[] | null | undefined;

const serves = (agentQueues: AgentQueues, agent: string, queues: ReadonlySet<string>): boolean => {
  const q = agentQueues(agent);
  return q === null || q === undefined || q.some((x) => queues.has(x));
};

/** KPIs per queue; `queues` lists queues to report even without traffic. */
export function kpisByQueue(
  outcomes: readonly CallOutcome[],
  intervals: readonly AgentInterval[],
  agentQueues: AgentQueues,
  opts: KpiOptions = DEFAULT_KPI_OPTIONS,
  queues: readonly string[] = [],
): Map<string, KpiValues> {
  const names = [...new Set([...queues, ...outcomes.map((o) => o.queue)])];
  const result = new Map<string, KpiValues>();
  for (const name of names) {
    const set = new Set([name]);
    result.set(
      name,
      computeKpis(
        outcomes.filter((o) => o.queue === name),
        intervals.filter((i) => serves(agentQueues, i.agent, set)),
        opts,
      ),
    );
  }
  return result;
}

/** Queues each intent's calls went through. */
export function intentQueues(outcomes: readonly CallOutcome[]): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const o of outcomes) {
    if (o.intent === null) continue;
    let s = m.get(o.intent);
    if (!s) m.set(o.intent, (s = new Set()));
    s.add(o.queue);
  }
  return m;
}

/**
 * KPIs per intent: one outcome per call (mergeByCall), occupancy of the agents serving any queue
 * the intent's calls went through. Calls without an intent are left out.
 */
export function kpisByIntent(
  outcomes: readonly CallOutcome[],
  intervals: readonly AgentInterval[],
  agentQueues: AgentQueues,
  opts: KpiOptions = DEFAULT_KPI_OPTIONS,
): Map<string, KpiValues> {
  const queuesOf = intentQueues(outcomes);
  const merged = mergeByCall(outcomes);
  const result = new Map<string, KpiValues>();
  for (const [intent, queues] of [...queuesOf].sort((a, b) => a[0].localeCompare(b[0]))) {
    result.set(
      intent,
      computeKpis(
        merged.filter((o) => o.intent === intent),
        intervals.filter((i) => serves(agentQueues, i.agent, queues)),
        opts,
      ),
    );
  }
  return result;
}
