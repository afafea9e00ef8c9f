import assert from 'node:assert/strict';
import { KpiStore } from '../../kpi/kpi-store';
import { buildRoutingReport, parseSince, routingReport, wilsonLower } from '../../kpi/routing-report';
import { AgentStore } from '../../store/agent-store';
import { openKpiDb } from './kpi-db';
import { AGENT_QUEUES, changes, handled, scenario, T0 } from './kpi-scenario';

describe('routing report', () => {
  let env: Awaited<ReturnType<typeof openKpiDb>>;
  const now = T0 + 1000 * 1000;

  before(async () => {
    env = await openKpiDb();
    const store = new KpiStore(env.db);
    const events = [
      ...scenario(),
      // alice resolves two more billing calls; `orders` meets both targets.
      ...handled('b2', 'support', 'billing', 300, 5, 'alice', 60, 0, 10, 'resolved'),
      ...handled('b3', 'support', 'billing', 400, 50, 'alice', 60, 0, 10, 'resolved'),
      ...handled('o1', 'support', 'orders', 500, 5, 'bob', 30, 0, 5, 'resolved'),
      ...handled('o2', 'support', 'orders', 600, 8, 'dave', 30, 0, 5, 'resolved'),
    ];
    for (const e of events) await store.insert(e);
    const agents = new AgentStore(env.db);
    for (const c of changes()) await agents.recordState(c.agent, c.state, c.state === 'away' ? 'break' : null, null, new Date(c.at));
  });
  after(() => env.cleanup());

  it('flags intents below target and ranks the agents who resolved each intent best', async () => {
    const r = await buildRoutingReport(env.db, {
      since: '1d',
      now,
      targets: { serviceLevel: 0.8, fcr: 0.7 },
      agentQueues: AGENT_QUEUES,
      skills: { alice: { billing: 80, support: 50 } },
    });
    assert.deepEqual(r.queues.map((q) => q.name), ['sales', 'support']);
    const byName = Object.fromEntries(r.intents.map((i) => [i.name, i]));
    assert.deepEqual(Object.keys(byName), ['billing', 'orders', 'tech']);
    // billing: c1 (10 s), c2 (30 s), c6 (70 s), b2 (5 s), b3 (50 s): 2 of 5 within 20 s; resolved c1, c6, b2, b3 of 5
    assert.equal(byName.billing.kpis.serviceLevel, 2 / 5);
    assert.equal(byName.billing.kpis.fcr, 4 / 5);
    assert.deepEqual(byName.billing.belowTarget, ['serviceLevel']);
    assert.deepEqual(byName.billing.queues, ['sales', 'support']);
    assert.deepEqual(byName.tech.belowTarget, ['serviceLevel', 'fcr']); // SL 1/2, FCR 0/1
    assert.deepEqual(byName.orders.belowTarget, []);
    // alice 3/3 ranks above carol 1/1 (same rate, more evidence); bob 0/1 last.
    assert.deepEqual(byName.billing.bestAgents.map((a) => [a.agent, a.resolved, a.dispositions]), [['alice', 3, 3], ['carol', 1, 1], ['bob', 0, 1]]);
    assert.deepEqual(byName.billing.bestAgents[0].skills, { billing: 80, support: 50 });
    assert.equal(byName.billing.bestAgents[0].ahtS, (150 + 70 + 70) / 3);
  });

  it('formats it as text for the CLI', async () => {
    const text = await routingReport(env.db, { since: '1d', now, agentQueues: AGENT_QUEUES, skills: { alice: { billing: 80 } } });
    assert.match(text, /^By queue\nqueue +offered/m);
    // support: answered c1 10 s, c2 30, c5 15, b2 5, b3 50, o1 5, o2 8 (7); overflowed c6; abandoned c4
    // (c3 short): offered 9, within 20 s c1 c5 b2 o1 o2 = 5 → 55.6 %
    assert.match(text, /^support +9 +7 +1 +55\.6%/m);
    assert.match(text, /^ {2}! billing: SL 40\.0% < 80\.0%$/m);
    assert.match(text, /^ {2}! tech: SL 50\.0% < 80\.0%; FCR 0\.0% < 70\.0%$/m);
    assert.doesNotMatch(text, /! orders/);
    assert.match(text, /^ {2}billing: alice 3\/3 \(100\.0%, AHT 1:37\) \[billing 80\]; carol 1\/1/m);
  });

  it('parses --since', () => {
    const n = Date.UTC(2025, 0, 8);
    assert.equal(parseSince('7d', n), Date.UTC(2025, 0, 1));
    assert.equal(parseSince('12h', n), n - 12 * 3_600_000);
    assert.equal(parseSince('2w', n), n - 14 * 86_400_000);
    assert.equal(parseSince('2025-01-03', n), Date.UTC(2025, 0, 3));
    assert.throws(() => parseSince('last week', n), RangeError);
    assert.ok(wilsonLower(9, 10) > wilsonLower(1, 1));
    assert.equal(wilsonLower(0, 0), 0);
  });
});
