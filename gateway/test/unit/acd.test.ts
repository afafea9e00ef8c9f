import assert from 'node:assert/strict';
import { Acd, type AcdEvents } from '../../acd/acd';
import { Agent } from '../../acd/agent';
import { AcdError } from '../../acd/errors';
import { Queue } from '../../acd/queue';
import { ManualClock } from './manual-clock';

type Logged = { [K in keyof AcdEvents]: [K, ...AcdEvents[K]] }[keyof AcdEvents];

const EVENTS: Array<keyof AcdEvents> = ['queued', 'offer', 'answered', 'rona', 'ringCancelled', 'abandoned', 'callEnded', 'agentState', 'logoutPending'];

function setup(opts: { agents?: Array<{ name: string; queues?: string[] }>; ringTimeoutS?: number; wrapUpS?: number } = {}) {
  const clock = new ManualClock();
  const acd = new Acd({
    clock,
    queues: [
      { name: 'support', ringTimeoutS: opts.ringTimeoutS ?? 20, wrapUpS: opts.wrapUpS ?? 10 },
      { name: 'sales', ringTimeoutS: 15, wrapUpS: 0 },
    ],
    agents: opts.agents ?? [{ name: 'alice' }, { name: 'bob' }, { name: 'carol' }],
  });
  const log: Logged[] = [];
  for (const e of EVENTS) acd.on(e, (...args: unknown[]) => log.push([e, ...args] as Logged));
  /** Events of one type, without the type name. */
  const of = <K extends keyof AcdEvents>(k: K): Array<AcdEvents[K]> => log.filter((l) => l[0] === k).map((l) => l.slice(1) as unknown as AcdEvents[K]);
  const offers = () => of('offer').map(([agent, call]) => `${agent}:${call.callId}`);
  return { clock, acd, log, of, offers };
}

function call(id: string) {
  return { callId: id, caller: `100${id.slice(-1)}`, callerName: null };
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

describe('Acd', () => {
  it('offers a call to the longest-idle available agent', () => {
    const { clock, acd, offers, of } = setup();
    acd.login('bob', { ready: true });
    clock.advance(5_000);
    acd.login('carol', { ready: true });
    clock.advance(5_000);
    acd.login('alice', { ready: true });
    clock.advance(1_000);

    acd.enqueue('support', call('c1'));
    assert.deepEqual(offers(), ['bob:c1']);
    assert.equal(acd.agent('bob')?.state, 'ringing');
    assert.deepEqual(of('offer')[0].slice(2), [20]);

    acd.enqueue('support', call('c2'));
    assert.deepEqual(offers(), ['bob:c1', 'carol:c2'], 'next longest idle is carol');

    // Going away and coming back puts alice... still the only one left; make carol the newest.
    acd.answer('carol', 'c2');
    acd.callEnded('carol', 'c2');
    acd.setAvailable('carol'); // ends wrap-up early: idle from now, behind alice
    acd.enqueue('support', call('c3'));
    assert.deepEqual(offers(), ['bob:c1', 'carol:c2', 'alice:c3']);
  });

  it('leaves supervisors out: never offered a call, in no queue, unknown to login', () => {
    const clock = new ManualClock();
    const acd = new Acd({
      clock,
      queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
      agents: [{ name: 'sue', role: 'supervisor' }, { name: 'alice', role: 'agent' }],
    });
    expectAcdError(() => acd.login('sue', { ready: true }), 'ACD_UNKNOWN_AGENT');
    acd.enqueue('support', call('c1'));
    assert.equal(acd.locate('c1')?.phase, 'queued', 'nobody to offer it to');
    assert.deepEqual(acd.snapshot().agents.map((a) => a.name), ['alice']);
    acd.login('alice', { ready: true });
    assert.equal(acd.locate('c1')?.agent, 'alice');
    acd.close();
  });

  it('breaks idle-time ties by who became available first, and restarts idle time after away', () => {
    const { acd, offers } = setup();
    acd.login('carol', { ready: true });
    acd.login('alice', { ready: true });
    acd.login('bob', { ready: true });
    acd.setAway('carol', 'break');
    acd.setAvailable('carol');
    acd.enqueue('support', call('c1'));
    acd.enqueue('support', call('c2'));
    acd.enqueue('support', call('c3'));
    assert.deepEqual(offers(), ['alice:c1', 'bob:c2', 'carol:c3']);
  });

  it('logs in as away/login unless asked to be ready; a second login changes nothing', () => {
    const { acd, offers } = setup();
    assert.equal(acd.agent('alice')?.state, 'offline');
    const v = acd.login('alice');
    assert.equal(v.state, 'away');
    assert.equal(v.reason, 'login');
    acd.enqueue('support', call('c1'));
    assert.deepEqual(offers(), []);
    acd.setAvailable('alice');
    assert.deepEqual(offers(), ['alice:c1']);
    assert.equal(acd.login('alice').state, 'ringing');
  });

  it('RONA puts the call back at the head, marks the agent away/no-answer and offers the next agent', () => {
    const { clock, acd, log, offers, of } = setup({ ringTimeoutS: 20 });
    acd.login('alice', { ready: true });
    clock.advance(1_000);
    acd.login('bob', { ready: true });
    acd.login('carol');
    acd.enqueue('support', call('c1'));
    acd.enqueue('support', call('c2'));
    acd.answer('bob', 'c2');
    clock.advance(500);
    acd.enqueue('support', call('c3'));
    assert.deepEqual(offers(), ['alice:c1', 'bob:c2']);
    assert.deepEqual(acd.waiting('support').map((c) => c.callId), ['c3']);

    clock.advance(19_499);
    assert.equal(acd.agent('alice')?.state, 'ringing', 'not before the ring timeout');
    clock.advance(1);
    assert.deepEqual(of('rona').map(([a, c]) => `${a}:${c.callId}`), ['alice:c1']);
    const alice = acd.agent('alice');
    assert.equal(alice?.state, 'away');
    assert.equal(alice?.reason, 'no-answer');
    assert.deepEqual(acd.waiting('support').map((c) => c.callId), ['c1', 'c3'], 'c1 is back at the head');
    const c1 = acd.waiting('support')[0];
    assert.equal(c1.queuedAt, clock.now() - 20_000, 'the wait keeps counting from the original queue time');

    const rona = log.findIndex((l) => l[0] === 'rona');
    assert.deepEqual(log[rona + 1], ['agentState', 'alice', 'away', 'no-answer', clock.now()]);

    acd.setAvailable('carol');
    assert.deepEqual(offers(), ['alice:c1', 'bob:c2', 'carol:c1'], 'the head call goes first');
  });

  it('RONA offers the call to the next available agent at once', () => {
    const { clock, acd, offers } = setup({ ringTimeoutS: 5 });
    acd.login('alice', { ready: true });
    clock.advance(10);
    acd.login('bob', { ready: true });
    acd.enqueue('support', call('c1'));
    clock.advance(5_000);
    assert.deepEqual(offers(), ['alice:c1', 'bob:c1']);
    clock.advance(5_000);
    assert.deepEqual(offers(), ['alice:c1', 'bob:c1'], 'no agent left: the call waits');
    assert.deepEqual(acd.waiting('support').map((c) => c.callId), ['c1']);
    assert.equal(acd.agent('bob')?.reason, 'no-answer');
  });

  it('abandon while ringing frees the agent, keeps its place in line and stops the ring timer', () => {
    const { clock, acd, offers, of } = setup();
    acd.login('alice', { ready: true });
    const aliceIdle = acd.agent('alice')?.idleSince;
    clock.advance(1_000);
    acd.login('bob', { ready: true });
    acd.enqueue('support', call('c1'));
    assert.deepEqual(offers(), ['alice:c1']);

    clock.advance(3_000);
    assert.equal(acd.abandon('c1'), 'ringing');
    assert.deepEqual(of('ringCancelled').map(([a, c, r]) => `${a}:${c.callId}:${r}`), ['alice:c1:caller-hangup']);
    assert.deepEqual(of('abandoned').map(([c, phase]) => `${c.callId}:${phase}`), ['c1:ringing']);
    const alice = acd.agent('alice');
    assert.equal(alice?.state, 'available');
    assert.equal(alice?.idleSince, aliceIdle, 'idle time kept');

    clock.advance(60_000);
    assert.equal(of('rona').length, 0, 'the ring timer was cleared');
    assert.equal(clock.pending, 0);

    acd.enqueue('support', call('c2'));
    assert.deepEqual(offers(), ['alice:c1', 'alice:c2'], 'alice is still the longest idle');
  });

  it('abandon while queued removes the call; an unknown or connected call returns null', () => {
    const { acd, of } = setup();
    acd.enqueue('support', call('c1'));
    acd.enqueue('support', call('c2'));
    assert.equal(acd.abandon('c1'), 'queued');
    assert.deepEqual(acd.waiting('support').map((c) => c.callId), ['c2']);
    assert.deepEqual(of('abandoned').map(([c, p]) => `${c.callId}:${p}`), ['c1:queued']);
    assert.equal(acd.abandon('nope'), null);
    acd.login('alice', { ready: true });
    acd.answer('alice', 'c2');
    assert.equal(acd.abandon('c2'), null);
    assert.equal(acd.agent('alice')?.state, 'on-call');
  });

  it('wrap-up after a call, then available by itself', () => {
    const { clock, acd, log } = setup({ wrapUpS: 10 });
    acd.login('alice', { ready: true });
    acd.enqueue('support', call('c1'));
    acd.answer('alice', 'c1');
    clock.advance(60_000);
    log.length = 0;
    acd.callEnded('alice', 'c1');
    assert.equal(acd.agent('alice')?.state, 'wrap-up');
    assert.equal(acd.agent('alice')?.callId, 'c1');
    assert.deepEqual(log[0].slice(0, 2), ['callEnded', 'alice']);
    assert.equal(log[0][3], 10);
    assert.deepEqual(log[1], ['agentState', 'alice', 'wrap-up', null, clock.now()]);

    clock.advance(9_999);
    assert.equal(acd.agent('alice')?.state, 'wrap-up');
    const end = clock.now() + 1;
    clock.advance(1);
    const alice = acd.agent('alice');
    assert.equal(alice?.state, 'available');
    assert.equal(alice?.idleSince, end);
    assert.deepEqual(log.at(-1), ['agentState', 'alice', 'available', null, end]);
    assert.equal(clock.pending, 0);
  });

  it('a queue with wrapUpS 0 goes straight back to available', () => {
    const { acd } = setup();
    acd.login('alice', { ready: true });
    acd.enqueue('sales', call('c1'));
    acd.answer('alice', 'c1');
    acd.callEnded('alice', 'c1');
    assert.equal(acd.agent('alice')?.state, 'available');
  });

  it('two agents, three callers: the third waits until an agent has wrapped up', () => {
    const { clock, acd, offers } = setup({ wrapUpS: 10 });
    acd.login('alice', { ready: true });
    clock.advance(1);
    acd.login('bob', { ready: true });
    acd.login('carol');
    acd.logout('carol');
    for (const id of ['c1', 'c2', 'c3']) acd.enqueue('support', call(id));
    assert.deepEqual(offers(), ['alice:c1', 'bob:c2']);
    acd.answer('alice', 'c1');
    acd.answer('bob', 'c2');
    clock.advance(30_000);
    assert.equal(acd.snapshot().queues[0].waiting, 1);
    acd.callEnded('bob', 'c2');
    clock.advance(5_000);
    acd.callEnded('alice', 'c1');
    clock.advance(4_999);
    assert.deepEqual(offers(), ['alice:c1', 'bob:c2'], 'both in wrap-up');
    clock.advance(1);
    assert.deepEqual(offers(), ['alice:c1', 'bob:c2', 'bob:c3'], 'bob wrapped up first');
    clock.advance(5_000);
    assert.equal(acd.agent('alice')?.state, 'available');
    assert.equal(acd.snapshot().queues[0].waiting, 0);
  });

  it('logout while ringing is RONA without the away penalty', () => {
    const { clock, acd, offers, of } = setup();
    acd.login('alice', { ready: true });
    clock.advance(1);
    acd.login('bob', { ready: true });
    acd.enqueue('support', call('c1'));
    acd.logout('alice', 'disconnect');
    const alice = acd.agent('alice');
    assert.equal(alice?.state, 'offline');
    assert.equal(alice?.reason, 'disconnect');
    assert.deepEqual(of('ringCancelled').map(([a, c, r]) => `${a}:${c.callId}:${r}`), ['alice:c1:agent-logout']);
    assert.equal(of('rona').length, 0);
    assert.deepEqual(offers(), ['alice:c1', 'bob:c1']);
    assert.equal(clock.pending, 1, 'only bob’s ring timer');
  });

  it('away while ringing declines the call to the next agent', () => {
    const { clock, acd, offers, of } = setup();
    acd.login('alice', { ready: true });
    clock.advance(1);
    acd.login('bob', { ready: true });
    acd.enqueue('support', call('c1'));
    acd.setAway('alice', 'break');
    assert.equal(acd.agent('alice')?.reason, 'break');
    assert.deepEqual(of('ringCancelled').map(([a, , r]) => `${a}:${r}`), ['alice:agent-away']);
    assert.deepEqual(offers(), ['alice:c1', 'bob:c1']);
  });

  it('logout while on a call waits for callEnded, then goes offline without wrap-up', () => {
    const { clock, acd, of } = setup();
    acd.login('alice', { ready: true });
    acd.enqueue('support', call('c1'));
    acd.answer('alice', 'c1');
    acd.logout('alice', 'disconnect');
    acd.logout('alice', 'disconnect');
    assert.deepEqual(of('logoutPending'), [['alice', 'c1']]);
    assert.equal(acd.agent('alice')?.state, 'on-call');
    acd.callEnded('alice', 'c1');
    assert.equal(acd.agent('alice')?.state, 'offline');
    assert.equal(acd.agent('alice')?.reason, 'disconnect');
    assert.equal(clock.pending, 0);
  });

  it('logout during wrap-up clears the wrap-up timer', () => {
    const { clock, acd } = setup();
    acd.login('alice', { ready: true });
    acd.enqueue('support', call('c1'));
    acd.answer('alice', 'c1');
    acd.callEnded('alice', 'c1');
    assert.equal(clock.pending, 1);
    acd.logout('alice');
    assert.equal(clock.pending, 0);
    clock.advance(60_000);
    assert.equal(acd.agent('alice')?.state, 'offline');
  });

  it('rejects illegal moves with AGENT_BAD_TRANSITION and unknown names with their codes', () => {
    const { acd } = setup();
    expectAcdError(() => acd.setAvailable('alice'), 'AGENT_BAD_TRANSITION'); // offline: log in first
    expectAcdError(() => acd.setAway('alice', 'break'), 'AGENT_BAD_TRANSITION');
    acd.login('alice', { ready: true });
    expectAcdError(() => acd.answer('alice', 'c1'), 'AGENT_BAD_TRANSITION');
    expectAcdError(() => acd.callEnded('alice', 'c1'), 'AGENT_BAD_TRANSITION');
    expectAcdError(() => acd.setAway('alice', ''), 'AGENT_BAD_TRANSITION');
    acd.enqueue('support', call('c1'));
    expectAcdError(() => acd.answer('alice', 'other'), 'ACD_UNKNOWN_CALL');
    expectAcdError(() => acd.setAvailable('alice'), 'AGENT_BAD_TRANSITION'); // ringing
    acd.answer('alice', 'c1');
    expectAcdError(() => acd.setAway('alice', 'break'), 'AGENT_BAD_TRANSITION');
    expectAcdError(() => acd.setAvailable('alice'), 'AGENT_BAD_TRANSITION');
    expectAcdError(() => acd.answer('nobody', 'c1'), 'ACD_UNKNOWN_AGENT');
    expectAcdError(() => acd.enqueue('billing', call('c9')), 'ACD_UNKNOWN_QUEUE');
    expectAcdError(() => acd.enqueue('sales', call('c1')), 'ACD_DUPLICATE_CALL');
    assert.equal(acd.agent('alice')?.state, 'on-call', 'failed operations changed nothing');
  });

  it('Agent alone: only the documented transitions', () => {
    const a = new Agent('alice', 'Alice', null, 0);
    const seen: unknown[] = [];
    a.on('state', (s, r) => seen.push([s, r]));
    expectAcdError(() => a.transition('on-call', 1), 'AGENT_BAD_TRANSITION');
    expectAcdError(() => a.transition('away', 1), 'AGENT_BAD_TRANSITION'); // needs a reason
    a.transition('away', 2, { reason: 'login' });
    a.transition('available', 3);
    expectAcdError(() => a.transition('ringing', 4), 'AGENT_BAD_TRANSITION'); // needs a call
    expectAcdError(() => a.transition('wrap-up', 4), 'AGENT_BAD_TRANSITION');
    a.transition('ringing', 5, { callId: 'c1' });
    a.transition('on-call', 6);
    assert.equal(a.callId, 'c1');
    expectAcdError(() => a.transition('available', 7), 'AGENT_BAD_TRANSITION');
    a.transition('wrap-up', 8);
    a.transition('available', 9);
    assert.equal(a.idleSince, 9);
    assert.equal(a.stateSince, 9);
    assert.equal(a.callId, null);
    a.transition('offline', 10, { reason: 'logout' });
    assert.deepEqual(seen, [['away', 'login'], ['available', null], ['ringing', null], ['on-call', null], ['wrap-up', null], ['available', null], ['offline', 'logout']]);
  });

  it('agents with a queues list serve only those queues', () => {
    const { acd, offers } = setup({ agents: [{ name: 'alice', queues: ['sales'] }, { name: 'bob' }] });
    acd.login('alice', { ready: true });
    acd.enqueue('support', call('c1'));
    assert.deepEqual(offers(), []);
    acd.enqueue('sales', call('c2'));
    assert.deepEqual(offers(), ['alice:c2']);
    acd.login('bob', { ready: true });
    assert.deepEqual(offers(), ['alice:c2', 'bob:c1']);
    assert.throws(() => new Acd({ queues: [], agents: [{ name: 'x', queues: ['nope'] }] }), RangeError);
  });

  it('the longest-waiting head goes first when queues compete for one agent', () => {
    const { clock, acd, offers } = setup();
    acd.enqueue('sales', call('c1'));
    clock.advance(1_000);
    acd.enqueue('support', call('c2'));
    acd.login('alice', { ready: true });
    assert.deepEqual(offers(), ['alice:c1']);
  });

  it('snapshot: waiting, longest wait and agents by state per queue', () => {
    const { clock, acd } = setup({ agents: [{ name: 'alice' }, { name: 'bob' }, { name: 'carol', queues: ['sales'] }] });
    acd.login('alice', { ready: true });
    acd.login('bob');
    acd.enqueue('support', call('c1'));
    clock.advance(2_000);
    acd.enqueue('support', call('c2'));
    clock.advance(5_500);
    const snap = acd.snapshot();
    assert.equal(snap.at, clock.now());
    const support = snap.queues.find((q) => q.name === 'support');
    assert.deepEqual(support, {
      name: 'support',
      waiting: 1,
      offered: 1,
      connected: 0,
      longestWaitS: 7,
      agents: { offline: [], available: [], ringing: ['alice'], 'on-call': [], 'wrap-up': [], away: ['bob'] },
      paused: false,
    });
    const sales = snap.queues.find((q) => q.name === 'sales');
    assert.equal(sales?.longestWaitS, 0);
    assert.deepEqual(sales?.agents.offline, ['carol']);
    assert.deepEqual(
      snap.agents.map((a) => [a.name, a.state, a.reason, a.callId]),
      [
        ['alice', 'ringing', null, 'c1'],
        ['bob', 'away', 'login', null],
        ['carol', 'offline', null, null],
      ],
    );
  });

  it('listeners may call back in; events come in order after the state has changed', () => {
    const { acd, log } = setup();
    acd.on('offer', (agent, c) => {
      assert.equal(acd.agent(agent)?.state, 'ringing');
      acd.answer(agent, c.callId);
    });
    acd.login('alice', { ready: true });
    log.length = 0;
    acd.enqueue('support', call('c1'));
    assert.deepEqual(
      log.map((l) => l[0] + (l[0] === 'agentState' ? `:${String(l[2])}` : '')),
      ['queued', 'offer', 'agentState:ringing', 'answered', 'agentState:on-call'],
    );
    assert.equal(acd.agent('alice')?.state, 'on-call');
  });

  it('a throwing listener does not stop the other events', () => {
    const { acd, of } = setup();
    acd.on('queued', () => {
      throw new Error('listener bug');
    });
    acd.login('alice', { ready: true });
    assert.throws(() => acd.enqueue('support', call('c1')), /listener bug/);
    assert.equal(of('offer').length, 1);
    assert.equal(acd.agent('alice')?.state, 'ringing');
  });

  it('close() clears every timer and refuses further operations', () => {
    const { clock, acd } = setup();
    acd.login('alice', { ready: true });
    acd.login('bob', { ready: true });
    acd.enqueue('support', call('c1'));
    acd.enqueue('support', call('c2'));
    acd.answer('bob', 'c2');
    acd.callEnded('bob', 'c2');
    assert.equal(clock.pending, 2);
    acd.close();
    assert.equal(clock.pending, 0);
    expectAcdError(() => acd.enqueue('support', call('c3')), 'ACD_CLOSED');
    assert.equal(acd.snapshot().queues.length, 2, 'snapshot still readable');
  });

  it('runs on real timers too', async () => {
    const acd = new Acd({ queues: [{ name: 'q', ringTimeoutS: 0.05, wrapUpS: 0 }], agents: [{ name: 'a' }] });
    try {
      acd.login('a', { ready: true });
      const rona = new Promise<string>((resolve) => acd.once('rona', (agent) => resolve(agent)));
      acd.enqueue('q', call('c1'));
      assert.equal(await rona, 'a');
    } finally {
      acd.close();
    }
  });
});

describe('Acd queue pause and reconfiguration (config push)', () => {
  it('a paused queue keeps its caller waiting with an agent available; resume offers it', () => {
    const { acd, offers } = setup({ agents: [{ name: 'alice' }] });
    acd.login('alice', { ready: true });
    const snap = acd.setQueuePaused('support', true, 'training');
    assert.equal(snap.paused, true);
    acd.enqueue('support', call('c1'));
    assert.deepEqual(offers(), []);
    assert.equal(acd.snapshot().queues.find((q) => q.name === 'support')?.waiting, 1);
    acd.setQueuePaused('support', false);
    assert.deepEqual(offers(), ['alice:c1']);
    expectAcdError(() => acd.setQueuePaused('nope', true), 'ACD_UNKNOWN_QUEUE');
  });

  it('reconfigureQueues: existing queues keep their waiting calls and take new settings; new queues appear', () => {
    const { acd } = setup({ agents: [] });
    acd.enqueue('support', call('c1'));
    acd.reconfigureQueues([
      { name: 'support', ringTimeoutS: 5, wrapUpS: 0, maxSize: 1 },
      { name: 'sales', ringTimeoutS: 15, wrapUpS: 0 },
      { name: 'billing', ringTimeoutS: 15, wrapUpS: 0 },
    ]);
    assert.deepEqual(acd.waiting('support').map((c) => c.callId), ['c1']);
    expectAcdError(() => acd.enqueue('support', call('c2')), 'ACD_QUEUE_FULL');
    acd.enqueue('billing', call('c3'));
    assert.deepEqual(acd.snapshot().queues.map((q) => q.name), ['support', 'sales', 'billing']);
  });

  it('reconfigureQueues refuses to drop a queue with a waiting call, or one an agent serves, and changes nothing', () => {
    const { acd } = setup({ agents: [{ name: 'alice', queues: ['sales'] }] });
    acd.enqueue('support', call('c1'));
    expectAcdError(() => acd.reconfigureQueues([{ name: 'sales', ringTimeoutS: 15, wrapUpS: 0 }]), 'ACD_RECONFIGURE_REFUSED');
    expectAcdError(() => acd.reconfigureQueues([{ name: 'support', ringTimeoutS: 15, wrapUpS: 0 }]), 'ACD_RECONFIGURE_REFUSED');
    assert.deepEqual(acd.snapshot().queues.map((q) => q.name), ['support', 'sales']);
    assert.equal(acd.waiting('support').length, 1);
  });
});

describe('Queue', () => {
  it('is FIFO with pushFront, remove, size and longestWaitS', () => {
    const clock = new ManualClock();
    const q = new Queue({ name: 'support', ringTimeoutS: 20, wrapUpS: 10 }, clock);
    const mk = (id: string) => ({ callId: id, caller: '1', callerName: null, queue: 'support', queuedAt: clock.now(), priority: 0, intent: null });
    assert.equal(q.longestWaitS, 0);
    q.push(mk('a'));
    clock.advance(1_500);
    q.push(mk('b'));
    q.push(mk('c'));
    clock.advance(1_000);
    assert.equal(q.size, 3);
    assert.equal(q.longestWaitS, 2);
    const a = q.shift();
    assert.equal(a?.callId, 'a');
    assert.equal(q.longestWaitS, 1);
    q.pushFront(a!);
    assert.deepEqual(q.calls().map((c) => c.callId), ['a', 'b', 'c']);
    assert.equal(q.remove('b')?.callId, 'b');
    assert.equal(q.remove('b'), undefined);
    assert.equal(q.has('c'), true);
    assert.deepEqual(q.calls().map((c) => c.callId), ['a', 'c']);
  });
});
