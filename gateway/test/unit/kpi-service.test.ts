import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { Acd } from '../../acd/acd';
import { windowStart } from '../../kpi/config';
import { KpiRecorder } from '../../kpi/kpi-recorder';
import { KpiService, registerKpiMetrics } from '../../kpi/kpi-service';
import { KpiStore } from '../../kpi/kpi-store';
import type { KpiSnapshot } from '../../kpi/kpi-types';
import { AgentStore } from '../../store/agent-store';
import { openKpiDb } from './kpi-db';
import { AGENT_QUEUES, changes, scenario, T0 } from './kpi-scenario';
import { ManualClock } from './manual-clock';

describe('KpiService', () => {
  let env: Awaited<ReturnType<typeof openKpiDb>>;
  let clock: ManualClock;
  let acd: Acd;
  let service: KpiService;
  let recorder: KpiRecorder;
  let updates: KpiSnapshot[];

  beforeEach(async () => {
    env = await openKpiDb();
    const store = new KpiStore(env.db);
    // History: the scripted scenario of kpi.test.ts, and its agents' states.
    for (const e of scenario()) await store.insert(e);
    const agentStore = new AgentStore(env.db);
    for (const c of changes()) await agentStore.recordState(c.agent, c.state, c.state === 'away' ? 'break' : null, null, new Date(c.at));
    clock = new ManualClock(T0 + 1000 * 1000); // the end of the scenario's window
    acd = new Acd({
      clock,
      queues: [
        { name: 'support', ringTimeoutS: 20, wrapUpS: 10 },
        { name: 'sales', ringTimeoutS: 20, wrapUpS: 10 },
        { name: 'empty', ringTimeoutS: 20, wrapUpS: 10 },
      ],
      agents: Object.entries(AGENT_QUEUES).map(([name, queues]) => ({ name, queues })),
    });
    recorder = new KpiRecorder({ store, acd, clock });
    service = new KpiService({ store, recorder, snapshot: () => acd.snapshot(), agentQueues: (a) => AGENT_QUEUES[a], window: '24h', clock });
    updates = [];
    service.on('update', (s) => updates.push(s));
    await service.start();
  });
  afterEach(async () => {
    service.close();
    acd.close();
    await env.cleanup();
  });

  it('GET /api/v1/queues: exactly the documented fields, history KPIs rounded, live state from the ACD', () => {
    const queues = service.queues();
    assert.deepEqual(queues.map((q) => q.name), ['support', 'sales', 'empty']);
    const support = queues[0];
    assert.deepEqual(Object.keys(support).sort(), ['abandonRate', 'abandoned', 'agents', 'aht', 'answered', 'asa', 'away', 'fcr', 'longestWaitS', 'name', 'occupancy', 'offered', 'serviceLevel', 'waiting'].sort());
    // Hand values from kpi.test.ts: SL 2/5, ASA 55/3 s, AHT 160 s, abandon 1/5, FCR 1/3; occupancy
    // 480 / (2268 + 100): this 24 h window also holds dave's 100 s available before the scenario's.
    assert.deepEqual(
      { ...support, agents: undefined },
      { name: 'support', serviceLevel: 0.4, asa: 18.3, aht: 160, abandonRate: 0.2, occupancy: 0.2027, fcr: 0.3333, waiting: 0, longestWaitS: 0, agents: undefined, away: {}, offered: 5, answered: 3, abandoned: 1 },
    );
    // Everyone is offline in this ACD (nobody logged in).
    assert.deepEqual(support.agents, { offline: 3, available: 0, ringing: 0, 'on-call': 0, 'wrap-up': 0, away: 0 });
    assert.deepEqual({ ...queues[2], agents: undefined }, { name: 'empty', serviceLevel: null, asa: null, aht: null, abandonRate: null, occupancy: null, fcr: null, waiting: 0, longestWaitS: 0, agents: undefined, away: {}, offered: 0, answered: 0, abandoned: 0 });
    const intents = service.intents();
    assert.deepEqual(intents.map((i) => [i.name, i.serviceLevel, i.fcr]), [['billing', 0.3333, 0.6667], ['tech', 0.5, 0]]);
    // c7 was still "waiting" in history from before this start: a leftover, not a caller waiting now.
    assert.equal(intents[1].waiting, 0);
  });

  it('follows live calls: waiting now, longest wait, agents by state, and new outcomes', async () => {
    acd.login('alice', { ready: false });
    acd.enqueue('support', { callId: 'n1', caller: '1', callerName: null, intent: 'tech' });
    clock.advance(12_000);
    let support = service.queues()[0];
    assert.equal(support.waiting, 1);
    assert.equal(support.longestWaitS, 12);
    assert.equal(support.agents.away, 1);
    assert.deepEqual(support.away, { login: 1 }, 'away agents by reason');
    const tech = service.intents().find((i) => i.name === 'tech');
    assert.deepEqual(tech?.away, { login: 1 });
    assert.equal(tech?.waiting, 1);
    assert.equal(tech?.longestWaitS, 12);
    acd.setAvailable('alice'); // rings alice: still waiting (ringing)
    assert.equal(service.queues()[0].waiting, 1);
    clock.advance(2_000);
    acd.answer('alice', 'n1'); // 14 s: within T
    clock.advance(1_000);
    support = service.queues()[0];
    assert.equal(support.waiting, 0);
    assert.equal(support.agents['on-call'], 1);
    // 3 of 6 within 20 s now: c1, c5, n1
    assert.equal(support.offered, 6);
    assert.equal(support.serviceLevel, 0.5);
  });

  it('emits update at most once per second, when something changed, and a heartbeat otherwise', () => {
    clock.advance(1000);
    assert.equal(updates.length, 1); // the first
    clock.advance(1000);
    assert.equal(updates.length, 1); // nothing changed
    acd.enqueue('support', { callId: 'n1', caller: '1', callerName: null });
    acd.enqueue('support', { callId: 'n2', caller: '2', callerName: null });
    assert.equal(updates.length, 1); // not before the next tick
    clock.advance(1000);
    assert.equal(updates.length, 2);
    assert.equal(updates[1].queues[0].waiting, 2);
    clock.advance(1000); // longest wait grew: an update
    assert.equal(updates.length, 3);
    acd.abandon('n1');
    acd.abandon('n2');
    clock.advance(1000);
    const n = updates.length;
    clock.advance(9000);
    assert.equal(updates.length, n); // nothing new for 9 s
    clock.advance(1000);
    assert.equal(updates.length, n + 1); // heartbeat 10 s after the last update
    assert.equal(updates.at(-1)?.window.spec, '24h');
  });

  it('registers Prometheus gauges read at scrape time', async () => {
    const registry = new Registry();
    registerKpiMetrics(registry, service);
    const text = await registry.metrics();
    assert.match(text, /^ccedge_queue_service_level_ratio\{queue="support"\} 0\.4$/m);
    assert.match(text, /^ccedge_queue_aht_seconds\{queue="support"\} 160$/m);
    assert.match(text, /^ccedge_intent_fcr_ratio\{intent="billing"\} 0\.6667$/m);
    assert.match(text, /^ccedge_queue_agents\{queue="support",state="offline"\} 3$/m);
    assert.match(text, /^ccedge_queue_waiting_calls\{queue="empty"\} 0$/m);
    assert.doesNotMatch(text, /ccedge_queue_service_level_ratio\{queue="empty"\}/); // no data, no sample
  });

  it('window start: local midnight for today, N hours back otherwise', () => {
    const now = Date.UTC(2025, 5, 1, 12, 34, 56);
    const midnight = new Date(now);
    midnight.setHours(0, 0, 0, 0);
    assert.equal(windowStart('today', now), midnight.getTime());
    assert.equal(windowStart('8h', now), now - 8 * 3_600_000);
    assert.throws(() => windowStart('yesterday', now), RangeError);
  });
});
