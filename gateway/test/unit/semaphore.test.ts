import assert from 'node:assert/strict';
import { Semaphore, SemaphoreFullError } from '../../net/semaphore';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Semaphore (bounded concurrency for password hashing)', () => {
  it('runs at most `concurrency` jobs at once, queues up to maxQueue, refuses the rest at once', async () => {
    const sem = new Semaphore({ concurrency: 2, maxQueue: 3 });
    const gates = Array.from({ length: 10 }, () => deferred());
    let running = 0;
    let peak = 0;
    const results = gates.map((g, i) =>
      sem
        .tryRun(async () => {
          running++;
          peak = Math.max(peak, running);
          await g.promise;
          running--;
          return i;
        })
        .then(
          (v) => ({ ok: true as const, v }),
          (e: unknown) => ({ ok: false as const, full: e instanceof SemaphoreFullError }),
        ),
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(sem.running, 2);
    assert.equal(sem.queued, 3);
    for (const g of gates) g.resolve();
    const out = await Promise.all(results);
    assert.equal(out.filter((o) => o.ok).length, 5, '2 running + 3 queued ran');
    assert.equal(out.filter((o) => !o.ok && o.full).length, 5, 'the other 5 were refused as full');
    assert.equal(peak, 2);
    assert.equal(sem.maxActiveSeen, 2);
    assert.equal(sem.running, 0);
    assert.equal(sem.queued, 0);
  });

  it('hands slots over in FIFO order and frees the slot when a job throws', async () => {
    const sem = new Semaphore({ concurrency: 1, maxQueue: 10 });
    const order: number[] = [];
    const jobs = [0, 1, 2, 3].map((i) =>
      sem.tryRun(async () => {
        order.push(i);
        await new Promise((r) => setTimeout(r, 2));
        if (i === 1) throw new Error('boom');
        return i;
      }),
    );
    const settled = await Promise.allSettled(jobs);
    assert.deepEqual(order, [0, 1, 2, 3]);
    assert.equal(settled[1].status, 'rejected');
    assert.equal(settled[3].status, 'fulfilled');
    assert.equal(sem.running, 0);
    assert.equal(sem.maxActiveSeen, 1);
  });

  it('run() (trusted work) waits however long the queue is, but still one at a time', async () => {
    const sem = new Semaphore({ concurrency: 1, maxQueue: 0 });
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        sem.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setImmediate(r));
          running--;
        }),
      ),
    );
    assert.equal(peak, 1);
    assert.equal(sem.started, 20);
    await assert.rejects(Promise.all([sem.tryRun(() => new Promise((r) => setTimeout(r, 5))), sem.tryRun(async () => 1)]), SemaphoreFullError);
  });

  it('rejects nonsense bounds', () => {
    assert.throws(() => new Semaphore({ concurrency: 0, maxQueue: 1 }), RangeError);
    assert.throws(() => new Semaphore({ concurrency: 1, maxQueue: -1 }), RangeError);
  });
});
