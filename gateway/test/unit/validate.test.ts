import assert from 'node:assert/strict';
import sip, { type SipRequest } from 'sip';
import { ALLOW_HEADER } from '../../sip/messages';
import { validateRequest } from '../../sip/validate';

const SDP = 'v=0\r\no=pbx 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';

interface Opts {
  method?: string;
  uri?: string;
  version?: string;
  maxForwards?: string;
  cseq?: string;
  to?: string;
  callId?: string[];
  contentType?: string | null;
  contentLength?: string | null;
  body?: string;
  extra?: string[];
}

/** A request as a PBX would write it, parsed by sip.js exactly as the stack does. */
function request(o: Opts = {}): SipRequest {
  const method = o.method ?? 'INVITE';
  const body = o.body ?? (method === 'INVITE' ? SDP : '');
  const lines = [
    `${method} ${o.uri ?? 'sip:support@192.0.2.1:5060'} SIP/${o.version ?? '2.0'}`,
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport',
    `Max-Forwards: ${o.maxForwards ?? '70'}`,
    'From: "Alice" <sip:1001@192.0.2.10>;tag=1928301774',
    `To: ${o.to ?? '<sip:support@192.0.2.1>'}`,
    ...(o.callId ?? ['a84b4c76e66710@192.0.2.10']).map((c) => `Call-ID: ${c}`),
    `CSeq: ${o.cseq ?? `314159 ${method}`}`,
    'Contact: <sip:1001@192.0.2.10:5060>',
    ...(o.extra ?? []),
  ];
  const contentType = o.contentType === undefined ? (body ? 'application/sdp' : null) : o.contentType;
  if (contentType) lines.push(`Content-Type: ${contentType}`);
  const contentLength = o.contentLength === undefined ? String(Buffer.byteLength(body)) : o.contentLength;
  if (contentLength !== null) lines.push(`Content-Length: ${contentLength}`);
  const parsed = sip.parse(`${lines.join('\r\n')}\r\n\r\n${body}`);
  assert.ok(parsed && 'method' in parsed, 'sip.js parsed the test request');
  return parsed as SipRequest;
}

function statusOf(o: Opts): number | null {
  return validateRequest(request(o))?.status ?? null;
}

describe('validateRequest', () => {
  it('accepts a normal INVITE with SDP', () => {
    assert.equal(validateRequest(request()), null);
  });

  it('accepts Max-Forwards 0: a UAS answers normally (483 is for proxies)', () => {
    const rq = request({ maxForwards: '0' });
    assert.equal(rq.headers['max-forwards'], '0');
    assert.equal(validateRequest(rq), null);
  });

  it('rejects a non-numeric Max-Forwards with 400', () => {
    assert.equal(statusOf({ maxForwards: 'seventy' }), 400);
    assert.equal(statusOf({ maxForwards: '256' }), 400);
  });

  it('rejects SIP/3.0 with 505', () => {
    const r = validateRequest(request({ version: '3.0' }));
    assert.equal(r?.status, 505);
  });

  it('accepts tel: Request-URIs (RFC 3966), rejects mailto: with 416 and a malformed tel: with 400', () => {
    assert.equal(statusOf({ uri: 'tel:+15551234567' }), null);
    assert.equal(statusOf({ uri: 'tel:+1-555-123-4567;phone-context=example.com' }), null);
    assert.equal(statusOf({ uri: 'tel:<script>' }), 400);
    assert.equal(statusOf({ uri: `tel:+1${'5'.repeat(100)}` }), 400);
    assert.equal(statusOf({ uri: 'mailto:support@example.com' }), 416);
    assert.equal(statusOf({ uri: 'sips:support@192.0.2.1' }), null);
  });

  it('rejects a CSeq whose method differs from the request method with 400', () => {
    const r = validateRequest(request({ cseq: '314159 ACK' }));
    assert.equal(r?.status, 400);
    assert.match(r?.reason ?? '', /CSeq/);
  });

  it('rejects a CSeq number above 2^31-1 with 400', () => {
    assert.equal(statusOf({ cseq: '2147483648 INVITE' }), 400);
    assert.equal(statusOf({ cseq: '2147483647 INVITE' }), null);
  });

  it('rejects a non-numeric or negative Content-Length with 400', () => {
    assert.equal(statusOf({ contentLength: 'many' }), 400);
    assert.equal(statusOf({ contentLength: '-5' }), 400);
  });

  it('rejects a Content-Length larger than the body with 400', () => {
    const r = validateRequest(request({ contentLength: String(Buffer.byteLength(SDP) + 30) }));
    assert.equal(r?.status, 400);
    assert.match(r?.reason ?? '', /Content-Length/);
    // Shorter than the body is fine for sip.js (it truncates) and for us.
    assert.equal(statusOf({ contentLength: String(Buffer.byteLength(SDP) - 2) }), null);
  });

  it('rejects a repeated Call-ID (sip.js joins the copies with a comma) with 400', () => {
    const rq = request({ callId: ['first@192.0.2.10', 'second@192.0.2.10'] });
    assert.equal(rq.headers['call-id'], 'first@192.0.2.10,second@192.0.2.10');
    const r = validateRequest(rq);
    assert.equal(r?.status, 400);
    assert.match(r?.reason ?? '', /Call-ID/);
  });

  it('rejects a To header whose URI is not a URI with 400', () => {
    const r = validateRequest(request({ to: '<support at the office>' }));
    assert.equal(r?.status, 400);
    assert.match(r?.reason ?? '', /To/);
    assert.equal(statusOf({ to: '<nouri>' }), 400);
  });

  it('answers REGISTER with 405 and an Allow header of what we implement', () => {
    const r = validateRequest(request({ method: 'REGISTER' }));
    assert.equal(r?.status, 405);
    assert.equal(r?.headers?.Allow, ALLOW_HEADER);
    assert.ok(!/REGISTER/.test(ALLOW_HEADER));
    for (const m of ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS']) assert.ok(ALLOW_HEADER.includes(m), m);
  });

  it('answers an unknown method with 501', () => {
    const r = validateRequest(request({ method: 'FROBNICATE' }));
    assert.equal(r?.status, 501);
  });

  it('answers Require: 100rel with 420 and Unsupported: 100rel', () => {
    const r = validateRequest(request({ extra: ['Require: 100rel'] }));
    assert.equal(r?.status, 420);
    assert.equal(r?.headers?.Unsupported, '100rel');
    // Supported (not Require) is only a hint and must not be refused.
    assert.equal(statusOf({ extra: ['Supported: 100rel, timer'] }), null);
  });

  it('lists every unsupported option tag of Require in Unsupported; timer (RFC 4028) is supported', () => {
    const r = validateRequest(request({ extra: ['Require: 100rel, timer, foo'] }));
    assert.equal(r?.status, 420);
    assert.equal(r?.headers?.Unsupported, '100rel, foo');
    assert.equal(statusOf({ extra: ['Require: timer', 'Session-Expires: 1800'] }), null);
  });

  it('implements UPDATE and REFER (Allow lists them); NOTIFY and others stay 405', () => {
    assert.ok(ALLOW_HEADER.includes('UPDATE') && ALLOW_HEADER.includes('REFER'), ALLOW_HEADER);
    assert.equal(statusOf({ method: 'UPDATE' }), null);
    assert.equal(statusOf({ method: 'REFER' }), null);
    assert.equal(statusOf({ method: 'NOTIFY' }), 405, 'a NOTIFY outside a dialog: we take no subscriptions');
    assert.equal(statusOf({ method: 'SUBSCRIBE', to: '<sip:support@192.0.2.1>;tag=abc' }), 405);
    assert.ok(!ALLOW_HEADER.includes('NOTIFY'), ALLOW_HEADER);
  });

  it('lets an in-dialog NOTIFY through to its dialog (the subscription of a REFER we sent)', () => {
    assert.equal(statusOf({ method: 'NOTIFY', to: '<sip:support@192.0.2.1>;tag=abc' }), null);
  });

  it('answers an INVITE with a text/plain body with 415 and Accept: application/sdp', () => {
    const r = validateRequest(request({ contentType: 'text/plain', body: 'hello' }));
    assert.equal(r?.status, 415);
    assert.equal(r?.headers?.Accept, 'application/sdp');
    assert.equal(statusOf({ contentType: 'application/SDP; charset=utf-8' }), null);
  });

  it('answers an INVITE with Accept: text/html with 406, but not one that also accepts SDP', () => {
    assert.equal(statusOf({ extra: ['Accept: text/html'] }), 406);
    assert.equal(statusOf({ extra: ['Accept: text/html, application/sdp'] }), null);
    assert.equal(statusOf({ extra: ['Accept: */*'] }), null);
  });
});
