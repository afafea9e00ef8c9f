import assert from 'node:assert/strict';
import { Acd, type AcdEvents } from '../../acd/acd';
import { AcdError } from '../../acd/errors';
import { ManualClock } from './manual-clock';

type Logged = { [K in keyof AcdEvents]: [K, ...AcdEvents[K]] }[keyof AcdEvents];

const EVENTS: Array<keyof AcdEvents> = ['queued', 'offer', 'answered', 'rona', 'ringCancelled', 'abandoned', 'callEnded', 'transferred', 'agentState'];

function setup(agents: Array<{ name: string; queues?: string[] }> = [{ name: 'alice' }, { name: 'bob' }, { name: 'carol' }]) {
  const clock = new ManualClock();
  const acd = new Acd({
    clock,
    queues: [
      { name: 'support', ringTimeoutS: 20, wrapUpS: 10, maxSize: 1 },
      { name: 'sales', ringTimeoutS: 15, wrapUpS: 0, maxSize: 1 },
    ],
    agents,
  });
  const log: Logged[] = [];
  for (const e of EVENTS) acd.on(e, (...args: unknown[]) => log.push([e, ...args] as Logged));
  const of = <K extends keyof AcdEvents>(k: K): Array<AcdEvents[K]> => log.filter((l) => l[0] === k).map((l) => l.slice(1) as unknown as AcdEvents[K]);
  const offers = () => of('offer').map(([agent, c]) => `${agent}:${c.callId}`);
  /** Event names (agentState with its state) since the last mark. */
  let mark = 0;
  const since = () => {
    const names = log.slice(mark).map((l) => (l[0] === 'agentState' ? `${l[1]}:${String(l[2])}` : l[0]));
    mark = log.length;
    return names;
  };
  return { clock, acd, log, of, offers, since };
}

const call = (id: string) => ({ callId: id, caller: '1001', callerName: null });

function expectAcdError(fn: () => unknown, code: AcdError['code']): AcdError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AcdError, `expected an AcdError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected AcdError ${code}`);
}

/** alice takes c1 from support, which entered the ACD at the clock's start; returns its queuedAt. */
function aliceOnC1(s: ReturnType<typeof setup>): number {
  const t0 = s.clock.now();
  s.acd.login('alice', { ready: true });
  s.acd.enqueue('support', call('c1'));
  s.clock.advance(5_000);
  s.acd.answer('alice', 'c1');
  s.clock.advance(60_000);
  return t0;
}

describe('Acd transfer', () => {
  it('to a queue: the agent wraps up, the caller waits there with their original queuedAt, ahead of later callers', () => {
    const s = setup([{ name: 'alice', queues: ['support'] }, { name: 'bob', queues: ['sales'] }]);
    const { clock, acd, of, since } = s;
    const t0 = aliceOnC1(s);
    acd.enqueue('sales', call('c2')); // arrives 65 s after c1; sales is full now (maxSize 1)
    since();
    const moved = acd.transfer('alice', 'c1', { queue: 'sales' });
    assert.deepEqual({ queue: moved.queue, queuedAt: moved.queuedAt }, { queue: 'sales', queuedAt: t0 });
    assert.deepEqual(since(), ['callEnded', 'alice:wrap-up', 'transferred']);
    assert.deepEqual(of('callEnded').map(([a, c, wrapS]) => [a, c.callId, c.queue, wrapS]), [['alice', 'c1', 'support', 10]], 'handled by alice, her queue\'s wrap-up');
    assert.deepEqual(of('transferred').map(([a, c, target, from]) => [a, c.callId, target, from]), [['alice', 'c1', { queue: 'sales' }, 'support']]);
    assert.equal(acd.agent('alice')?.state, 'wrap-up');
    assert.deepEqual(acd.waiting('sales').map((c) => c.callId), ['c1', 'c2'], 'accepted above maxSize; the older caller first');
    const sales = acd.snapshot().queues.find((q) => q.name === 'sales');
    assert.equal(sales?.waiting, 2);
    assert.equal(sales?.longestWaitS, 65, 'the caller keeps the wait time');
    assert.deepEqual(acd.locate('c1')?.phase, 'queued');

    acd.login('bob', { ready: true });
    assert.deepEqual(s.offers(), ['alice:c1', 'bob:c1']);
    acd.answer('bob', 'c1');
    clock.advance(10_000);
    assert.equal(acd.agent('alice')?.state, 'available', 'wrap-up ran out');
    acd.callEnded('bob', 'c1');
    assert.equal(acd.agent('bob')?.state, 'ringing', 'sales wraps up in 0 s: c2 next');
  });

  it('to a named agent: rings only that agent; answered, the call is theirs', () => {
    const s = setup();
    const { clock, acd, offers, of } = s;
    aliceOnC1(s);
    acd.login('carol', { ready: true }); // idle longest: the queue would pick her
    clock.advance(1_000);
    acd.login('bob', { ready: true });
    const c = acd.transfer('alice', 'c1', { agent: 'bob' });
    assert.equal(c.queue, 'support');
    assert.deepEqual(offers(), ['alice:c1', 'bob:c1']);
    assert.deepEqual(of('offer')[1][2], 20, 'the queue\'s ringTimeoutS');
    assert.deepEqual(of('transferred').map(([a, , target]) => [a, target]), [['alice', { agent: 'bob' }]]);
    assert.deepEqual(
      acd.snapshot().agents.map((a) => [a.name, a.state]),
      [['alice', 'wrap-up'], ['bob', 'ringing'], ['carol', 'available']],
    );
    assert.deepEqual(acd.locate('c1'), { phase: 'ringing', call: c, agent: 'bob' });
    clock.advance(3_000);
    acd.answer('bob', 'c1');
    assert.deepEqual(acd.locate('c1')?.agent, 'bob');
    acd.callEnded('bob', 'c1');
    assert.deepEqual(of('callEnded').map(([a]) => a), ['alice', 'bob']);
  });

  it('to a named agent who does not answer: RONA, and the call goes to the head of its queue', () => {
    const s = setup([{ name: 'alice' }, { name: 'bob' }]);
    const { clock, acd, offers, of } = s;
    const t0 = aliceOnC1(s);
    acd.login('bob', { ready: true });
    acd.setQueuePaused('support', true); // other callers wait while bob is available
    clock.advance(1_000);
    acd.enqueue('support', call('c2'));
    acd.transfer('alice', 'c1', { agent: 'bob' }); // a named transfer does not wait for the paused queue
    assert.deepEqual(offers(), ['alice:c1', 'bob:c1']);
    clock.advance(19_999);
    assert.equal(acd.agent('bob')?.state, 'ringing');
    clock.advance(1);
    assert.deepEqual(of('rona').map(([a, c]) => [a, c.callId]), [['bob', 'c1']]);
    assert.deepEqual([acd.agent('bob')?.state, acd.agent('bob')?.reason], ['away', 'no-answer']);
    const waiting = acd.waiting('support');
    assert.deepEqual(waiting.map((c) => [c.callId, c.queuedAt]), [['c1', t0], ['c2', t0 + 66_000]]);
    clock.advance(10_000); // alice's wrap-up ends
    acd.setQueuePaused('support', false);
    assert.deepEqual(offers(), ['alice:c1', 'bob:c1', 'alice:c1'], 'offered as usual, head first');
  });

  it('the named agent declining or the caller hanging up while it rings', () => {
    const s = setup([{ name: 'alice' }, { name: 'bob' }, { name: 'carol', queues: ['sales'] }]);
    const { acd, offers, of } = s;
    aliceOnC1(s);
    acd.login('carol', { ready: true });
    acd.transfer('alice', 'c1', { agent: 'carol' }); // carol does not serve support: not required
    acd.setAway('carol', 'break'); // declines: back to support, nobody eligible (alice in wrap-up)
    assert.deepEqual(of('ringCancelled').map(([a, c, r]) => [a, c.callId, r]), [['carol', 'c1', 'agent-away']]);
    assert.deepEqual(acd.waiting('support').map((c) => c.callId), ['c1']);

    acd.login('bob', { ready: true });
    acd.answer('bob', 'c1');
    acd.setAvailable('carol');
    acd.transfer('bob', 'c1', { agent: 'carol' });
    assert.equal(acd.abandon('c1'), 'ringing');
    assert.deepEqual(of('abandoned').map(([c, phase]) => [c.callId, phase]), [['c1', 'ringing']]);
    assert.equal(acd.agent('carol')?.state, 'available');
    assert.equal(acd.locate('c1'), undefined);
    assert.deepEqual(offers(), ['alice:c1', 'carol:c1', 'bob:c1', 'carol:c1']);
  });

  it('refuses an unavailable, unknown or same agent, an unknown queue and a call not theirs, changing nothing', () => {
    const s = setup();
    const { acd, since } = s;
    aliceOnC1(s);
    acd.login('bob'); // away (login)
    since();
    const e = expectAcdError(() => acd.transfer('alice', 'c1', { agent: 'bob' }), 'ACD_AGENT_UNAVAILABLE');
    assert.match(e.message, /bob is away \(login\), not available/);
    assert.match(expectAcdError(() => acd.transfer('alice', 'c1', { agent: 'carol' }), 'ACD_AGENT_UNAVAILABLE').message, /carol is offline/);
    expectAcdError(() => acd.transfer('alice', 'c1', { agent: 'alice' }), 'ACD_AGENT_UNAVAILABLE');
    expectAcdError(() => acd.transfer('alice', 'c1', { agent: 'zed' }), 'ACD_UNKNOWN_AGENT');
    expectAcdError(() => acd.transfer('alice', 'c1', { queue: 'nowhere' }), 'ACD_UNKNOWN_QUEUE');
    expectAcdError(() => acd.transfer('alice', 'c9', { queue: 'sales' }), 'ACD_UNKNOWN_CALL');
    expectAcdError(() => acd.transfer('bob', 'c1', { queue: 'sales' }), 'AGENT_BAD_TRANSITION');
    assert.throws(() => acd.transfer('alice', 'c1', {} as never), RangeError);
    assert.deepEqual(since(), [], 'no event');
    assert.deepEqual(acd.locate('c1'), { phase: 'connected', call: acd.locate('c1')?.call, agent: 'alice' });
    assert.equal(acd.agent('alice')?.state, 'on-call');
    acd.callEnded('alice', 'c1'); // still hers
  });

  it('a logout pending on the transferring agent takes them offline instead of wrap-up', () => {
    const s = setup();
    const { acd, of } = s;
    aliceOnC1(s);
    acd.logout('alice');
    acd.transfer('alice', 'c1', { queue: 'sales' });
    assert.equal(acd.agent('alice')?.state, 'offline');
    assert.deepEqual(of('callEnded').map(([a, , wrapS]) => [a, wrapS]), [['alice', 0]]);
    assert.equal(s.clock.pending, 0, 'no wrap-up timer, no ring timer (nobody available in sales)');
  });
});
