/**
 * Writes a scripted day of calls into a data dir — the queue events the live system records —
 * so `ccedge report routing` can be shown on known traffic. Deterministic (seeded).
 * Run: node dist/scripts/demo/scripted-day.js DATA_DIR && CCEDGE_DATA_DIR=DATA_DIR npx ccedge report routing --since 1d
 */
import path from 'node:path';
import type { Disposition, QueueEvent } from '../../gateway/kpi/kpi';
import { KpiStore } from '../../gateway/kpi/kpi-store';
import { AgentStore } from '../../gateway/store/agent-store';
import { Db } from '../../gateway/store/db';

/** Small deterministic PRNG (mulberry32) so the day is the same on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Profile {
  intent: string;
  queue: string;
  share: number;
  agents: Array<{ name: string; resolves: number }>;
  meanWaitS: number;
  abandonAfterS: number;
  talkS: number;
}

const PROFILES: Profile[] = [
  { intent: 'technical_support', queue: 'level3', share: 0.35, agents: [{ name: 'eng-anna', resolves: 0.85 }, { name: 'eng-omar', resolves: 0.6 }], meanWaitS: 35, abandonAfterS: 90, talkS: 420 },
  { intent: 'billing_inquiry', queue: 'billing', share: 0.3, agents: [{ name: 'bill-kim', resolves: 0.9 }], meanWaitS: 12, abandonAfterS: 120, talkS: 240 },
  { intent: 'general', queue: 'general', share: 0.35, agents: [{ name: 'gen-lee', resolves: 0.75 }, { name: 'gen-sam', resolves: 0.7 }], meanWaitS: 8, abandonAfterS: 150, talkS: 180 },
];

async function main(): Promise<void> {
  const dataDir = path.resolve(process.argv[2] ?? './var-scripted-day');
  const db = await Db.open(path.join(dataDir, 'ccedge.db'));
  const kpi = new KpiStore(db);
  const agents = new AgentStore(db);
  const rand = rng(42);
  const day = new Date();
  day.setUTCHours(8, 0, 0, 0);
  const start = day.getTime() - 24 * 3600_000 + 3600_000; // yesterday 09:00 UTC
  const events: QueueEvent[] = [];
  let n = 0;
  for (let minute = 0; minute < 8 * 60; minute += 2) {
    const p = rand() < PROFILES[0].share ? PROFILES[0] : rand() < 0.46 ? PROFILES[1] : PROFILES[2];
    const at = start + minute * 60_000 + Math.floor(rand() * 60_000);
    const id = `day-${++n}`;
    const wait = Math.round(-Math.log(1 - rand()) * p.meanWaitS);
    const base = { queue: p.queue, intent: p.intent, callId: id, agent: null, waitMs: null, talkMs: null, holdMs: null, wrapMs: null, disposition: null as Disposition | null };
    events.push({ ...base, ts: at, type: 'offered' });
    if (wait > p.abandonAfterS) {
      events.push({ ...base, ts: at + p.abandonAfterS * 1000, type: 'abandoned', waitMs: p.abandonAfterS * 1000 });
      continue;
    }
    const agent = p.agents[Math.floor(rand() * p.agents.length)];
    const talk = Math.round(p.talkS * (0.5 + rand()));
    const hold = rand() < 0.2 ? Math.round(30 + rand() * 60) : 0;
    const wrap = Math.round(20 + rand() * 40);
    const ans = at + wait * 1000;
    const end = ans + (talk + hold) * 1000;
    events.push({ ...base, ts: ans, type: 'answered', agent: agent.name, waitMs: wait * 1000 });
    events.push({ ...base, ts: end, type: 'ended', agent: agent.name, talkMs: talk * 1000, holdMs: hold * 1000, wrapMs: wrap * 1000 });
    const r = rand();
    const d: Disposition = r < agent.resolves ? 'resolved' : r < agent.resolves + (1 - agent.resolves) / 2 ? 'follow-up' : 'not-resolved';
    events.push({ ...base, ts: end + 10_000, type: 'disposition', agent: agent.name, disposition: d });
    await agents.recordState(agent.name, 'on-call', null, id, new Date(ans));
    await agents.recordState(agent.name, 'wrap-up', null, id, new Date(end));
    await agents.recordState(agent.name, 'available', null, null, new Date(end + wrap * 1000));
  }
  for (const e of events.sort((a, b) => a.ts - b.ts)) await kpi.insert(e);
  await db.close();
  process.stdout.write(`wrote ${n} calls (${events.length} queue events) for ${new Date(start).toISOString().slice(0, 10)} into ${dataDir}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
