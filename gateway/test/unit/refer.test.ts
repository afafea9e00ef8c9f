import assert from 'node:assert/strict';
import sip, { type SipRequest } from 'sip';
import { checkReferUri, readReferNotify, referTargetForNumber, sipfragStatus } from '../../sip/refer';

function notifyRq(headers: string[], body: string): SipRequest {
  const text = [
    'NOTIFY sip:ccedge@192.0.2.1:5060 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnotify1',
    'From: <sip:1001@192.0.2.10>;tag=pbx',
    'To: <sip:support@192.0.2.1>;tag=ours',
    'Call-ID: n1@192.0.2.10',
    'CSeq: 7 NOTIFY',
    ...headers,
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
  const rq = sip.parse(text);
  assert.ok(rq && 'method' in rq);
  return rq as SipRequest;
}

describe('REFER building blocks (gateway/sip/refer.ts)', () => {
  it('reads the status line of a sipfrag and refuses anything else', () => {
    assert.equal(sipfragStatus('SIP/2.0 100 Trying\r\n'), 100);
    assert.equal(sipfragStatus('SIP/2.0 200 OK\r\nContact: <sip:x@y>\r\n'), 200);
    assert.equal(sipfragStatus('SIP/2.0 603'), 603);
    for (const bad of ['', 'SIP/2.0 99 Low\r\n', 'SIP/2.0 700 High', 'INVITE sip:x@y SIP/2.0', 'SIP/2.0 200OK', 'x'.repeat(5000)]) {
      assert.equal(typeof sipfragStatus(bad), 'string', JSON.stringify(bad.slice(0, 20)));
    }
  });

  it('reads a NOTIFY of the refer package: status and whether it terminates the subscription', () => {
    const type = 'Content-Type: message/sipfrag;version=2.0';
    assert.deepEqual(readReferNotify(notifyRq(['Event: refer;id=42', 'Subscription-State: active;expires=60', type], 'SIP/2.0 180 Ringing\r\n'), 42), { ok: true, status: 180, terminated: false });
    assert.deepEqual(readReferNotify(notifyRq(['Event: refer', 'Subscription-State: terminated;reason=noresource', type], 'SIP/2.0 200 OK\r\n'), 42), { ok: true, status: 200, terminated: true });
    assert.deepEqual(readReferNotify(notifyRq(['o: refer', 'Subscription-State: pending', type], 'SIP/2.0 100 Trying\r\n'), 42), { ok: true, status: 100, terminated: false });
    const status = (headers: string[], body: string): number => {
      const r = readReferNotify(notifyRq(headers, body), 42);
      return r.ok ? 0 : r.status;
    };
    assert.equal(status(['Event: presence', 'Subscription-State: active', type], 'SIP/2.0 200 OK'), 489);
    assert.equal(status(['Event: refer;id=41', 'Subscription-State: active', type], 'SIP/2.0 200 OK'), 489);
    assert.equal(status(['Subscription-State: active', type], 'SIP/2.0 200 OK'), 400);
    assert.equal(status(['Event: refer', type], 'SIP/2.0 200 OK'), 400);
    assert.equal(status(['Event: refer', 'Subscription-State: sleeping', type], 'SIP/2.0 200 OK'), 400);
    assert.equal(status(['Event: refer', 'Subscription-State: active', 'Content-Type: text/plain'], 'SIP/2.0 200 OK'), 400);
    assert.equal(status(['Event: refer', 'Subscription-State: active', type], 'garbage'), 400);
  });

  it('builds Refer-To for a number at the PBX (host of its Contact) and refuses what is not a number', () => {
    assert.equal(referTargetForNumber('2002', 'sip:1001@10.1.1.5:5080;transport=tcp'), 'sip:2002@10.1.1.5:5080;transport=tcp');
    assert.equal(referTargetForNumber('+4930123', 'sips:pbx@pbx.example.com'), 'sips:+4930123@pbx.example.com');
    assert.equal(referTargetForNumber('*72#', 'sip:pbx@10.1.1.5'), 'sip:*72%23@10.1.1.5');
    assert.equal(referTargetForNumber('2002', 'sip:masked@10.255.255.254;line=abc', 'pbx.example.com'), 'sip:2002@pbx.example.com', 'a named host wins over a masked Contact');
    assert.throws(() => referTargetForNumber('2002', 'sip:pbx@10.1.1.5', 'bad host>'), { code: 'SIP_BAD_REFER_TARGET' });
    for (const bad of ['', '20 02', '2002@evil', 'x'.repeat(10), '1'.repeat(33)]) {
      assert.throws(() => referTargetForNumber(bad, 'sip:pbx@10.1.1.5'), { code: 'SIP_BAD_REFER_TARGET' }, bad);
    }
    // Whatever it builds is a URI refer() accepts.
    assert.equal(checkReferUri(referTargetForNumber('*72#', 'sip:pbx@10.1.1.5'), 'target'), 'sip:*72%23@10.1.1.5');
  });
});
