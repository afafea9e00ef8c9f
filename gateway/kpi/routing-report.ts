/**
 * `ccedge report routing --since 7d`: KPIs per queue and per intent over a past period, the
 * intents whose service level or FCR is below target, and the agents who resolved each intent best.
 */
import type { Db } from '../store/db';
import { KpiStore } from './kpi-store';
import {
  agentIntervals,
  DEFAULT_KPI_OPTIONS,
  intentQueues,
  kpisByIntent,
  kpisByQueue,
  mergeByCall,
  outcomesFromEvents,
  type AgentQueues,
  type KpiOptions,
  type KpiValues,
} from './kpi';

export interface RoutingReportOptions {
  /** Start: `7d`, `24h`, `2w`, an ISO date/time, a ms epoch or a Date. */
  since: string | number | Date;
  /** End (default now). */
  until?: number | Date;
  targets?: { serviceLevel?: number; fcr?: number };
  kpi?: Partial<KpiOptions>;
  /** Queues each agent serves (from the agents config); absent: every agent counts for every queue. */
  agentQueues?: Readonly<Record<string, readonly string[] | null | undefined>>;
  /** Skill levels by agent (from the agents config), shown next to the best agents. */
  skills?: Readonly<Record<string, Readonly<Record<string, number>> | undefined>>;
  /** Best agents listed per intent (default 3). */
  topAgents?: number;
  /** "Now" for relative `since` (default Date.now()). */
  now?: number;
}

export interface AgentResolution {
  agent: string;
  dispositions: number;
  resolved: number;
  /** resolved ÷ dispositions. */
  rate: number;
  /** Lower bound of the 95 % Wilson interval of the rate: ranks 9/10 above 1/1. */
  score: number;
  /** AHT of this agent's calls of the intent, seconds. */
  ahtS: number | null;
  skills: Readonly<Record<string, number>> | null;
}

export type TargetMiss = 'serviceLevel' | 'fcr';

export interface RoutingReport {
  from: number;
  to: number;
  targets: { serviceLevel: number; fcr: number };
  options: KpiOptions;
  queues: Array<{ name: string; kpis: KpiValues }>;
  intents: Array<{ name: string; queues: string[]; kpis: KpiValues; belowTarget: TargetMiss[]; bestAgents: AgentResolution[] }>;
}

const UNITS_MS: Record<string, number> = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `7d` / `24h` / `2w` before `now`, an ISO date or time, or a ms epoch; throws RangeError otherwise. */
export function parseSince(since: string | number | Date, now: number): number {
  if (since instanceof Date) return since.getTime();
  if (typeof since === 'number') return since;
  const m = /^(\d{1,5})([hdw])$/.exec(since.trim());
  if (m) return now - Number(m[1]) * UNITS_MS[m[2]];
  if (/^\d{4}-\d{2}-\d{2}/.test(since)) {
    const t = Date.parse(since);
    if (Number.isFinite(t)) return t;
  }
  throw new RangeError(`--since must be like 7d, 24h, 2w or an ISO date, got "${since}"`);
}

/** Wilson score interval lower bound (z = 1.96). */
export function wilsonLower(successes: number, n: number, z = 1.96): number {
  if (n === 0) return 0;
  const p = successes / n;
  const z2 = z * z;
  return (p + z2 / (2 * n) - z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
}

export async function buildRoutingReport(db: Db, opts: RoutingReportOptions): Promise<RoutingReport> {
  const now = opts.now ?? Date.now();
  const from = parseSince(opts.since, now);
  const to = opts.until === undefined ? now : opts.until instanceof Date ? opts.until.getTime() : opts.until;
  if (!(from < to)) throw new RangeError('the report period is empty (since is not before until)');
  const options: KpiOptions = { ...DEFAULT_KPI_OPTIONS, ...opts.kpi };
  const targets = { serviceLevel: opts.targets?.serviceLevel ?? 0.8, fcr: opts.targets?.fcr ?? 0.7 };
  const store = new KpiStore(db);
  const [events, changes] = await Promise.all([store.eventsOfCallsOffered(from, to), store.agentChanges(from, to)]);
  const outcomes = outcomesFromEvents(events);
  const intervals = agentIntervals(changes, from, to);
  const agentQueues: AgentQueues = (agent) => opts.agentQueues?.[agent];
  const queues = [...kpisByQueue(outcomes, intervals, agentQueues, options)].sort((a, b) => a[0].localeCompare(b[0])).map(([name, kpis]) => ({ name, kpis }));
  const queuesOf = intentQueues(outcomes);
  const merged = mergeByCall(outcomes);
  const intents = [...kpisByIntent(outcomes, intervals, agentQueues, options)].map(([name, kpis]) => {
    const belowTarget: TargetMiss[] = [];
    if (kpis.serviceLevel !== null && kpis.serviceLevel < targets.serviceLevel) belowTarget.push('serviceLevel');
    if (kpis.fcr !== null && kpis.fcr < targets.fcr) belowTarget.push('fcr');
    const byAgent = new Map<string, { dispositions: number; resolved: number; handle: number[] }>();
    for (const o of merged) {
      if (o.intent !== name || o.agent === null) continue;
      let a = byAgent.get(o.agent);
      if (!a) byAgent.set(o.agent, (a = { dispositions: 0, resolved: 0, handle: [] }));
      if (o.ended && o.wrapMs !== null) a.handle.push((o.talkMs ?? 0) + (o.holdMs ?? 0) + o.wrapMs);
      if (o.disposition === null) continue;
      a.dispositions++;
      if (o.disposition === 'resolved') a.resolved++;
    }
    const bestAgents: AgentResolution[] = [...byAgent]
      .filter(([, a]) => a.dispositions > 0)
      .map(([agent, a]) => ({
        agent,
        dispositions: a.dispositions,
        resolved: a.resolved,
        rate: a.resolved / a.dispositions,
        score: wilsonLower(a.resolved, a.dispositions),
        ahtS: a.handle.length ? a.handle.reduce((x, y) => x + y, 0) / a.handle.length / 1000 : null,
        skills: opts.skills?.[agent] ?? null,
      }))
      .sort((a, b) => b.score - a.score || b.resolved - a.resolved || a.agent.localeCompare(b.agent))
      .slice(0, opts.topAgents ?? 3);
    return { name, queues: [...(queuesOf.get(name) ?? [])].sort(), kpis, belowTarget, bestAgents };
  });
  return { from, to, targets, options, queues, intents };
}

// ---- text ----

const pct = (v: number | null): string => (v === null ? '-' : `${(v * 100).toFixed(1)}%`);

function mmss(s: number | null): string {
  if (s === null) return '-';
  const t = Math.round(s);
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => `${r.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd()}\n`;
  return line(header) + rows.map(line).join('');
}

const KPI_HEADER = ['offered', 'answered', 'abandoned', 'SL', 'ASA', 'AHT', 'abandon', 'occupancy', 'FCR'];

function kpiCells(k: KpiValues): string[] {
  return [String(k.offered), String(k.answered), String(k.abandoned), pct(k.serviceLevel), mmss(k.asaS), mmss(k.ahtS), pct(k.abandonRate), pct(k.occupancy), pct(k.fcr)];
}

const stamp = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 16);

export function formatRoutingReport(r: RoutingReport): string {
  const o = r.options;
  const abandons =
    o.abandons === 'exclude-short' ? `abandons under ${o.shortAbandonS} s not counted, others fail SL` : o.abandons === 'fail' ? 'every abandon fails SL' : 'abandons left out of SL';
  let out = `Routing report ${stamp(r.from)} to ${stamp(r.to)} UTC\n`;
  out += `Targets: service level ${pct(r.targets.serviceLevel)} answered within ${o.serviceLevelS} s, FCR ${pct(r.targets.fcr)} (${abandons})\n\n`;

  out += 'By queue\n';
  out += r.queues.length ? table(['queue', ...KPI_HEADER], r.queues.map((q) => [q.name, ...kpiCells(q.kpis)])) : '  no calls in this period\n';

  out += '\nBy intent\n';
  if (r.intents.length === 0) {
    out += '  no calls with an intent in this period\n';
    return out;
  }
  out += table(
    ['intent', 'queues', ...KPI_HEADER, 'below target'],
    r.intents.map((i) => [i.name, i.queues.join(','), ...kpiCells(i.kpis), i.belowTarget.map((t) => (t === 'serviceLevel' ? 'SL' : 'FCR')).join(', ')]),
  );

  const below = r.intents.filter((i) => i.belowTarget.length > 0);
  out += '\nBelow target\n';
  if (below.length === 0) out += '  none: every intent meets its service level and FCR targets\n';
  for (const i of below) {
    const misses = i.belowTarget.map((t) =>
      t === 'serviceLevel' ? `SL ${pct(i.kpis.serviceLevel)} < ${pct(r.targets.serviceLevel)}` : `FCR ${pct(i.kpis.fcr)} < ${pct(r.targets.fcr)}`,
    );
    out += `  ! ${i.name}: ${misses.join('; ')}\n`;
  }

  out += '\nBest at resolving (resolved/dispositions, ranked by the 95% Wilson lower bound)\n';
  for (const i of r.intents) {
    if (i.bestAgents.length === 0) {
      out += `  ${i.name}: no dispositions\n`;
      continue;
    }
    const agents = i.bestAgents.map((a) => {
      const skills = a.skills && Object.keys(a.skills).length ? ` [${Object.entries(a.skills).map(([s, l]) => `${s} ${l}`).join(', ')}]` : '';
      return `${a.agent} ${a.resolved}/${a.dispositions} (${pct(a.rate)}, AHT ${mmss(a.ahtS)})${skills}`;
    });
    out += `  ${i.name}: ${agents.join('; ')}\n`;
  }
  return out;
}

/** The report as text (what the CLI prints). */
export async function routingReport(db: Db, opts: RoutingReportOptions): Promise<string> {
  return formatRoutingReport(await buildRoutingReport(db, opts));
}
