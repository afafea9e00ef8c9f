import assert from 'node:assert/strict';
import { Acd, type AcdEvents } from '../../acd/acd';
import { AcdError } from '../../acd/errors';
import { ManualClock } from './manual-clock';

type Logged = { [K in keyof AcdEvents]: [K, ...AcdEvents[K]] }[keyof AcdEvents];
const EVENTS: Array<keyof AcdEvents> = ['offer', 'answered', 'rona', 'callEnded', 'transferred', 'agentState'];

/** alice on c1 from support (wrap-up 10 s, ring 20 s); bob and carol available (not serving support). */
function setup() {
  const clock = new ManualClock();
  const acd = new Acd({
    clock,
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 10 }],
    agents: [{ name: 'alice', queues: ['support'] }, { name: 'bob', queues: [] }, { name: 'carol', queues: ['support'] }],
  });
  const log: Logged[] = [];
  for (const e of EVENTS) acd.on(e, (...args: unknown[]) => log.push([e, ...args] as Logged));
  let mark = 0;
  const since = () => {
    const names = log.slice(mark).map((l) => (l[0] === 'agentState' ? `${l[1]}:${String(l[2])}` : `${l[0]}:${String(l[1])}`));
    mark = log.length;
    return names;
  };
  acd.login('alice', { ready: true });
  acd.enqueue('support', { callId: 'c1', caller: '1001', callerName: null });
  acd.answer('alice', 'c1');
  acd.login('bob', { ready: true });
  since();
  return { clock, acd, since };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AcdError, String(e));
    return e.code;
  }
  return 'none';
}

describe('Acd consult', () => {
  it('rings the target outside the queues; answered it is on-call while the call stays alice\'s; hand-over: alice wraps up, bob holds the call', () => {
    const { acd, since } = setup();
    acd.consultRing('alice', 'c1', 'bob');
    assert.deepEqual(since(), ['offer:bob', 'bob:ringing']);
    assert.equal(acd.agent('bob')?.state, 'ringing');
    acd.login('carol', { ready: true });
    assert.equal(acd.agent('carol')?.state, 'available', 'the consulted call is not offered to the queue');
    acd.consultAnswered('bob', 'c1');
    assert.equal(acd.agent('bob')?.state, 'on-call');
    assert.equal(acd.locate('c1')?.agent, 'alice');
    since();
    acd.consultHandOver('alice', 'bob', 'c1');
    assert.deepEqual(since(), ['callEnded:alice', 'alice:wrap-up', 'transferred:alice', 'answered:bob']);
    assert.equal(acd.agent('alice')?.state, 'wrap-up');
    assert.equal(acd.locate('c1')?.agent, 'bob');
    acd.callEnded('bob', 'c1');
    assert.equal(acd.agent('bob')?.state, 'wrap-up');
  });

  it('no answer within the queue\'s ringTimeoutS: rona, the target away no-answer; alice keeps the call', () => {
    const { clock, acd, since } = setup();
    acd.consultRing('alice', 'c1', 'bob');
    since();
    clock.advance(20_000);
    assert.deepEqual(since(), ['rona:bob', 'bob:away']);
    assert.equal(acd.agent('bob')?.reason, 'no-answer');
    assert.equal(acd.locate('c1')?.agent, 'alice');
    assert.equal(code(() => acd.consultAnswered('bob', 'c1')), 'ACD_UNKNOWN_CALL');
  });

  it('cancelled while ringing: the target is available again; after talking: wrap-up; unavailable targets are refused', () => {
    const { acd } = setup();
    assert.equal(code(() => acd.consultRing('alice', 'c1', 'alice')), 'ACD_AGENT_UNAVAILABLE');
    assert.equal(code(() => acd.consultRing('alice', 'c1', 'carol')), 'ACD_AGENT_UNAVAILABLE', 'carol is offline');
    assert.equal(code(() => acd.consultRing('bob', 'c1', 'alice')), 'ACD_UNKNOWN_CALL', 'bob is not on c1');
    acd.consultRing('alice', 'c1', 'bob');
    acd.consultEnded('bob', 'c1');
    assert.equal(acd.agent('bob')?.state, 'available');
    acd.consultRing('alice', 'c1', 'bob');
    acd.consultAnswered('bob', 'c1');
    acd.consultEnded('bob', 'c1');
    assert.equal(acd.agent('bob')?.state, 'wrap-up');
    assert.equal(acd.agent('alice')?.state, 'on-call');
  });
});
