import { EventEmitter } from 'node:events';
import { Gauge, type Registry } from 'prom-client';
import type { AcdSnapshot } from '../acd/acd';
import { realClock, type Clock, type Timer } from '../acd/clock';
import { AGENT_STATES, type AgentState } from '../acd/agent-state';
import type { Logger } from '../logging';
import { windowStart } from './config';
import type { KpiRecorder } from './kpi-recorder';
import type { KpiStore } from './kpi-store';
import type { IntentKpi, KpiSnapshot, QueueKpi } from './kpi-types';
import {
  agentIntervals,
  DEFAULT_KPI_OPTIONS,
  intentQueues,
  kpisByIntent,
  kpisByQueue,
  outcomesFromEvents,
  type AgentChange,
  type AgentQueues,
  type CallOutcome,
  type KpiOptions,
  type KpiValues,
  type QueueEvent,
} from './kpi';

export interface KpiServiceOptions {
  store: KpiStore;
  recorder: KpiRecorder;
  /** The live ACD view (waiting now, longest wait, agents by state): `() => acd.snapshot()`. */
  snapshot: () => AcdSnapshot;
  /** Queues each agent serves (null/absent: all), from the agents config. */
  agentQueues: AgentQueues;
  /** `today` (since local midnight, default) or `<N>h` (rolling). */
  window?: string;
  kpi?: Partial<KpiOptions>;
  /** Default { serviceLevel: 0.8, fcr: 0.7 }. */
  targets?: { serviceLevel: number; fcr: number };
  clock?: Clock;
  /** At most one `update` per this many ms (default 1000). */
  throttleMs?: number;
  /** An `update` at least this often even when nothing changed, and history KPIs recomputed (default 10 000). */
  heartbeatMs?: number;
  log?: Logger;
}

export interface KpiServiceEvents {
  update: [snapshot: KpiSnapshot];
}

interface History {
  from: number;
  computedAt: number;
  queues: Map<string, KpiValues>;
  intents: Map<string, KpiValues>;
  intentQueues: Map<string, Set<string>>;
  /** Segments still waiting that started while this service ran (older ones are leftovers of a stop). */
  waiting: CallOutcome[];
}

const round = (v: number | null, digits: number): number | null => (v === null ? null : Number(v.toFixed(digits)));

/**
 * Rolling KPIs: history (queue_events and agent_events of the window, loaded once at start and
 * then kept up to date from the recorder) combined with the live ACD snapshot. `current()` is
 * cheap to call often: history is recomputed only after a change or every heartbeat.
 */
export class KpiService extends EventEmitter<KpiServiceEvents> {
  private readonly clock: Clock;
  private readonly opts: KpiOptions;
  private readonly windowSpec: string;
  private readonly throttleMs: number;
  private readonly heartbeatMs: number;
  private events: QueueEvent[] = [];
  private firstOffered = new Map<string, number>();
  private changes: AgentChange[] = [];
  private history: History | undefined;
  private dirty = true;
  private startedAt = 0;
  private timer: Timer | undefined;
  private lastSent: { key: string; at: number } | undefined;
  private cached: { snapshot: KpiSnapshot; at: number } | undefined;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(private readonly o: KpiServiceOptions) {
    super();
    this.clock = o.clock ?? realClock;
    this.opts = { ...DEFAULT_KPI_OPTIONS, ...o.kpi };
    this.windowSpec = o.window ?? 'today';
    windowStart(this.windowSpec, 0); // throws on a bad spec now, not on the first tick
    this.throttleMs = o.throttleMs ?? 1000;
    this.heartbeatMs = o.heartbeatMs ?? 10_000;
  }

  /** Loads the window's history, follows the recorder, and starts the update ticks. Call before traffic starts. */
  async start(): Promise<void> {
    const now = this.clock.now();
    this.startedAt = now;
    // Follow the recorder first, holding what comes in while history loads (a row written before
    // the query ran is both in the history and in the held list: it is taken once).
    let held: QueueEvent[] | null = [];
    const onEvent = (e: QueueEvent): void => {
      if (held) held.push({ ...e });
      else this.add({ ...e });
    };
    const onWrapped = (callId: string, wrapMs: number, agent: string): void => {
      // The agent's latest: a transferred call has an `ended` row per agent who handled it.
      const mine = (e: QueueEvent): boolean => e.callId === callId && e.type === 'ended' && e.agent === agent;
      const latest = (list: readonly QueueEvent[] | null): QueueEvent | undefined => {
        for (let i = (list?.length ?? 0) - 1; i >= 0; i--) if (list && mine(list[i])) return list[i];
        return undefined;
      };
      const ended = latest(held) ?? latest(this.events);
      if (ended) ended.wrapMs = wrapMs;
      this.dirty = true;
    };
    const onAgentState = (agent: string, state: AgentState, at: number): void => {
      this.changes.push({ agent, state, at });
      this.dirty = true;
    };
    this.o.recorder.on('event', onEvent);
    this.o.recorder.on('wrapped', onWrapped);
    this.o.recorder.on('agentState', onAgentState);
    this.unsubscribe.push(
      () => this.o.recorder.off('event', onEvent),
      () => this.o.recorder.off('wrapped', onWrapped),
      () => this.o.recorder.off('agentState', onAgentState),
    );
    const from = windowStart(this.windowSpec, now);
    const [events, changes] = await Promise.all([this.o.store.eventsOfCallsOffered(from, now + 1), this.o.store.agentChanges(from, now + 1)]);
    const key = (e: QueueEvent): string => `${e.callId}|${e.type}|${e.queue}|${e.ts}`;
    const loaded = new Set(events.map(key));
    for (const e of events) this.add(e);
    for (const e of held) if (!loaded.has(key(e))) this.add(e);
    held = null;
    const liveChanges = this.changes;
    this.changes = [...changes, ...liveChanges.filter((c) => !changes.some((d) => d.agent === c.agent && d.state === c.state && d.at === c.at))];
    this.dirty = true;
    this.schedule();
  }

  close(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** GET /api/v1/queues. */
  queues(): QueueKpi[] {
    return this.current().queues;
  }

  intents(): IntentKpi[] {
    return this.current().intents;
  }

  /** The KPIs now (recomputed at most once per throttleMs unless history changed). */
  current(): KpiSnapshot {
    const now = this.clock.now();
    if (this.cached && !this.dirty && now - this.cached.at < this.throttleMs) return this.cached.snapshot;
    const snapshot = this.compute(now);
    this.cached = { snapshot, at: now };
    return snapshot;
  }

  private add(e: QueueEvent): void {
    if (e.type === 'offered' && !this.firstOffered.has(e.callId)) this.firstOffered.set(e.callId, e.ts);
    if (!this.firstOffered.has(e.callId)) return; // offered before the window: not counted
    this.events.push(e);
    this.dirty = true;
  }

  private schedule(): void {
    this.timer = this.clock.setTimeout(() => {
      this.tick();
      this.schedule();
    }, this.throttleMs);
  }

  private tick(): void {
    try {
      const s = this.current();
      const key = JSON.stringify({ ...s, at: undefined, window: undefined });
      const now = this.clock.now();
      if (this.lastSent && this.lastSent.key === key && now - this.lastSent.at < this.heartbeatMs) return;
      this.lastSent = { key, at: now };
      this.emit('update', s);
    } catch (err) {
      this.o.log?.error({ err }, 'KPI update failed');
    }
  }

  private prune(from: number): void {
    const old = new Set<string>();
    for (const [callId, at] of this.firstOffered) if (at < from) old.add(callId);
    if (old.size > 0) {
      for (const id of old) this.firstOffered.delete(id);
      this.events = this.events.filter((e) => !old.has(e.callId));
    }
    // Keep each agent's latest change at or before `from` (its state when the window starts).
    const latestBefore = new Map<string, AgentChange>();
    for (const c of this.changes) if (c.at <= from) latestBefore.set(c.agent, c);
    if (this.changes.some((c) => c.at <= from && latestBefore.get(c.agent) !== c)) {
      this.changes = this.changes.filter((c) => c.at > from || latestBefore.get(c.agent) === c);
    }
  }

  private computeHistory(now: number, from: number): History {
    this.prune(from);
    const outcomes = outcomesFromEvents(this.events);
    const intervals = agentIntervals(this.changes, from, now);
    this.dirty = false;
    return {
      from,
      computedAt: now,
      queues: kpisByQueue(outcomes, intervals, this.o.agentQueues, this.opts),
      intents: kpisByIntent(outcomes, intervals, this.o.agentQueues, this.opts),
      intentQueues: intentQueues(outcomes),
      waiting: outcomes.filter((o) => o.result === 'waiting' && o.offeredAt >= this.startedAt),
    };
  }

  private compute(now: number): KpiSnapshot {
    // A rolling window slides every millisecond: history follows it on a change or a heartbeat.
    // 'today' starts again at midnight.
    const from = windowStart(this.windowSpec, now);
    const midnight = this.windowSpec === 'today' && this.history?.from !== from;
    if (!this.history || this.dirty || midnight || now - this.history.computedAt >= this.heartbeatMs) {
      this.history = this.computeHistory(now, from);
    }
    const h = this.history;
    const live = this.o.snapshot();
    const liveQueues = new Map(live.queues.map((q) => [q.name, q]));
    const reasonOf = new Map(live.agents.map((a) => [a.name, a.reason ?? 'unknown']));
    const awayBy = (names: Iterable<string>): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const n of names) {
        const r = reasonOf.get(n) ?? 'unknown';
        out[r] = (out[r] ?? 0) + 1;
      }
      return out;
    };
    const names = [...live.queues.map((q) => q.name), ...[...h.queues.keys()].filter((n) => !liveQueues.has(n)).sort()];
    const queues = names.map((name): QueueKpi => {
      const q = liveQueues.get(name);
      const agents = emptyAgents();
      if (q) for (const s of AGENT_STATES) agents[s] = q.agents[s].length;
      return view(name, h.queues.get(name), { waiting: q ? q.waiting + q.offered : 0, longestWaitS: q?.longestWaitS ?? 0, agents, away: awayBy(q?.agents.away ?? []) });
    });
    const intents = [...h.intents].map(([name, k]): IntentKpi => {
      const queueSet = h.intentQueues.get(name) ?? new Set<string>();
      const byState = new Map<string, AgentState>();
      for (const q of live.queues) if (queueSet.has(q.name)) for (const s of AGENT_STATES) for (const a of q.agents[s]) byState.set(a, s);
      const agents = emptyAgents();
      for (const s of byState.values()) agents[s]++;
      const waiting = h.waiting.filter((o) => o.intent === name);
      const oldest = Math.min(...waiting.map((o) => o.offeredAt));
      const away = awayBy([...byState].filter(([, st]) => st === 'away').map(([a]) => a));
      return view(name, k, { waiting: waiting.length, longestWaitS: waiting.length ? Math.max(0, Math.floor((now - oldest) / 1000)) : 0, agents, away });
    });
    return {
      at: new Date(now).toISOString(),
      window: { spec: this.windowSpec, from: new Date(h.from).toISOString(), to: new Date(now).toISOString() },
      serviceLevelS: this.opts.serviceLevelS,
      targets: this.o.targets ?? { serviceLevel: 0.8, fcr: 0.7 },
      queues,
      intents,
    };
  }
}

function emptyAgents(): Record<AgentState, number> {
  return Object.fromEntries(AGENT_STATES.map((s) => [s, 0])) as Record<AgentState, number>;
}

function view(name: string, k: KpiValues | undefined, live: Pick<QueueKpi, 'waiting' | 'longestWaitS' | 'agents' | 'away'>): QueueKpi {
  return {
    name,
    serviceLevel: round(k?.serviceLevel ?? null, 4),
    asa: round(k?.asaS ?? null, 1),
    aht: round(k?.ahtS ?? null, 1),
    abandonRate: round(k?.abandonRate ?? null, 4),
    occupancy: round(k?.occupancy ?? null, 4),
    fcr: round(k?.fcr ?? null, 4),
    waiting: live.waiting,
    longestWaitS: live.longestWaitS,
    agents: live.agents,
    away: live.away,
    offered: k?.offered ?? 0,
    answered: k?.answered ?? 0,
    abandoned: k?.abandoned ?? 0,
  };
}

type NumericField = 'serviceLevel' | 'asa' | 'aht' | 'abandonRate' | 'occupancy' | 'fcr' | 'waiting' | 'longestWaitS' | 'offered' | 'answered' | 'abandoned';

const GAUGES: ReadonlyArray<{ field: NumericField; suffix: string; help: string }> = [
  { field: 'serviceLevel', suffix: 'service_level_ratio', help: 'Service level over the KPI window (answered within T / offered)' },
  { field: 'asa', suffix: 'asa_seconds', help: 'Average speed of answer over the KPI window' },
  { field: 'aht', suffix: 'aht_seconds', help: 'Average handle time (talk + hold + wrap-up) over the KPI window' },
  { field: 'abandonRate', suffix: 'abandon_ratio', help: 'Abandoned / offered over the KPI window' },
  { field: 'occupancy', suffix: 'occupancy_ratio', help: 'Agent occupancy (on-call + wrap-up over on-call + wrap-up + available) over the KPI window' },
  { field: 'fcr', suffix: 'fcr_ratio', help: 'First-contact resolution (resolved / dispositioned) over the KPI window' },
  { field: 'waiting', suffix: 'waiting_calls', help: 'Callers waiting for an agent now' },
  { field: 'longestWaitS', suffix: 'longest_wait_seconds', help: 'Longest current wait' },
  { field: 'offered', suffix: 'offered_calls', help: 'Calls offered over the KPI window' },
  { field: 'answered', suffix: 'answered_calls', help: 'Calls answered over the KPI window' },
  { field: 'abandoned', suffix: 'abandoned_calls', help: 'Calls abandoned over the KPI window' },
];

/**
 * Registers the KPI gauges on `registry`: `ccedge_queue_<kpi>{queue}` and `ccedge_intent_<kpi>{intent}`
 * for every KPI above, and `ccedge_queue_agents{queue,state}` / `ccedge_intent_agents{intent,state}`.
 * Values are read at scrape time from `source.current()`; a KPI without data has no sample.
 */
export function registerKpiMetrics(registry: Registry, source: Pick<KpiService, 'current'>): void {
  for (const scope of ['queue', 'intent'] as const) {
    const pick = (s: KpiSnapshot): QueueKpi[] => (scope === 'queue' ? s.queues : s.intents);
    for (const g of GAUGES) {
      new Gauge({
        name: `ccedge_${scope}_${g.suffix}`,
        help: `${g.help}, by ${scope}`,
        labelNames: [scope],
        registers: [registry],
        collect() {
          this.reset();
          for (const k of pick(source.current())) {
            const v = k[g.field];
            if (v !== null) this.set({ [scope]: k.name }, v);
          }
        },
      });
    }
    new Gauge({
      name: `ccedge_${scope}_agents`,
      help: `Agents serving each ${scope}, by state`,
      labelNames: [scope, 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const k of pick(source.current())) for (const s of AGENT_STATES) this.set({ [scope]: k.name, state: s }, k.agents[s]);
      },
    });
  }
}
