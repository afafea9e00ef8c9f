import assert from 'node:assert/strict';
import { Acd } from '../../acd/acd';
import { AgentStore } from '../../store/agent-store';
import type { Logger } from '../../logging';
import type { Db } from '../../store/db';
import { KpiRecorder } from '../../kpi/kpi-recorder';
import { KpiStore } from '../../kpi/kpi-store';
import { agentIntervals, computeKpis, kpisByQueue, outcomesFromEvents, type QueueEvent } from '../../kpi/kpi';
import { openKpiDb } from './kpi-db';
import { ManualClock } from './manual-clock';

const call = (id: string, intent: string | null = null) => ({ callId: id, caller: '1001', callerName: null, intent });

describe('KpiStore', () => {
  let env: Awaited<ReturnType<typeof openKpiDb>>;
  let store: KpiStore;
  const t = (sec: number): number => Date.UTC(2025, 0, 1, 9, 0, sec);
  const row = (type: QueueEvent['type'], sec: number, callId: string, over: Partial<QueueEvent> = {}): QueueEvent => ({
    ts: t(sec), queue: 'support', intent: 'billing', callId, agent: null, type, waitMs: null, talkMs: null, holdMs: null, wrapMs: null, disposition: null, ...over,
  });

  beforeEach(async () => {
    env = await openKpiDb();
    store = new KpiStore(env.db);
  });
  afterEach(() => env.cleanup());

  it('returns every event of the calls offered in a range, whenever the later events happened', async () => {
    await store.insert(row('offered', 0, 'a'));
    await store.insert(row('offered', 10, 'b'));
    await store.insert(row('answered', 20, 'a', { agent: 'alice', waitMs: 20_000 }));
    await store.insert(row('offered', 30, 'c'));
    await store.insert(row('ended', 40, 'a', { agent: 'alice', talkMs: 19_999.6, holdMs: 0 }));
    const got = await store.eventsOfCallsOffered(t(0), t(30));
    assert.deepEqual(got.map((e) => `${e.callId}:${e.type}`), ['a:offered', 'b:offered', 'a:answered', 'a:ended']);
    assert.equal(got[3].talkMs, 20_000); // whole ms
    assert.equal(got[0].ts, t(0));
    assert.equal((await store.lastEnded('alice'))?.callId, 'a');
    assert.equal(await store.lastEnded('bob'), undefined);
  });

  it('completes the wrap-up later; closeOpenWrapUps closes what a stop left open', async () => {
    await store.insert(row('offered', 0, 'a'));
    await store.insert(row('ended', 40, 'a', { agent: 'alice', talkMs: 1000, holdMs: 0 }));
    await store.insert(row('offered', 1, 'b'));
    await store.insert(row('ended', 41, 'b', { agent: 'bob', talkMs: 1000, holdMs: 0 }));
    await store.setWrap('a', 7000);
    assert.equal(await store.closeOpenWrapUps(), 1);
    const ended = (await store.eventsOfCallsOffered(t(0), t(60))).filter((e) => e.type === 'ended');
    assert.deepEqual(ended.map((e) => [e.callId, e.wrapMs]), [['a', 7000], ['b', 0]]);
  });

  it('refuses an unknown event type or disposition (CHECK constraints)', async () => {
    await assert.rejects(store.insert(row('bogus' as QueueEvent['type'], 0, 'x')), /CHECK constraint/);
    await assert.rejects(store.insert(row('disposition', 0, 'x', { disposition: 'maybe' as QueueEvent['disposition'] })), /CHECK constraint/);
  });

  it('reads agent state changes with the state each agent was in when the window starts', async () => {
    const agents = new AgentStore(env.db);
    await agents.recordState('alice', 'available', null, null, new Date(t(-60)));
    await agents.recordState('alice', 'away', 'break', null, new Date(t(-30)));
    await agents.recordState('bob', 'available', null, null, new Date(t(-10)));
    await agents.recordState('alice', 'available', null, null, new Date(t(20)));
    await agents.recordState('bob', 'offline', null, null, new Date(t(200))); // after the window
    const changes = await store.agentChanges(t(0), t(100));
    assert.deepEqual(changes.map((c) => [c.agent, c.state, (c.at - t(0)) / 1000]), [['alice', 'away', -30], ['bob', 'available', -10], ['alice', 'available', 20]]);
    const iv = agentIntervals(changes, t(0), t(100));
    assert.deepEqual(iv.map((i) => [i.agent, i.state, (i.to - i.from) / 1000]), [['alice', 'away', 20], ['alice', 'available', 80], ['bob', 'available', 100]]);
  });
});

describe('KpiRecorder on the real ACD', () => {
  let env: Awaited<ReturnType<typeof openKpiDb>>;
  let db: Db;
  let store: KpiStore;
  let clock: ManualClock;

  beforeEach(async () => {
    env = await openKpiDb();
    db = env.db;
    store = new KpiStore(db);
    clock = new ManualClock();
  });
  afterEach(() => env.cleanup());

  function setup(queues = [{ name: 'support', ringTimeoutS: 20, wrapUpS: 30 }], agents = [{ name: 'alice' }, { name: 'bob' }]) {
    const acd = new Acd({ clock, queues, agents });
    const recorder = new KpiRecorder({ store, acd, clock });
    const emitted: QueueEvent[] = [];
    const wrapped: Array<[string, number]> = [];
    recorder.on('event', (e) => emitted.push(e));
    recorder.on('wrapped', (id, ms) => wrapped.push([id, ms]));
    return { acd, recorder, emitted, wrapped };
  }

  it('records offered, answered, hold, ended, wrap-up, abandon and disposition with the right timings', async () => {
    const { acd, recorder, wrapped } = setup();
    const t0 = clock.now();
    acd.login('alice', { ready: true });
    acd.enqueue('support', call('c1', 'billing')); // rings alice at once
    clock.advance(10_000);
    acd.answer('alice', 'c1'); // waited 10 s
    clock.advance(50_000);
    recorder.hold('c1', true);
    clock.advance(20_000);
    recorder.hold('c1', false);
    clock.advance(50_000);
    acd.callEnded('alice', 'c1'); // connected 120 s: hold 20, talk 100
    clock.advance(30_000); // the queue's wrap-up (30 s) runs out: available
    assert.deepEqual(wrapped, [['c1', 30_000]]);

    // bob: no disposition for a call he did not take; alice: not for another call.
    assert.deepEqual(await recorder.disposition('bob', 'c1', 'resolved'), { ok: false, code: 'WS_NO_SUCH_CALL', message: 'a disposition is for the last call you finished' });
    assert.equal((await recorder.disposition('alice', 'c9', 'resolved')).ok, false);
    assert.deepEqual(await recorder.disposition('alice', 'c1', 'not-resolved'), { ok: true, callId: 'c1', disposition: 'not-resolved' });
    assert.deepEqual(await recorder.disposition('alice', 'c1', 'resolved'), { ok: true, callId: 'c1', disposition: 'resolved' }); // changed mind

    acd.setAway('alice', 'break');
    acd.enqueue('support', call('c2', 'tech'));
    clock.advance(3_000);
    acd.abandon('c2'); // short abandon, 3 s
    acd.enqueue('support', call('c3', 'tech'));
    clock.advance(25_000);
    acd.abandon('c3'); // 25 s
    await recorder.flush();

    const events = await store.eventsOfCallsOffered(t0, clock.now() + 1);
    const ended = events.find((e) => e.type === 'ended');
    assert.deepEqual(
      { talk: ended?.talkMs, hold: ended?.holdMs, wrap: ended?.wrapMs, agent: ended?.agent, intent: ended?.intent },
      { talk: 100_000, hold: 20_000, wrap: 30_000, agent: 'alice', intent: 'billing' },
    );
    // Hand computation: c1 answered in 10 s (within 20), c2 short abandon (not offered), c3 abandon
    // (offered, fails): offered 2, SL 1/2, ASA 10 s, AHT 100 + 20 + 30 = 150 s, abandon 1/2, FCR 1/1.
    const k = computeKpis(outcomesFromEvents(events), []);
    assert.equal(k.offered, 2);
    assert.equal(k.serviceLevel, 0.5);
    assert.equal(k.asaS, 10);
    assert.equal(k.ahtS, 150);
    assert.equal(k.abandonRate, 0.5);
    assert.equal(k.fcr, 1);
  });

  it('ringing time counts as wait, RONA keeps the call offered once, and a disposition survives a restart', async () => {
    const { acd, recorder } = setup();
    const t0 = clock.now();
    acd.login('alice', { ready: true });
    acd.login('bob', { ready: true });
    acd.enqueue('support', call('c1'));
    clock.advance(20_000); // RONA at the first agent, offered to the other
    clock.advance(5_000);
    const ringing = acd.snapshot().agents.find((a) => a.state === 'ringing');
    assert.ok(ringing);
    acd.answer(ringing.name, 'c1'); // waited 25 s
    clock.advance(60_000);
    acd.callEnded(ringing.name, 'c1');
    clock.advance(1_000);
    await recorder.flush();
    const fresh = new KpiRecorder({ store, acd: { on: () => undefined }, clock }); // as after a restart
    assert.equal((await fresh.disposition(ringing.name, 'c1', 'follow-up')).ok, true);
    const events = await store.eventsOfCallsOffered(t0, clock.now() + 1);
    assert.deepEqual(events.map((e) => e.type), ['offered', 'answered', 'ended', 'disposition']);
    assert.equal(events[1].waitMs, 25_000);
  });

  it('max-wait overflow: overflowed in the first queue, offered and answered in the second', async () => {
    const { acd, recorder } = setup(
      [
        { name: 'support', ringTimeoutS: 20, wrapUpS: 0, maxWaitS: 30, overflow: { queue: 'backup' } },
        { name: 'backup', ringTimeoutS: 20, wrapUpS: 0 },
      ] as never,
      [{ name: 'alice', queues: ['backup'] } as never],
    );
    const t0 = clock.now();
    acd.enqueue('support', call('c1', 'billing'));
    clock.advance(30_000); // overflows to backup
    clock.advance(4_000);
    acd.login('alice', { ready: true }); // rings alice at once
    clock.advance(2_000);
    acd.answer('alice', 'c1');
    clock.advance(10_000);
    acd.callEnded('alice', 'c1');
    await recorder.flush();
    const events = await store.eventsOfCallsOffered(t0, clock.now() + 1);
    assert.deepEqual(events.map((e) => `${e.queue}:${e.type}:${e.waitMs ?? ''}`), ['support:offered:', 'support:overflowed:30000', 'backup:offered:', 'backup:answered:6000', 'backup:ended:']);
    const byQueue = kpisByQueue(outcomesFromEvents(events), [], () => null);
    assert.equal(byQueue.get('support')?.serviceLevel, 0); // overflowed: failed
    assert.equal(byQueue.get('backup')?.serviceLevel, 1); // answered 6 s after arriving there
    assert.equal(byQueue.get('backup')?.ahtS, 10); // wrapUpS 0: wrap 0
  });

  it('a call the caller leaves for a callback is overflowed, not abandoned', async () => {
    const { acd, recorder } = setup();
    const t0 = clock.now();
    acd.enqueue('support', call('c1'));
    clock.advance(40_000);
    recorder.overflowed('c1'); // what the desk does before closing the call for a callback
    acd.abandon('c1');
    await recorder.flush();
    const events = await store.eventsOfCallsOffered(t0, clock.now() + 1);
    assert.deepEqual(events.map((e) => e.type), ['offered', 'overflowed']);
  });

  it('a failing write is logged and does not reach the ACD', async () => {
    const acd = new Acd({ clock, queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 30 }], agents: [{ name: 'alice' }] });
    const errors: unknown[] = [];
    const log = { error: (o: unknown) => errors.push(o) } as unknown as Logger;
    const recorder = new KpiRecorder({ store, acd, clock, log });
    await db.transaction((d) => d.exec('DROP TABLE queue_events'));
    acd.login('alice', { ready: true });
    assert.doesNotThrow(() => acd.enqueue('support', call('c1')));
    await recorder.flush();
    assert.equal(errors.length, 1);
  });
});
