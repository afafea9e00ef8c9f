import assert from 'node:assert/strict';
import { AGENT_QUEUES, changes, ev, handled, s, scenario, T0 } from './kpi-scenario';
import {
  abandonRate,
  agentIntervals,
  aht,
  asa,
  computeKpis,
  fcr,
  kpisByIntent,
  kpisByQueue,
  mergeByCall,
  occupancy,
  outcomesFromEvents,
  serviceLevel,
  type KpiOptions,
  type QueueEvent,
} from '../../kpi/kpi';

const agentQueues = (a: string): string[] | undefined => AGENT_QUEUES[a];
const opts = (o: Partial<KpiOptions> = {}): KpiOptions => ({ serviceLevelS: 20, abandons: 'exclude-short', shortAbandonS: 5, ...o });

function near(actual: number | null, expected: number, what: string): void {
  assert.ok(actual !== null, `${what} is null`);
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} != ${expected}`);
}

describe('KPIs (pure functions) on a scripted scenario', () => {
  const outcomes = outcomesFromEvents(scenario());
  const intervals = agentIntervals(changes(), s(0), s(1000));
  const support = outcomes.filter((o) => o.queue === 'support');

  it('builds one segment per call and queue', () => {
    assert.equal(outcomes.length, 8); // c1..c7 in support, c6 again in sales
    const c6 = outcomes.filter((o) => o.callId === 'c6');
    assert.deepEqual(c6.map((o) => [o.queue, o.result, o.waitMs]), [['support', 'overflowed', 60_000], ['sales', 'answered', 10_000]]);
    assert.equal(outcomes.find((o) => o.callId === 'c7')?.result, 'waiting');
  });

  it('support queue: every KPI equals the hand computation', () => {
    // answered c1 (10 s), c2 (30 s), c5 (15 s): within 20 s = c1, c5 → 2
    // overflowed c6: counts, failed. Abandons: c3 (3 s, short), c4 (30 s).
    // exclude-short: offered = 3 answered + 1 overflowed + 1 long abandon = 5
    const k = kpisByQueue(outcomes, intervals, agentQueues, opts()).get('support');
    assert.ok(k);
    assert.equal(k.offered, 5);
    assert.equal(k.answered, 3);
    assert.equal(k.abandoned, 1);
    assert.equal(k.shortAbandoned, 1);
    assert.equal(k.overflowed, 1);
    near(k.serviceLevel, 2 / 5, 'SL'); // 0.4
    near(k.asaS, (10 + 30 + 15) / 3, 'ASA'); // 18.33 s
    near(k.ahtS, (150 + 240 + 90) / 3, 'AHT'); // 160 s
    near(k.abandonRate, 1 / 5, 'abandon rate'); // 0.2
    // occupancy: busy alice 150 + bob 240 + dave 90 = 480; available 150 + 728 + 910 = 1788
    near(k.occupancy, 480 / (480 + 1788), 'occupancy'); // 0.2116
    near(k.fcr, 1 / 3, 'FCR'); // c1 resolved of c1, c2, c5
  });

  it('sales queue: the overflowed call answered there', () => {
    const k = kpisByQueue(outcomes, intervals, agentQueues, opts()).get('sales');
    assert.ok(k);
    assert.equal(k.offered, 1);
    near(k.serviceLevel, 1, 'SL'); // waited 10 s in sales
    near(k.asaS, 10, 'ASA');
    near(k.ahtS, 60, 'AHT');
    near(k.occupancy, 60 / (60 + 940), 'occupancy'); // carol only: 0.06
    near(k.fcr, 1, 'FCR');
  });

  it('abandon handling: fail, exclude and exclude-short', () => {
    // fail: denominator 3 + 1 + 2 abandons = 6 → SL 2/6; abandon rate 2/6
    near(serviceLevel(support, opts({ abandons: 'fail' })), 2 / 6, 'SL fail');
    near(abandonRate(support, opts({ abandons: 'fail' })), 2 / 6, 'abandon rate fail');
    // exclude: denominator 3 + 1 = 4 → SL 2/4; abandons still offered for the abandon rate: 2/6
    near(serviceLevel(support, opts({ abandons: 'exclude' })), 2 / 4, 'SL exclude');
    near(abandonRate(support, opts({ abandons: 'exclude' })), 2 / 6, 'abandon rate exclude');
    // exclude-short with a 40 s threshold: both abandons are short → never offered: SL 2/4, rate 0/4
    near(serviceLevel(support, opts({ shortAbandonS: 40 })), 2 / 4, 'SL exclude-short 40 s');
    near(abandonRate(support, opts({ shortAbandonS: 40 })), 0, 'abandon rate exclude-short 40 s');
    // T = 30 s: c2 (30 s) now counts: 3/5
    near(serviceLevel(support, opts({ serviceLevelS: 30 })), 3 / 5, 'SL T=30');
  });

  it('intents: one outcome per call, waits summed across queues', () => {
    const byIntent = kpisByIntent(outcomes, intervals, agentQueues, opts());
    assert.deepEqual([...byIntent.keys()], ['billing', 'tech']);
    const billing = byIntent.get('billing');
    assert.ok(billing);
    // c1 (10 s), c2 (30 s), c6 (60 + 10 = 70 s): within 20 s = c1 → 1/3
    assert.equal(billing.offered, 3);
    near(billing.serviceLevel, 1 / 3, 'billing SL');
    near(billing.asaS, (10 + 30 + 70) / 3, 'billing ASA'); // 36.67 s
    near(billing.ahtS, (150 + 240 + 60) / 3, 'billing AHT'); // 150 s
    near(billing.abandonRate, 0, 'billing abandon rate');
    near(billing.fcr, 2 / 3, 'billing FCR'); // c1, c6 resolved; c2 not
    // billing went through support and sales: every agent: busy 480 + 60, available 1788 + 940
    near(billing.occupancy, 540 / (540 + 2728), 'billing occupancy');

    const tech = byIntent.get('tech');
    assert.ok(tech);
    // c3 short abandon (not offered), c4 abandon 30 s, c5 answered 15 s, c7 waiting
    assert.equal(tech.offered, 2);
    near(tech.serviceLevel, 1 / 2, 'tech SL');
    near(tech.abandonRate, 1 / 2, 'tech abandon rate');
    near(tech.asaS, 15, 'tech ASA');
    near(tech.ahtS, 90, 'tech AHT');
    near(tech.fcr, 0, 'tech FCR'); // follow-up is not resolved
    near(tech.occupancy, 480 / 2268, 'tech occupancy');
  });

  it('mergeByCall keeps the first entry time and the last result', () => {
    const c6 = mergeByCall(outcomes).find((o) => o.callId === 'c6');
    assert.ok(c6);
    assert.equal(c6.offeredAt, s(50));
    assert.equal(c6.result, 'answered');
    assert.equal(c6.waitMs, 70_000);
    assert.equal(c6.queue, 'sales');
    assert.equal(c6.disposition, 'resolved');
  });

  it('agent intervals start in the state held before the window and are clipped to it', () => {
    const dave = intervals.filter((i) => i.agent === 'dave').map((i) => [i.state, (i.from - T0) / 1000, (i.to - T0) / 1000]);
    assert.deepEqual(dave, [['available', 0, 55], ['on-call', 55, 125], ['wrap-up', 125, 145], ['available', 145, 1000]]);
    const bob = intervals.filter((i) => i.agent === 'bob').map((i) => i.state);
    assert.deepEqual(bob, ['offline', 'available', 'ringing', 'on-call', 'wrap-up', 'available']);
    // Same-millisecond changes leave no empty interval.
    const same = agentIntervals([{ agent: 'x', state: 'wrap-up', at: s(10) }, { agent: 'x', state: 'available', at: s(10) }], s(0), s(20));
    assert.deepEqual(same.map((i) => i.state), ['offline', 'available']);
  });

  it('a disposition given twice counts once, the latest wins', () => {
    const list = [...handled('d1', 'support', 'billing', 0, 5, 'alice', 10, 0, 5, 'not-resolved'), ev('disposition', 40, 'd1', 'support', 'billing', { agent: 'alice', disposition: 'resolved' })];
    const out = outcomesFromEvents(list);
    near(fcr(out), 1, 'FCR after the change');
  });

  it('AHT waits for the end of wrap-up; empty groups give null, not 0 or NaN', () => {
    const open = outcomesFromEvents([...handled('w1', 'support', null, 0, 5, 'alice', 60, 0, 0, null)].map((e) => (e.type === 'ended' ? { ...e, wrapMs: null } : e)));
    assert.equal(aht(open), null);
    near(asa(open), 5, 'ASA');
    const empty = computeKpis([], []);
    assert.deepEqual(
      [empty.serviceLevel, empty.asaS, empty.ahtS, empty.abandonRate, empty.occupancy, empty.fcr, empty.offered],
      [null, null, null, null, null, null, 0],
    );
    assert.equal(occupancy([{ agent: 'a', state: 'away', from: 0, to: 1000 }]), null);
  });

  it('events of a call offered before the window are ignored', () => {
    const out = outcomesFromEvents([ev('answered', 5, 'old', 'support', null, { waitMs: 100_000 }), ev('ended', 50, 'old', 'support', null, { talkMs: 45_000 })]);
    assert.equal(out.length, 0);
  });
});
