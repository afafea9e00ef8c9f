import assert from 'node:assert/strict';
import { PortPool } from '../../rtp/port-pool';
import { MediaError } from '../../errors';

describe('PortPool', () => {
  it('hands out even ports within the range', () => {
    const pool = new PortPool({ min: 20001, max: 20010 });
    assert.equal(pool.capacity, 5);
    const ports = [1, 2, 3, 4, 5].map(() => pool.acquire());
    assert.deepEqual(ports, [20002, 20004, 20006, 20008, 20010]);
    assert.equal(pool.inUse, 5);
  });

  it('throws RTP_PORTS_EXHAUSTED when full', () => {
    const pool = new PortPool({ min: 30000, max: 30003 });
    pool.acquire();
    pool.acquire();
    assert.throws(() => pool.acquire(), (e: unknown) => e instanceof MediaError && e.code === 'RTP_PORTS_EXHAUSTED');
  });

  it('does not reuse a just-released port while others are free', () => {
    const pool = new PortPool({ min: 20000, max: 20009 });
    const a = pool.acquire();
    pool.release(a);
    const next = [pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()];
    assert.ok(!next.includes(a));
    assert.equal(pool.acquire(), a); // only when everything else is taken
  });

  it('release is idempotent and ignores foreign ports', () => {
    const pool = new PortPool({ min: 20000, max: 20009 });
    const a = pool.acquire();
    pool.release(a);
    pool.release(a);
    pool.release(5060);
    pool.release(20001);
    assert.equal(pool.inUse, 0);
  });

  it('parseRange validates', () => {
    assert.deepEqual(PortPool.parseRange('20000-29999'), { min: 20000, max: 29999 });
    assert.equal(new PortPool(PortPool.parseRange('20000-29999')).capacity, 5000);
    for (const bad of ['', '20000', 'abc-def', '30000-20000', '0-100', '20000-70000', '20001-20001', '1-2-3']) {
      assert.throws(() => PortPool.parseRange(bad), (e: unknown) => e instanceof Error && !(e instanceof MediaError) && /RTP port range/.test(e.message), bad);
    }
  });
});
