import assert from 'node:assert/strict';
import { Acd } from '../../acd/acd';
import { computeKpis, kpisByQueue, mergeByCall, outcomesFromEvents } from '../../kpi/kpi';
import { KpiRecorder } from '../../kpi/kpi-recorder';
import { KpiService } from '../../kpi/kpi-service';
import { KpiStore } from '../../kpi/kpi-store';
import { openKpiDb } from './kpi-db';
import { ManualClock } from './manual-clock';

describe('KpiRecorder: transfers', () => {
  let env: Awaited<ReturnType<typeof openKpiDb>>;
  let store: KpiStore;
  let clock: ManualClock;

  beforeEach(async () => {
    env = await openKpiDb();
    store = new KpiStore(env.db);
    clock = new ManualClock();
  });
  afterEach(() => env.cleanup());

  function setup() {
    const acd = new Acd({
      clock,
      queues: [
        { name: 'support', ringTimeoutS: 20, wrapUpS: 30 },
        { name: 'sales', ringTimeoutS: 20, wrapUpS: 0 },
      ],
      agents: [{ name: 'alice', queues: ['support'] }, { name: 'bob', queues: ['sales'] }],
    });
    const recorder = new KpiRecorder({ store, acd, clock });
    return { acd, recorder };
  }

  it('to a queue: handled by the first agent in the first queue, offered and answered in the target queue', async () => {
    const { acd, recorder } = setup();
    const t0 = clock.now();
    acd.login('alice', { ready: true });
    acd.enqueue('support', { callId: 'c1', caller: '1001', callerName: null, intent: 'billing' });
    clock.advance(10_000);
    acd.answer('alice', 'c1');
    clock.advance(60_000);
    acd.transfer('alice', 'c1', { queue: 'sales' });
    clock.advance(5_000);
    acd.login('bob', { ready: true });
    clock.advance(2_000);
    acd.answer('bob', 'c1'); // 7 s after the transfer
    clock.advance(30_000);
    acd.callEnded('bob', 'c1');
    clock.advance(30_000); // alice's wrap-up is over
    await recorder.flush();

    const events = await store.eventsOfCallsOffered(t0, clock.now() + 1);
    assert.deepEqual(
      events.map((e) => `${e.queue}:${e.type}:${e.agent ?? ''}:${e.waitMs ?? ''}:${e.talkMs ?? ''}:${e.intent ?? ''}`),
      [
        'support:offered::::billing',
        'support:answered:alice:10000::billing',
        'support:ended:alice::60000:billing',
        'sales:offered::::billing',
        'sales:answered:bob:7000::billing',
        'sales:ended:bob::30000:billing',
      ],
    );
    assert.deepEqual(events.filter((e) => e.type === 'ended').map((e) => [e.agent, e.wrapMs]), [['alice', 30_000], ['bob', 0]], 'each agent\'s own wrap-up');
    const outcomes = outcomesFromEvents(events);
    const byQueue = kpisByQueue(outcomes, [], () => null);
    assert.deepEqual([byQueue.get('support')?.offered, byQueue.get('support')?.answered, byQueue.get('support')?.ahtS], [1, 1, 90], 'alice: talk 60 + wrap 30');
    assert.deepEqual([byQueue.get('sales')?.offered, byQueue.get('sales')?.answered, byQueue.get('sales')?.asaS], [1, 1, 7]);
    // By call (intent views): one call, answered, the waits of both segments.
    const merged = mergeByCall(outcomes);
    assert.equal(merged.length, 1);
    assert.deepEqual([merged[0].result, merged[0].agent, merged[0].waitMs], ['answered', 'bob', 17_000]);
    assert.equal(computeKpis(merged, []).offered, 1);
  });

  it('to a named agent: offered again in the call\'s queue and answered by that agent; a RONA there is not a new offer', async () => {
    const { acd, recorder } = setup();
    const t0 = clock.now();
    acd.login('alice', { ready: true });
    acd.enqueue('support', { callId: 'c1', caller: '1001', callerName: null });
    clock.advance(4_000);
    acd.answer('alice', 'c1');
    clock.advance(20_000);
    acd.login('bob', { ready: true });
    acd.transfer('alice', 'c1', { agent: 'bob' });
    clock.advance(20_000); // bob does not answer: back to support's head
    acd.setAvailable('bob');
    clock.advance(10_000); // alice's wrap-up ends: she is offered it again
    acd.answer('alice', 'c1');
    clock.advance(5_000);
    acd.callEnded('alice', 'c1');
    await recorder.flush();

    const events = await store.eventsOfCallsOffered(t0, clock.now() + 1);
    assert.deepEqual(
      events.map((e) => `${e.queue}:${e.type}:${e.agent ?? ''}:${e.waitMs ?? ''}`),
      ['support:offered::', 'support:answered:alice:4000', 'support:ended:alice:', 'support:offered::', 'support:answered:alice:30000', 'support:ended:alice:'],
    );
    const support = kpisByQueue(outcomesFromEvents(events), [], () => null).get('support');
    assert.deepEqual([support?.offered, support?.answered, support?.answeredWithinT], [2, 2, 1]);
  });

  it('the live KPIs give each agent their own wrap-up of a transferred call', async () => {
    const { acd, recorder } = setup();
    const service = new KpiService({ store, recorder, snapshot: () => acd.snapshot(), agentQueues: () => null, window: '24h', clock });
    await service.start();
    try {
      acd.login('alice', { ready: true });
      acd.login('bob', { ready: true });
      acd.enqueue('support', { callId: 'c1', caller: '1001', callerName: null });
      acd.answer('alice', 'c1');
      clock.advance(60_000);
      acd.transfer('alice', 'c1', { queue: 'sales' });
      acd.answer('bob', 'c1');
      clock.advance(20_000);
      acd.callEnded('bob', 'c1'); // sales: no wrap-up; bob's wrap (0) must not land on alice's row
      clock.advance(10_000); // alice's 30 s wrap-up ends
      await recorder.flush();
      const aht = Object.fromEntries(service.queues().map((q) => [q.name, q.aht]));
      assert.deepEqual(aht, { support: 90, sales: 20 }, 'alice: 60 talk + 30 wrap; bob: 20 talk + 0 wrap');
    } finally {
      service.close();
      acd.close();
    }
  });
});
