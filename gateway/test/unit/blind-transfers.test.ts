import assert from 'node:assert/strict';
import { Acd } from '../../acd/acd';
import type { ServerMessage } from '../../agent-ui/protocol';
import { BlindTransfers, TransferError } from '../../agents/transfers';
import type { DeskCall } from '../../calls/contract';
import { createLogger } from '../../logging';
import { ManualClock } from './manual-clock';

/*
 * The refusals of a blind transfer, before anything on the call moves: each has its coded error,
 * the agent page's code and the admin API's status, and leaves the ACD as it was. (What a transfer
 * does to a live call — audio, legs, records — is test/e2e/transfer-blind.test.ts.)
 */

function setup() {
  const acd = new Acd({ clock: new ManualClock(), queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 5 }, { name: 'sales', ringTimeoutS: 20, wrapUpS: 5 }], agents: [{ name: 'alice' }, { name: 'bob' }] });
  const sent: Array<[string, ServerMessage]> = [];
  const transfers = new BlindTransfers({ acd, send: (agent, m) => sent.push([agent, m]), log: createLogger('silent') });
  for (const a of ['alice', 'bob']) acd.login(a);
  acd.setAvailable('alice');
  acd.enqueue('support', { callId: 'c1', caller: '5551', callerName: null });
  acd.answer('alice', 'c1');
  return { acd, transfers, sent };
}

/** A call the desk cannot hand on: what a callback looks like to the transfer service. */
const callback: DeskCall = {
  id: 'c1',
  closed: false,
  codec: 'PCMU',
  caller: { number: '5551', name: null },
  agent: 'alice',
  isHeld: false,
  isMuted: false,
  log: createLogger('silent'),
  attachAgent: () => undefined,
  setHold: () => undefined,
  setMute: () => undefined,
  sendDtmf: () => false,
  record: () => undefined,
  close: async () => undefined,
  once: () => undefined,
  on: () => undefined,
  callback: {},
};

async function refusal(p: Promise<unknown>): Promise<{ code: string; ws: string; http: number }> {
  const err = await p.then(
    () => assert.fail('the transfer was not refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TransferError, String(err));
  return { code: err.code, ws: err.wsCode, http: err.httpStatus };
}

describe('BlindTransfers: refusals', () => {
  it('a text that is no target, a call the agent does not have, an unknown call: 400 / 404 with the page codes', async () => {
    const { transfers, acd } = setup();
    assert.deepEqual(await refusal(transfers.blind('alice', callback, 'sales')), { code: 'TRANSFER_BAD_TARGET', ws: 'WS_TARGET_UNAVAILABLE', http: 400 });
    assert.deepEqual(await refusal(transfers.blind('bob', callback, 'queue:sales')), { code: 'TRANSFER_NO_CALL', ws: 'WS_NO_SUCH_CALL', http: 404 });
    assert.deepEqual(await refusal(transfers.blind('alice', undefined, 'queue:sales')), { code: 'TRANSFER_NO_CALL', ws: 'WS_NO_SUCH_CALL', http: 404 });
    assert.deepEqual(await refusal(transfers.blindByCall('nope', undefined, 'queue:sales')), { code: 'TRANSFER_NO_CALL', ws: 'WS_NO_SUCH_CALL', http: 404 });
    assert.equal(acd.locate('c1')?.agent, 'alice', 'nothing moved');
  });

  it('a call that is not transferable (a callback) is 409, and the ACD keeps it with the agent', async () => {
    const { transfers, acd, sent } = setup();
    assert.deepEqual(await refusal(transfers.blindByCall('c1', callback, 'queue:sales')), { code: 'TRANSFER_NOT_ALLOWED', ws: 'WS_NOT_ALLOWED', http: 409 });
    assert.equal(acd.locate('c1')?.phase, 'connected');
    assert.equal(acd.agent('alice')?.state, 'on-call');
    assert.deepEqual(sent, [], 'the agent was told nothing ended');
  });

  it('a queued call has no agent to transfer it: 409', async () => {
    const { transfers, acd } = setup();
    acd.enqueue('support', { callId: 'c2', caller: '5552', callerName: null });
    assert.deepEqual(await refusal(transfers.blindByCall('c2', { ...callback, id: 'c2' }, 'queue:sales')), { code: 'TRANSFER_NOT_ALLOWED', ws: 'WS_NOT_ALLOWED', http: 409 });
  });
});
