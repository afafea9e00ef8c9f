import assert from 'node:assert/strict';
import { Closer } from '../../lifecycle';

describe('Closer: what a start opened closes in reverse, once', () => {
  function make(): { closer: Closer; errors: Array<{ part?: string }> } {
    const errors: Array<{ part?: string }> = [];
    return { closer: new Closer({ error: (o: object) => void errors.push(o as { part?: string }) }), errors };
  }

  it('closes in reverse order of registration, awaiting each', async () => {
    const { closer } = make();
    const closed: string[] = [];
    closer.defer('database', () => void closed.push('database'));
    closer.defer('sync', async () => {
      await new Promise((r) => setImmediate(r));
      closed.push('sync');
    });
    closer.defer('sip', () => void closed.push('sip'));
    assert.deepEqual(closer.order, ['sip', 'sync', 'database']);
    await closer.close();
    assert.deepEqual(closed, ['sip', 'sync', 'database']);
  });

  it('a close that throws is logged with its name and the rest still close', async () => {
    const { closer, errors } = make();
    const closed: string[] = [];
    closer.defer('database', () => void closed.push('database'));
    closer.defer('http', () => {
      throw new Error('boom');
    });
    closer.defer('hw', () => Promise.reject(new Error('serial port gone')));
    await closer.close();
    assert.deepEqual(closed, ['database']);
    assert.deepEqual(errors.map((e) => e.part), ['hw', 'http']);
  });

  it('is idempotent: a second close waits for the first and closes nothing twice', async () => {
    const { closer } = make();
    let n = 0;
    closer.defer('sip', async () => {
      await new Promise((r) => setImmediate(r));
      n++;
    });
    await Promise.all([closer.close(), closer.close()]);
    await closer.close();
    assert.equal(n, 1);
    assert.throws(() => closer.defer('late', () => undefined), /already closing/);
  });
});
