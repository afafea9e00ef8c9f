import assert from 'node:assert/strict';
import { Acd, type AcdEvents } from '../../acd/acd';
import { AcdError } from '../../acd/errors';
import { agentDeskConfigSchema } from '../../agents/config';
import { stateLabel } from '../../agents/agent-desk';
import { ManualClock } from './manual-clock';

type Logged = { [K in keyof AcdEvents]: [K, ...AcdEvents[K]] }[keyof AcdEvents];

function setup(wrapUpS = 10) {
  const clock = new ManualClock();
  const acd = new Acd({ clock, queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS, maxWaitS: 60, overflow: { callback: true } }], agents: [{ name: 'alice' }, { name: 'bob' }] });
  const log: Logged[] = [];
  for (const e of ['offer', 'answered', 'requeued', 'wrapUp', 'agentState', 'overflow', 'callEnded'] as const) acd.on(e, (...args: unknown[]) => log.push([e, ...args] as Logged));
  const of = <K extends keyof AcdEvents>(k: K): Array<AcdEvents[K]> => log.filter((l) => l[0] === k).map((l) => l.slice(1) as unknown as AcdEvents[K]);
  return { clock, acd, of };
}
const call = (id: string) => ({ callId: id, caller: `555${id}`, callerName: null });

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AcdError, String(e));
    return e.code;
  }
  assert.fail('expected an AcdError');
}

describe('Acd: desk for a full shift', () => {
  it('requeue: an answered call whose media failed goes back to the HEAD of its queue, the agent goes away (media-failed), the next agent gets it', () => {
    const { clock, acd, of } = setup();
    acd.login('alice', { ready: true });
    acd.login('bob');
    acd.enqueue('support', call('c1'));
    clock.advance(2_000);
    acd.answer('alice', 'c1');
    acd.enqueue('support', call('c2')); // arrives later, waits behind c1 once c1 is back
    clock.advance(5_000);
    const back = acd.requeue('alice', 'c1', 'media-failed');
    assert.equal(back.callId, 'c1');
    assert.deepEqual(acd.waiting('support').map((c) => c.callId), ['c1', 'c2'], 'c1 at the head');
    assert.equal(acd.agent('alice')?.state, 'away');
    assert.equal(acd.agent('alice')?.reason, 'media-failed');
    assert.deepEqual(of('requeued').map(([a, c, r]) => `${a}:${c.callId}:${r}`), ['alice:c1:media-failed']);
    assert.deepEqual(of('callEnded'), [], 'not a handled call: no callEnded, no wrap-up');
    acd.setAvailable('bob');
    assert.deepEqual(of('offer').map(([a, c]) => `${a}:${c.callId}`), ['alice:c1', 'bob:c1']);
    // queuedAt is kept: the wait the caller already had counts (service level, aging).
    assert.equal(of('offer')[1][1].queuedAt, of('offer')[0][1].queuedAt);
  });

  it('requeue keeps the max-wait clock of the queue: a call back after its time overflows at once', () => {
    const { clock, acd, of } = setup();
    acd.login('alice', { ready: true });
    acd.enqueue('support', call('c1'));
    acd.answer('alice', 'c1');
    clock.advance(61_000);
    acd.requeue('alice', 'c1');
    assert.deepEqual(of('overflow').map(([c, t, r]) => `${c.callId}:${JSON.stringify(t)}:${r}`), ['c1:{"callback":true}:max-wait']);
  });

  it('requeue refuses a call the agent does not have, and a pending logout wins over away', () => {
    const { acd } = setup();
    acd.login('alice', { ready: true });
    assert.equal(code(() => acd.requeue('alice', 'nope')), 'ACD_UNKNOWN_CALL');
    acd.enqueue('support', call('c1'));
    acd.answer('alice', 'c1');
    acd.logout('alice');
    acd.requeue('alice', 'c1');
    assert.equal(acd.agent('alice')?.state, 'offline');
    assert.deepEqual(acd.waiting('support').map((c) => c.callId), ['c1']);
  });

  it('wrap-up: its end is announced, Extend adds time up to the maximum, then it ends by itself', () => {
    const { clock, acd, of } = setup(10);
    acd.login('alice', { ready: true });
    acd.enqueue('support', call('c1'));
    acd.answer('alice', 'c1');
    const t0 = clock.now();
    acd.callEnded('alice', 'c1');
    assert.deepEqual(acd.wrapUpEndsAt('alice'), { callId: 'c1', endsAt: t0 + 10_000 });
    clock.advance(8_000);
    assert.equal(acd.extendWrapUp('alice', 30, 45), t0 + 40_000);
    assert.equal(acd.extendWrapUp('alice', 30, 45), t0 + 45_000, 'capped at maxTotalS after the call ended');
    assert.equal(code(() => acd.extendWrapUp('alice', 30, 45)), 'AGENT_BAD_TRANSITION');
    assert.deepEqual(of('wrapUp').map(([, , endsAt]) => endsAt - t0), [10_000, 40_000, 45_000]);
    clock.advance(36_000);
    assert.equal(acd.agent('alice')?.state, 'wrap-up');
    clock.advance(1_000);
    assert.equal(acd.agent('alice')?.state, 'available');
    assert.equal(acd.wrapUpEndsAt('alice'), null);
    assert.equal(code(() => acd.extendWrapUp('alice', 30, 45)), 'AGENT_BAD_TRANSITION', 'not in wrap-up');
  });

  it('away reasons: each change is a state event with its reason; the label reads "Away (lunch)"', () => {
    const { acd, of } = setup();
    acd.login('alice', { ready: true });
    acd.setAway('alice', 'break');
    acd.setAway('alice', 'lunch');
    acd.logout('alice', 'logout');
    assert.deepEqual(of('agentState').map(([a, s, r]) => `${a}:${s}:${r}`), ['alice:available:null', 'alice:away:break', 'alice:away:lunch', 'alice:offline:logout']);
    assert.equal(stateLabel('away', 'lunch'), 'Away (lunch)');
    assert.equal(stateLabel('on-call', null), 'On call');
  });

  it('agentDesk config: defaults, and system reasons cannot be configured', () => {
    const d = agentDeskConfigSchema.parse({});
    assert.deepEqual(d.awayReasons, ['break', 'lunch', 'training', 'meeting']);
    assert.equal(d.wrapUpExtendS, 30);
    assert.equal(d.screenPopUrl, undefined);
    assert.equal(agentDeskConfigSchema.safeParse({ awayReasons: ['break', 'disconnected'] }).success, false);
    assert.equal(agentDeskConfigSchema.safeParse({ awayReasons: ['break', 'break'] }).success, false);
    assert.equal(agentDeskConfigSchema.safeParse({ screenPopUrl: 'javascript:alert(1)' }).success, false);
    assert.equal(agentDeskConfigSchema.safeParse({ screenPopUrl: 'https://crm.example/search?phone={caller}' }).success, true);
  });
});
