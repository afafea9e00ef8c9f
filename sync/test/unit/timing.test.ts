import assert from 'node:assert/strict';
import { backoffDelay, DEFAULT_BACKOFF, TokenBucket } from '../../timing';

describe('sync/timing', () => {
  it('backoff grows exponentially, is capped, and jitters within [cap*(1-j), cap]', () => {
    const o = { ...DEFAULT_BACKOFF, minMs: 100, maxMs: 1600, jitter: 0.5 };
    assert.deepEqual([0, 1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, o, () => 1)), [100, 200, 400, 800, 1600, 1600, 1600]);
    assert.deepEqual([0, 1, 4].map((a) => backoffDelay(a, o, () => 0)), [50, 100, 800]);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(3, o);
      assert.ok(d >= 400 && d <= 800, String(d));
    }
  });

  it('token bucket paces to the rate', () => {
    let t = 0;
    const b = new TokenBucket(100, 10, () => t);
    assert.equal(b.take(50), 10);
    assert.equal(b.take(1), 0);
    assert.equal(b.msUntilNext(), 10);
    t += 50;
    assert.equal(b.take(50), 5);
    t += 10_000;
    assert.equal(b.take(50), 10, 'never more than the burst');
  });
});
