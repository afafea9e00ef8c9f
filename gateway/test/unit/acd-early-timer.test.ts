import assert from 'node:assert/strict';
import { Acd } from '../../acd/acd';
import { ManualClock } from './manual-clock';

/** Node's setTimeout may run a millisecond before Date.now() reaches the deadline (a rounding of long waits). */
class EarlyClock extends ManualClock {
  override setTimeout(fn: () => void, ms: number): object {
    return super.setTimeout(fn, ms > 1 ? ms - 1 : ms);
  }
}

describe('ACD: a max-wait timer that fires a millisecond early (routing.test flake)', () => {
  it('the call still overflows once its wait is really over', () => {
    const clock = new EarlyClock();
    const acd = new Acd({
      clock,
      queues: [
        { name: 'billing', ringTimeoutS: 20, wrapUpS: 0, maxWaitS: 2, overflow: { queue: 'general' } },
        { name: 'general', ringTimeoutS: 20, wrapUpS: 0 },
      ],
      agents: [{ name: 'junior', queues: ['general'] }],
    });
    acd.login('junior', { ready: true });
    const offers: string[] = [];
    acd.on('offer', (agent, call) => offers.push(`${agent}:${call.callId}`));
    acd.enqueue('billing', { callId: 'c1', caller: '4930777', callerName: null });
    clock.advance(1999);
    assert.deepEqual(offers, [], 'not before maxWaitS');
    clock.advance(10);
    assert.deepEqual(offers, ['junior:c1']);
    acd.close();
  });
});
