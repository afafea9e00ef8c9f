import assert from 'node:assert/strict';
import { FailureGuard } from '../../net/failure-guard';
import { LogLimiter } from '../../log-limiter';
import type { Logger } from '../../logging';

describe('FailureGuard', () => {
  let t = 0;
  const now = (): number => t;
  beforeEach(() => {
    t = 1_000_000;
  });

  it('blocks a key after maxFailures and doubles the block on each strike', () => {
    const g = new FailureGuard({ maxFailures: 3, windowMs: 60_000, blockMs: 1000, maxBlockMs: 3000, now });
    assert.equal(g.fail('a'), 0);
    assert.equal(g.fail('a'), 0);
    assert.equal(g.fail('a'), 1000);
    assert.equal(g.blockedFor('a'), 1000);
    assert.equal(g.blockedFor('b'), 0, 'other keys are not affected');
    t += 1000;
    assert.equal(g.blockedFor('a'), 0);
    g.fail('a');
    g.fail('a');
    assert.equal(g.fail('a'), 2000, 'second block is twice as long');
    t += 2000;
    for (let i = 0; i < 2; i++) g.fail('a');
    assert.equal(g.fail('a'), 3000, 'capped at maxBlockMs');
  });

  it('counts attempts before their outcome, so a parallel burst is cut at the allowance', () => {
    const g = new FailureGuard({ maxFailures: 10, windowMs: 60_000, blockMs: 5000, maxBlockMs: 60_000, now });
    let admitted = 0;
    for (let i = 0; i < 600; i++) {
      if (g.blockedFor('10.0.0.9') > 0) continue;
      admitted++;
      g.fail('10.0.0.9');
    }
    assert.equal(admitted, 10);
  });

  it('a success clears the key; a refund takes one attempt back; the window resets the count', () => {
    const g = new FailureGuard({ maxFailures: 2, windowMs: 10_000, blockMs: 1000, maxBlockMs: 1000, now });
    g.fail('a');
    g.succeed('a');
    assert.equal(g.fail('a'), 0);
    g.refund('a');
    assert.equal(g.fail('a'), 0);
    t += 10_000;
    assert.equal(g.fail('a'), 0, 'the old failure fell out of the window');
  });

  it('keeps at most maxKeys entries (an attacker choosing keys cannot grow it)', () => {
    const g = new FailureGuard({ maxFailures: 5, windowMs: 60_000, blockMs: 1000, maxBlockMs: 1000, maxKeys: 100, now });
    for (let i = 0; i < 10_000; i++) g.fail(`k${i}`);
    assert.equal(g.size, 100);
  });
});

describe('LogLimiter', () => {
  function fakeLog(): { log: Logger; lines: Array<{ fields: Record<string, unknown>; msg: string }> } {
    const lines: Array<{ fields: Record<string, unknown>; msg: string }> = [];
    const rec = (fields: Record<string, unknown>, msg: string): void => {
      lines.push({ fields, msg });
    };
    return { log: { warn: rec, info: rec } as unknown as Logger, lines };
  }

  it('logs the first burst lines, then one summary per interval with the suppressed count', () => {
    let t = 0;
    const { log, lines } = fakeLog();
    const l = new LogLimiter(log, { burst: 3, intervalMs: 10_000, now: () => t });
    for (let i = 0; i < 1000; i++) l.warn('sip-forbidden', { peer: '192.0.2.7', i }, 'rejected');
    assert.equal(lines.length, 3);
    t += 10_000;
    l.flush();
    assert.equal(lines.length, 4);
    assert.equal(lines[3].fields.suppressed, 997);
    assert.equal(lines[3].fields.peer, '192.0.2.7');
    l.flush(true);
    assert.equal(lines.length, 4, 'nothing more to report');
  });

  it('shares one bucket once maxKeys distinct keys are in use', () => {
    const { log, lines } = fakeLog();
    const l = new LogLimiter(log, { burst: 1, intervalMs: 10_000, maxKeys: 10, now: () => 0 });
    for (let i = 0; i < 5000; i++) l.warn(`peer-${i}`, {}, 'x');
    assert.equal(lines.length, 11);
  });
});
