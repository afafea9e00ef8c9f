import assert from 'node:assert/strict';
import { Acd, type AcdEvents } from '../../acd/acd';
import type { QueueConfig } from '../../acd/config';
import { AcdError } from '../../acd/errors';
import { ManualClock } from './manual-clock';

const SUPPORT: QueueConfig = { name: 'support', ringTimeoutS: 20, wrapUpS: 0 };
const SALES: QueueConfig = { name: 'sales', ringTimeoutS: 20, wrapUpS: 0 };
const GENERAL: QueueConfig = { name: 'general', ringTimeoutS: 20, wrapUpS: 0 };

function setup() {
  const clock = new ManualClock();
  const acd = new Acd({ clock, queues: [SUPPORT, SALES, GENERAL], agents: [{ name: 'alice', queues: ['support'] }, { name: 'bob', queues: ['sales'] }] });
  const events: Array<[keyof AcdEvents, ...unknown[]]> = [];
  for (const e of ['offer', 'overflow', 'dropped', 'agentRemoved', 'callEnded'] as const) acd.on(e, (...args: unknown[]) => events.push([e, ...args]));
  return { clock, acd, events };
}

const call = (id: string) => ({ callId: id, caller: '100', callerName: null });

describe('Acd.reconfigure (people and queues changed live)', () => {
  it('a new agent takes the next call; a changed agent’s queues apply to the next offer', () => {
    const { acd, events } = setup();
    acd.reconfigure([SUPPORT, SALES, GENERAL], [{ name: 'alice', queues: ['support'] }, { name: 'bob', queues: ['sales'] }, { name: 'dave', queues: ['general'] }]);
    acd.login('dave', { ready: true });
    acd.enqueue('general', call('c1'));
    assert.deepEqual(events.filter((e) => e[0] === 'offer').map((e) => e[1]), ['dave']);
    acd.login('bob', { ready: true });
    acd.enqueue('support', call('c2'));
    assert.equal(acd.locate('c2')?.phase, 'queued', 'bob serves sales only');
    acd.reconfigure([SUPPORT, SALES, GENERAL], [{ name: 'alice', queues: ['support'] }, { name: 'bob', queues: ['sales', 'support'] }, { name: 'dave', queues: ['general'] }]);
    assert.deepEqual(acd.locate('c2'), { phase: 'ringing', call: acd.locate('c2')?.call, agent: 'bob' });
  });

  it('a removed agent on a call stays until the call ends and is offered nothing meanwhile', () => {
    const { acd, events } = setup();
    acd.login('alice', { ready: true });
    acd.enqueue('support', call('c1'));
    acd.answer('alice', 'c1');
    const r = acd.reconfigure([SUPPORT, SALES, GENERAL], [{ name: 'bob', queues: ['sales'] }]);
    assert.deepEqual(r.agentsRetiring, ['alice']);
    assert.equal(acd.agent('alice')?.state, 'on-call');
    acd.callEnded('alice', 'c1');
    assert.equal(acd.agent('alice'), undefined);
    assert.deepEqual(events.filter((e) => e[0] === 'agentRemoved').map((e) => e.slice(1)), [['alice', 'after-call']]);
    // Its session ending later is not an error.
    assert.equal(acd.logout('alice').state, 'offline');
  });

  it('a removed agent not on a call goes at once; its ringing call goes to the next agent', () => {
    const { acd, events } = setup();
    acd.reconfigure([SUPPORT, SALES, GENERAL], [{ name: 'alice', queues: ['support'] }, { name: 'bob', queues: ['sales', 'support'] }]);
    acd.login('alice', { ready: true });
    acd.enqueue('support', call('c1'));
    assert.equal(acd.locate('c1')?.agent, 'alice');
    acd.login('bob', { ready: true });
    acd.reconfigure([SUPPORT, SALES, GENERAL], [{ name: 'bob', queues: ['sales', 'support'] }]);
    assert.equal(acd.agent('alice'), undefined);
    assert.equal(acd.locate('c1')?.agent, 'bob');
    assert.deepEqual(events.filter((e) => e[0] === 'agentRemoved').map((e) => e.slice(1)), [['alice', 'now']]);
  });

  it('a removed queue’s waiting callers go to its overflow queue, else the fallback queue, else are dropped', () => {
    const { acd, events } = setup();
    acd.enqueue('sales', call('s1'));
    acd.enqueue('support', call('p1'));
    const withOverflow: QueueConfig = { ...SALES, maxWaitS: 600, overflow: { queue: 'general' } };
    acd.reconfigure([SUPPORT, withOverflow, GENERAL], [{ name: 'alice', queues: ['support'] }, { name: 'bob', queues: ['sales'] }]);
    const r1 = acd.reconfigure([SUPPORT, GENERAL], [{ name: 'alice', queues: ['support'] }, { name: 'bob', queues: ['general'] }]);
    assert.deepEqual(r1.callsMoved, [{ callId: 's1', from: 'sales', to: 'general' }]);
    assert.equal(acd.locate('s1')?.call.queue, 'general');
    const r2 = acd.reconfigure([GENERAL], [{ name: 'bob', queues: ['general'] }], { fallbackQueue: 'general' });
    assert.deepEqual(r2.callsMoved, [{ callId: 'p1', from: 'support', to: 'general' }]);
    const r3 = acd.reconfigure([SUPPORT], [{ name: 'bob', queues: ['support'] }], { fallbackQueue: 'general' });
    assert.deepEqual(r3.callsMoved.map((m) => m.to), [null, null]);
    assert.deepEqual(events.filter((e) => e[0] === 'dropped').map((e) => (e[1] as { callId: string }).callId), ['s1', 'p1']);
    assert.equal(acd.locate('s1'), undefined);
  });

  it('refuses an agent naming a queue not in the new set, changing nothing', () => {
    const { acd } = setup();
    assert.throws(() => acd.reconfigure([SUPPORT], [{ name: 'bob', queues: ['sales'] }]), (e: unknown) => e instanceof AcdError && e.code === 'ACD_RECONFIGURE_REFUSED');
    assert.deepEqual(acd.snapshot().queues.map((q) => q.name), ['support', 'sales', 'general']);
    assert.ok(acd.agent('alice'));
  });
});
