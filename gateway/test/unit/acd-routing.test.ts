import assert from 'node:assert/strict';
import { Acd, type AcdAgentConfig, type AcdEvents, type NewCall } from '../../acd/acd';
import type { QueueConfig } from '../../acd/config';
import { AcdError } from '../../acd/errors';
import { ManualClock } from './manual-clock';

type Logged = { [K in keyof AcdEvents]: [K, ...AcdEvents[K]] }[keyof AcdEvents];
const EVENTS: Array<keyof AcdEvents> = ['queued', 'overflow', 'offer', 'answered', 'rona', 'ringCancelled', 'abandoned', 'callEnded', 'agentState', 'logoutPending'];

type Q = Partial<QueueConfig> & { name: string };

function setup(queues: Q[], agents: AcdAgentConfig[]) {
  const clock = new ManualClock();
  const acd = new Acd({ clock, queues: queues.map((q) => ({ ringTimeoutS: 20, wrapUpS: 0, ...q })), agents });
  const log: Logged[] = [];
  for (const e of EVENTS) acd.on(e, (...args: unknown[]) => log.push([e, ...args] as Logged));
  const of = <K extends keyof AcdEvents>(k: K): Array<AcdEvents[K]> => log.filter((l) => l[0] === k).map((l) => l.slice(1) as unknown as AcdEvents[K]);
  const offers = () => of('offer').map(([agent, call]) => `${agent}:${call.callId}`);
  const overflows = () => of('overflow').map(([c, t, r]) => `${c.callId}:${c.queue}->${'queue' in t ? t.queue : 'callback'}:${r}`);
  /** Logs everyone in as available, one ms apart in the given order (first = longest idle). */
  const ready = (...names: string[]) => {
    for (const n of names) {
      acd.login(n, { ready: true });
      clock.advance(1);
    }
  };
  /** Answers and ends a ringing call so that the agent is free again (wrapUpS 0). */
  const serve = (agent: string, callId: string) => {
    acd.answer(agent, callId);
    acd.callEnded(agent, callId);
  };
  return { clock, acd, log, of, offers, overflows, ready, serve };
}

function call(id: string, over: Partial<NewCall> = {}): NewCall {
  return { callId: id, caller: '1000', callerName: null, ...over };
}

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

describe('Acd routing: skills', () => {
  it('offers a queue only to agents that serve it and meet every required skill level', () => {
    const { acd, offers, ready } = setup(
      [{ name: 'level3', requiredSkills: { tech: 3, linux: 1 } }, { name: 'general' }],
      [
        { name: 'junior', skills: { tech: 2, linux: 5 } },
        { name: 'nolinux', skills: { tech: 5 } },
        { name: 'elsewhere', skills: { tech: 5, linux: 5 }, queues: ['general'] },
        { name: 'senior', skills: { tech: 3, linux: 1 } },
      ],
    );
    ready('junior', 'nolinux', 'elsewhere', 'senior');
    acd.enqueue('level3', call('c1'));
    assert.deepEqual(offers(), ['senior:c1'], 'only senior qualifies, though idle the shortest');
    acd.enqueue('level3', call('c2'));
    assert.deepEqual(offers(), ['senior:c1'], 'nobody else qualifies: c2 waits');
    acd.enqueue('general', call('c3'));
    assert.deepEqual(offers(), ['senior:c1', 'junior:c3'], 'a queue without requirements takes anyone');
    const snap = acd.snapshot().queues.find((q) => q.name === 'level3');
    assert.deepEqual(snap?.agents.available, [], 'snapshot lists only qualified agents');
    assert.deepEqual(snap?.agents.ringing, ['senior']);
  });
});

describe('Acd routing: strategies', () => {
  it('longest-idle (default) picks the agent idle longest among the qualified', () => {
    const { acd, offers, ready } = setup([{ name: 'q', requiredSkills: { tech: 1 } }], [{ name: 'a', skills: { tech: 9 } }, { name: 'b', skills: { tech: 1 } }, { name: 'c', skills: {} }]);
    ready('c', 'b', 'a');
    acd.enqueue('q', call('c1'));
    acd.enqueue('q', call('c2'));
    assert.deepEqual(offers(), ['b:c1', 'a:c2']);
  });

  it('skills-best-match: highest summed level in the required skills, then longest idle', () => {
    const { acd, offers, ready, serve } = setup(
      [{ name: 'q', strategy: 'skills-best-match', requiredSkills: { tech: 1, linux: 1 } }],
      [
        { name: 'a', skills: { tech: 3, linux: 3 } },
        { name: 'b', skills: { tech: 5, linux: 4, sales: 50 } },
        { name: 'c', skills: { tech: 4, linux: 2 } },
        { name: 'd', skills: { tech: 2, linux: 4 } },
      ],
    );
    ready('a', 'b', 'c', 'd');
    acd.enqueue('q', call('c1'));
    assert.deepEqual(offers(), ['b:c1'], 'b scores 9, other skills do not count');
    acd.enqueue('q', call('c2'));
    assert.deepEqual(offers(), ['b:c1', 'a:c2'], 'a, c and d score 6: a has been idle longest');
    serve('b', 'c1');
    acd.enqueue('q', call('c3'));
    assert.deepEqual(offers(), ['b:c1', 'a:c2', 'b:c3'], 'best match beats idle time');
  });

  it('skills-best-match without requiredSkills ranks by the primary skill (default: the queue name)', () => {
    const { acd, offers, ready } = setup(
      [{ name: 'billing', strategy: 'skills-best-match' }, { name: 'tech', strategy: 'skills-best-match', primarySkill: 'networking' }],
      [
        { name: 'a', skills: { billing: 1, networking: 9 } },
        { name: 'b', skills: { billing: 7 } },
        { name: 'c', skills: { networking: 3 } },
      ],
    );
    ready('a', 'b', 'c');
    acd.enqueue('billing', call('c1'));
    acd.enqueue('tech', call('c2'));
    assert.deepEqual(offers(), ['b:c1', 'a:c2']);
  });

  it('round-robin: a pointer rotates over the eligible agents in configured order', () => {
    const { acd, offers, ready, serve } = setup([{ name: 'q', strategy: 'round-robin' }], [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    ready('c', 'b', 'a'); // idle order must not matter
    for (const id of ['c1', 'c2', 'c3']) {
      acd.enqueue('q', call(id));
      const who = offers().at(-1)?.split(':')[0] as string;
      serve(who, id);
    }
    assert.deepEqual(offers(), ['a:c1', 'b:c2', 'c:c3']);
    acd.setAway('a', 'break');
    acd.enqueue('q', call('c4'));
    assert.deepEqual(offers().at(-1), 'b:c4', 'a is away: skipped, the pointer wraps to b');
    acd.setAvailable('a');
    acd.enqueue('q', call('c5'));
    assert.deepEqual(offers().at(-1), 'c:c5', 'after b comes c');
    acd.enqueue('q', call('c6'));
    assert.deepEqual(offers().at(-1), 'a:c6');
  });

  it('round-robin: after RONA the next agent in turn gets the call', () => {
    const { clock, acd, offers, ready } = setup([{ name: 'q', strategy: 'round-robin', ringTimeoutS: 10 }], [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    ready('a', 'b', 'c');
    acd.enqueue('q', call('c1'));
    clock.advance(10_000);
    assert.deepEqual(offers(), ['a:c1', 'b:c1']);
  });
});

describe('Acd routing: priority and aging', () => {
  it('a higher priority goes first; equal priorities by longest wait', () => {
    const { clock, acd, offers, ready } = setup([{ name: 'q' }], [{ name: 'a' }]);
    acd.enqueue('q', call('low1', { priority: 0 }));
    clock.advance(1_000);
    acd.enqueue('q', call('high', { priority: 10, intent: 'technical_support' }));
    clock.advance(1_000);
    acd.enqueue('q', call('low2', { priority: 0 }));
    assert.deepEqual(
      acd.waiting('q').map((c) => c.callId),
      ['high', 'low1', 'low2'],
    );
    assert.equal(acd.waiting('q')[0].intent, 'technical_support');
    ready('a');
    assert.deepEqual(offers(), ['a:high']);
  });

  it('aging: a low-priority call that has waited long enough beats a new high-priority one', () => {
    const { clock, acd, offers, ready } = setup([{ name: 'q', agingPerMinute: 2 }], [{ name: 'a' }]);
    acd.enqueue('q', call('low', { priority: 0 }));
    clock.advance(4 * 60_000);
    acd.enqueue('q', call('high1', { priority: 10 }));
    // low: 0 + 2 × 4 = 8 < 10
    assert.deepEqual(acd.waiting('q').map((c) => c.callId), ['high1', 'low']);
    ready('a');
    assert.deepEqual(offers(), ['a:high1']);
    acd.answer('a', 'high1');
    clock.advance(60_000); // low has waited just over 5 min: 10.00003 > a new 10
    acd.enqueue('q', call('high2', { priority: 10 }));
    assert.deepEqual(acd.waiting('q').map((c) => c.callId), ['low', 'high2']);
    acd.callEnded('a', 'high1');
    assert.deepEqual(offers(), ['a:high1', 'a:low'], 'the long-waiting low-priority call is not starved');
  });

  it('without aging the same low-priority call waits behind every high-priority one', () => {
    const { clock, acd } = setup([{ name: 'q' }], [{ name: 'a' }]);
    acd.enqueue('q', call('low', { priority: 0 }));
    clock.advance(60 * 60_000);
    acd.enqueue('q', call('high', { priority: 1 }));
    assert.deepEqual(acd.waiting('q').map((c) => c.callId), ['high', 'low']);
  });

  it('across queues the highest effective priority goes first, each aged by its own queue', () => {
    const { clock, acd, offers, ready } = setup([{ name: 'vip' }, { name: 'old', agingPerMinute: 1 }], [{ name: 'a' }]);
    acd.enqueue('old', call('o1', { priority: 0 }));
    clock.advance(3 * 60_000);
    acd.enqueue('vip', call('v1', { priority: 5 }));
    ready('a');
    assert.deepEqual(offers(), ['a:v1'], '5 beats 3');
  });

  it('a call back after RONA keeps its place ahead of equals', () => {
    const { clock, acd, ready } = setup([{ name: 'q', ringTimeoutS: 5 }], [{ name: 'a' }]);
    ready('a');
    acd.enqueue('q', call('c1', { priority: 3 }));
    acd.enqueue('q', call('c2', { priority: 3 }));
    acd.enqueue('q', call('c3', { priority: 4 }));
    clock.advance(5_000);
    assert.deepEqual(acd.waiting('q').map((c) => c.callId), ['c3', 'c1', 'c2']);
  });
});

describe('Acd routing: overflow', () => {
  it('a call waiting maxWaitS moves to the overflow queue keeping queuedAt, and is offered there', () => {
    const { clock, acd, offers, overflows, of, ready } = setup(
      [{ name: 'level3', maxWaitS: 60, overflow: { queue: 'general' }, requiredSkills: { tech: 3 } }, { name: 'general' }],
      [{ name: 'g', queues: ['general'] }],
    );
    ready('g');
    acd.setAway('g', 'break');
    const t0 = clock.now();
    acd.enqueue('level3', call('c1', { priority: 7, intent: 'technical_support' }));
    clock.advance(59_999);
    assert.deepEqual(overflows(), []);
    assert.deepEqual(acd.waiting('level3').map((c) => c.callId), ['c1']);
    clock.advance(1);
    assert.deepEqual(overflows(), ['c1:level3->general:max-wait']);
    assert.deepEqual(acd.waiting('level3'), []);
    const moved = acd.waiting('general')[0];
    assert.deepEqual({ ...moved }, { callId: 'c1', caller: '1000', callerName: null, queue: 'general', queuedAt: t0, priority: 7, intent: 'technical_support' });
    assert.equal(acd.snapshot().queues.find((q) => q.name === 'general')?.longestWaitS, 60, 'service level counts from the first queue');
    assert.equal(of('queued').length, 1, 'overflow does not repeat queued');
    acd.setAvailable('g');
    assert.deepEqual(offers(), ['g:c1']);
    assert.equal(clock.pending, 1, 'only the ring timer');
  });

  it('maxWaitS counts in each queue from when the call entered it', () => {
    const { clock, acd, overflows } = setup(
      [{ name: 'a', maxWaitS: 30, overflow: { queue: 'b' } }, { name: 'b', maxWaitS: 30, overflow: { callback: true } }],
      [],
    );
    acd.enqueue('a', call('c1'));
    clock.advance(30_000);
    assert.deepEqual(overflows(), ['c1:a->b:max-wait']);
    clock.advance(29_999);
    assert.deepEqual(overflows(), ['c1:a->b:max-wait'], 'not yet: b counts from 30 s');
    clock.advance(1);
    assert.deepEqual(overflows(), ['c1:a->b:max-wait', 'c1:b->callback:max-wait']);
  });

  it('callback overflow: the call leaves the ACD and the gateway is told to offer a callback', () => {
    const { clock, acd, of } = setup([{ name: 'q', maxWaitS: 120, overflow: { callback: true } }], [{ name: 'a' }]);
    acd.enqueue('q', call('c1'));
    acd.enqueue('q', call('c2'));
    clock.advance(60_000);
    acd.enqueue('q', call('c3'));
    clock.advance(60_000);
    const ev = of('overflow');
    assert.deepEqual(
      ev.map(([c, t, r]) => [c.callId, c.queue, t, r]),
      [
        ['c1', 'q', { callback: true }, 'max-wait'],
        ['c2', 'q', { callback: true }, 'max-wait'],
      ],
    );
    assert.equal(acd.locate('c1'), undefined);
    assert.equal(acd.abandon('c1'), null, 'the caller hanging up later is not the ACD’s business');
    assert.deepEqual(acd.waiting('q').map((c) => c.callId), ['c3']);
    assert.equal(clock.pending, 1, 'c3’s timer');
    acd.enqueue('q', call('c1', { queuedAt: clock.now() - 120_000 }));
    assert.deepEqual(acd.waiting('q').map((c) => c.callId), ['c1', 'c3'], 'the gateway may put a caller who declined back');
  });

  it('a ringing call is not moved; back after RONA past its time it overflows at once', () => {
    const { clock, acd, offers, overflows } = setup([{ name: 'q', maxWaitS: 30, ringTimeoutS: 20, overflow: { queue: 'o' } }, { name: 'o' }], [{ name: 'a', queues: ['q'] }]);
    acd.enqueue('q', call('c1'));
    clock.advance(20_000);
    acd.login('a', { ready: true });
    assert.deepEqual(offers(), ['a:c1']);
    clock.advance(15_000); // 35 s in q, ringing
    assert.deepEqual(overflows(), []);
    clock.advance(5_000); // RONA at 40 s
    assert.deepEqual(overflows(), ['c1:q->o:max-wait']);
    assert.deepEqual(acd.waiting('o').map((c) => c.callId), ['c1']);
  });

  it('abandon clears the max-wait timer', () => {
    const { clock, acd } = setup([{ name: 'q', maxWaitS: 30, overflow: { callback: true } }], []);
    acd.enqueue('q', call('c1'));
    assert.equal(clock.pending, 1);
    acd.abandon('c1');
    assert.equal(clock.pending, 0);
  });

  it('close() clears max-wait timers', () => {
    const { clock, acd } = setup([{ name: 'q', maxWaitS: 30, overflow: { callback: true } }], []);
    acd.enqueue('q', call('c1'));
    acd.close();
    assert.equal(clock.pending, 0);
  });

  it('refuses overflow cycles and unknown overflow queues at construction', () => {
    assert.throws(
      () => new Acd({ queues: [{ name: 'a', ringTimeoutS: 1, wrapUpS: 0, maxWaitS: 1, overflow: { queue: 'b' } }, { name: 'b', ringTimeoutS: 1, wrapUpS: 0, maxWaitS: 1, overflow: { queue: 'a' } }], agents: [] }),
      /overflow cycle: a → b → a/,
    );
    assert.throws(() => new Acd({ queues: [{ name: 'a', ringTimeoutS: 1, wrapUpS: 0, maxSize: 1, whenFull: { overflowQueue: 'x' } }], agents: [] }), /unknown queue "x"/);
  });
});

describe('Acd routing: maximum size', () => {
  it('whenFull busy: ACD_QUEUE_FULL and nothing changes; ringing calls do not count', () => {
    const { acd, log, ready, offers } = setup([{ name: 'q', maxSize: 2 }], [{ name: 'a' }]);
    ready('a');
    acd.enqueue('q', call('c1'));
    acd.enqueue('q', call('c2'));
    acd.enqueue('q', call('c3'));
    assert.deepEqual(offers(), ['a:c1']);
    assert.equal(acd.placement('q'), null);
    const before = log.length;
    const err = expectAcdError(() => acd.enqueue('q', call('c4')), 'ACD_QUEUE_FULL');
    assert.deepEqual(err.details, { queue: 'q', tried: ['q'] });
    assert.equal(log.length, before, 'no events');
    assert.equal(acd.locate('c4'), undefined);
    acd.abandon('c2');
    assert.equal(acd.placement('q'), 'q');
    acd.enqueue('q', call('c4'));
    assert.deepEqual(acd.waiting('q').map((c) => c.callId), ['c3', 'c4']);
  });

  it('whenFull overflowQueue: a new call lands in the overflow queue; when that is full too, busy', () => {
    const { acd, overflows, of } = setup(
      [{ name: 'billing', maxSize: 1, whenFull: { overflowQueue: 'general' } }, { name: 'general', maxSize: 1 }],
      [],
    );
    assert.equal(acd.enqueue('billing', call('c1')).queue, 'billing');
    assert.equal(acd.placement('billing'), 'general');
    const c2 = acd.enqueue('billing', call('c2', { priority: 4 }));
    assert.equal(c2.queue, 'general');
    assert.equal(c2.priority, 4);
    assert.deepEqual(overflows(), ['c2:billing->general:full']);
    assert.deepEqual(of('queued').map(([c]) => `${c.callId}@${c.queue}`), ['c1@billing', 'c2@general']);
    const err = expectAcdError(() => acd.enqueue('billing', call('c3')), 'ACD_QUEUE_FULL');
    assert.deepEqual(err.details, { queue: 'billing', tried: ['billing', 'general'] });
    assert.equal(acd.placement('billing'), null);
  });

  it('max-wait overflow is accepted even into a full queue (the caller has already waited)', () => {
    const { clock, acd } = setup([{ name: 'a', maxWaitS: 10, overflow: { queue: 'b' } }, { name: 'b', maxSize: 1 }], []);
    acd.enqueue('b', call('b1'));
    acd.enqueue('a', call('a1'));
    clock.advance(10_000);
    assert.deepEqual(acd.waiting('b').map((c) => c.callId), ['b1', 'a1']);
    expectAcdError(() => acd.enqueue('b', call('b2')), 'ACD_QUEUE_FULL');
  });
});
