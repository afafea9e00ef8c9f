import assert from 'node:assert/strict';
import { clientMessage } from '../../agent-ui/protocol';
import { parseTransferTarget } from '../../agent-ui/transfer-target';

const callId = '8c1f2a4e-0b7d-4c55-9e3a-1f2b3c4d5e6f';

/** What the agent's page would be told for `msg` (agent-sessions: the first issue, `path: message`), or 'ok'. */
function verdict(msg: unknown): string {
  const r = clientMessage.safeParse(msg);
  if (r.success) return 'ok';
  const issue = r.error.issues[0];
  return `${issue.path.join('.') || 'message'}: ${issue.message}`;
}

describe('agent /ws protocol: transfers', () => {
  it('accepts a transfer to a number, an extension, a queue or an agent, blind or consult', () => {
    for (const target of ['2001', '+4930123456', '*72#', 'queue:sales', 'agent:bob', 'agent:mary.o-neil_2']) {
      for (const mode of ['blind', 'consult']) {
        const r = clientMessage.safeParse({ v: 1, type: 'transfer', callId, target, mode, ref: 'x1' });
        assert.ok(r.success, `${target} ${mode}: ${verdict({ v: 1, type: 'transfer', callId, target, mode })}`);
        assert.deepEqual(r.data, { v: 1, type: 'transfer', callId, target, mode, ref: 'x1' });
      }
    }
  });

  it('refuses any other target with a message that says what a target is', () => {
    const bad = ['', 'sales', 'queue:', 'agent:', 'queue:sa les', 'Queue:sales', 'agent:bob;rm', 'sip:2001@pbx', '2001 ', '12345678901234567890123456789012X', '1'.repeat(33), `agent:${'a'.repeat(65)}`, 'a'.repeat(5000)];
    for (const target of bad) {
      const v = verdict({ v: 1, type: 'transfer', callId, target, mode: 'blind' });
      assert.match(v, /^target: a transfer target is /, JSON.stringify(target).slice(0, 40));
    }
    assert.equal(verdict({ v: 1, type: 'transfer', callId, target: 'x'.repeat(81), mode: 'blind' }), 'target: a transfer target is at most 80 characters');
    assert.equal(
      verdict({ v: 1, type: 'transfer', callId, target: 'sales', mode: 'blind' }),
      'target: a transfer target is an extension or number (digits, * # +, up to 32), queue:<name> or agent:<name>',
    );
    assert.match(verdict({ v: 1, type: 'transfer', callId, target: 2001, mode: 'blind' }), /^target: /);
  });

  it('refuses a bad mode, a missing field, a bad call id and extra fields', () => {
    assert.match(verdict({ v: 1, type: 'transfer', callId, target: '2001', mode: 'warm' }), /^mode: /);
    assert.match(verdict({ v: 1, type: 'transfer', callId, target: '2001' }), /^mode: /);
    assert.match(verdict({ v: 1, type: 'transfer', callId: 'abc', target: '2001', mode: 'blind' }), /^callId: /);
    assert.notEqual(verdict({ v: 1, type: 'transfer', callId, target: '2001', mode: 'blind', trunk: 'x' }), 'ok');
  });

  it('completeTransfer, conference and cancelConsult take the call id only', () => {
    for (const type of ['completeTransfer', 'conference', 'cancelConsult']) {
      assert.equal(verdict({ v: 1, type, callId }), 'ok', type);
      assert.match(verdict({ v: 1, type }), /^callId: /, type);
      assert.notEqual(verdict({ v: 1, type, callId, target: '2001' }), 'ok', type);
    }
  });

  it('parseTransferTarget tells the three kinds apart', () => {
    assert.deepEqual(parseTransferTarget('2001'), { kind: 'number', number: '2001' });
    assert.deepEqual(parseTransferTarget('+44#9'), { kind: 'number', number: '+44#9' });
    assert.deepEqual(parseTransferTarget('queue:billing.2'), { kind: 'queue', queue: 'billing.2' });
    assert.deepEqual(parseTransferTarget('agent:bob'), { kind: 'agent', agent: 'bob' });
    assert.equal(parseTransferTarget('agent:bob:x'), null);
    assert.equal(parseTransferTarget('extension:2001'), null);
    assert.equal(parseTransferTarget(' 2001'), null);
  });
});
