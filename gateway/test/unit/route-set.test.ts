import assert from 'node:assert/strict';
import sip, { type SipResponse } from 'sip';
import { inDialogAddressing, isLooseRouter, MAX_ROUTE_SET, recordRouteOf } from '../../sip/route-set';

/** Parses Record-Route lines the way sip.js hands them to us. */
function headersOf(lines: string[]): SipResponse['headers'] {
  const text = ['SIP/2.0 200 OK', 'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1', 'From: <sip:a@127.0.0.1>;tag=1', 'To: <sip:b@127.0.0.1>;tag=2', 'Call-ID: x@y', 'CSeq: 1 INVITE', ...lines, 'Content-Length: 0', '', ''].join('\r\n');
  const m = sip.parse(text);
  assert.ok(m);
  return m.headers;
}

describe('route sets (RFC 3261 §12)', () => {
  it('reads Record-Route in header order across several headers and comma lists', () => {
    const rr = recordRouteOf(headersOf(['Record-Route: <sip:p1.invalid;lr>, <sip:10.0.0.1:5070;lr;ftag=x>', 'Record-Route: <sips:p3.invalid;lr>;foo=bar']));
    assert.ok(rr.ok);
    assert.deepEqual(rr.routes.map((r) => r.uri), ['sip:p1.invalid;lr', 'sip:10.0.0.1:5070;lr;ftag=x', 'sips:p3.invalid;lr']);
    assert.equal(rr.routes[2].params.foo, 'bar');
  });

  it('no Record-Route: empty set; in-dialog requests go to the remote target without Route', () => {
    const rr = recordRouteOf(headersOf([]));
    assert.deepEqual(rr, { ok: true, routes: [] });
    assert.deepEqual(inDialogAddressing([], 'sip:pbx@10.0.0.2'), { uri: 'sip:pbx@10.0.0.2', route: [] });
  });

  it('loose routing keeps the Request-URI at the remote target', () => {
    const set = [{ uri: 'sip:10.0.0.1;lr', params: {} }, { uri: 'sip:10.0.0.9', params: {} }];
    const a = inDialogAddressing(set, 'sip:pbx@10.0.0.2:5062');
    assert.equal(a.uri, 'sip:pbx@10.0.0.2:5062');
    assert.deepEqual(a.route.map((r) => r.uri), ['sip:10.0.0.1;lr', 'sip:10.0.0.9']);
  });

  it('strict routing puts the first route in the Request-URI and the remote target last', () => {
    const set = [{ uri: 'sip:10.0.0.1:5080;maddr=10.0.0.1?X-Foo=1', params: {} }, { uri: 'sip:10.0.0.9;lr', params: {} }];
    const a = inDialogAddressing(set, 'sip:pbx@10.0.0.2');
    assert.equal(a.uri, 'sip:10.0.0.1:5080;maddr=10.0.0.1');
    assert.deepEqual(a.route.map((r) => r.uri), ['sip:10.0.0.9;lr', 'sip:pbx@10.0.0.2']);
    assert.equal(isLooseRouter('sip:x.invalid;lr=on'), true);
    assert.equal(isLooseRouter('sip:x.invalid;transport=tcp'), false);
  });

  it('a UAC reverses the set: the proxy nearest to us comes first', () => {
    const rr = recordRouteOf(headersOf(['Record-Route: <sip:far.invalid;lr>, <sip:near.invalid;lr>']));
    assert.ok(rr.ok);
    assert.deepEqual(inDialogAddressing(rr.routes.reverse(), 'sip:callee@10.0.0.5').route.map((r) => r.uri), ['sip:near.invalid;lr', 'sip:far.invalid;lr']);
  });

  it('refuses what cannot be sent back: too many entries, non-SIP or unparseable URIs', () => {
    const many = Array.from({ length: MAX_ROUTE_SET + 1 }, (_, i) => `<sip:10.0.0.${i};lr>`).join(', ');
    const tooMany = recordRouteOf(headersOf([`Record-Route: ${many}`]));
    assert.equal(tooMany.ok, false);
    assert.equal(recordRouteOf(headersOf(['Record-Route: <tel:+4930123;lr>'])).ok, false);
    assert.equal(recordRouteOf(headersOf(['Record-Route: <sip:[::1]:5060;lr>'])).ok, false);
    assert.equal(recordRouteOf({ 'record-route': 'garbage' }).ok, false);
    assert.equal(recordRouteOf(headersOf([`Record-Route: <sip:${'a'.repeat(1100)}.invalid;lr>`])).ok, false);
  });
});
