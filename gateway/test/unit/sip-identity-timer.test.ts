import assert from 'node:assert/strict';
import sip, { type SipRequest } from 'sip';
import { callerIdentity, normaliseNumber, parseNameAddrList, privacyOf, uriUser } from '../../sip/identity';
import { expiryDelayMs, negotiateSessionTimer, parseSessionTimer, refreshDelayMs } from '../../sip/session-timer';
import { referTargetNumber } from '../../calls/call';
import { IntentResolver } from '../../routing/intent';
import { configSchema } from '../../config/schema';
import { rtpTimeoutS } from '../../calls/call';

/** An INVITE as a PBX would write it, parsed by sip.js exactly as the stack does. */
function invite(extra: string[], opts: { uri?: string; from?: string; to?: string } = {}): SipRequest {
  const text = [
    `INVITE ${opts.uri ?? 'sip:support@192.0.2.1'} SIP/2.0`,
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1',
    `From: ${opts.from ?? '"Alice" <sip:1001@192.0.2.10>'};tag=1`,
    `To: ${opts.to ?? '<sip:support@192.0.2.1>'}`,
    'Call-ID: c1@192.0.2.10',
    'CSeq: 1 INVITE',
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const rq = sip.parse(text);
  assert.ok(rq && 'method' in rq);
  return rq as SipRequest;
}

const CFG = { minSessionExpiresS: 90, sessionExpiresS: 1800 };

describe('tel: URIs and number normalisation', () => {
  it('takes the number of a tel: URI without its parameters, separators removed', () => {
    assert.equal(uriUser('tel:+49-30-1234-567;phone-context=example.com'), '+49301234567');
    assert.equal(uriUser('tel:+4930(555).12 34'), '+493055512');
    assert.equal(uriUser('TEL:911'), '911');
  });

  it('normalises sip: users that are phone numbers only', () => {
    assert.equal(uriUser('sip:+49.30.555@pbx;user=phone'), '+4930555');
    assert.equal(uriUser('sip:alice.smith@pbx'), 'alice.smith');
    assert.equal(uriUser('sip:%2B4930555@pbx'), '+4930555');
    assert.equal(uriUser('sip:800-555-0100;isub=1@pbx'), '8005550100');
    assert.equal(uriUser('sip:pbx.example.com'), null);
    assert.equal(uriUser('mailto:a@b'), null);
    assert.equal(normaliseNumber('anonymous'), 'anonymous');
  });

  it('reads tel: in From and the Request-URI through sip.js', () => {
    const rq = invite([], { uri: 'tel:+4930123', from: '<tel:+49-30-555>', to: '<tel:+4930123>' });
    const id = callerIdentity(rq, false);
    assert.equal(id.number, '+4930555');
    assert.equal(id.called, '+4930123');
  });
});

describe('caller identity (PAI, RPID, Privacy, Diversion, History-Info)', () => {
  it('splits name-addr lists outside quotes and brackets', () => {
    const list = parseNameAddrList('"Doe, Jane" <sip:+4930555@pbx>;x=1, <tel:+4930555>, sip:bare@host;y');
    assert.deepEqual(list.map((e) => e.uri), ['sip:+4930555@pbx', 'tel:+4930555', 'sip:bare@host']);
    assert.equal(list[0].name, 'Doe, Jane');
    assert.equal(list[0].params.x, '1');
    assert.deepEqual(parseNameAddrList('x'.repeat(5000)), []);
    assert.equal(parseNameAddrList(Array.from({ length: 100 }, (_, i) => `<sip:${i}@h>`).join(',')).length, 16);
  });

  it('uses P-Asserted-Identity only when the trunk trusts it', () => {
    const rq = invite(['P-Asserted-Identity: "Jane" <sip:+4930555@pbx>, <tel:+4930555>'], { from: '"Anonymous" <sip:anonymous@anonymous.invalid>' });
    const trusted = callerIdentity(rq, true);
    assert.equal(trusted.number, '+4930555');
    assert.equal(trusted.name, 'Jane');
    assert.equal(trusted.source, 'pai');
    assert.equal(trusted.asserted, 'sip:+4930555@pbx');
    const untrusted = callerIdentity(rq, false);
    assert.equal(untrusted.number, 'anonymous');
    assert.equal(untrusted.source, 'from');
    assert.equal(untrusted.asserted, null);
  });

  it('falls back to Remote-Party-ID (party=calling) and its privacy parameter', () => {
    const rq = invite(['Remote-Party-ID: "Bob" <sip:5551234@pbx>;party=calling;privacy=full;screen=yes']);
    const id = callerIdentity(rq, true);
    assert.equal(id.number, '5551234');
    assert.equal(id.source, 'rpid');
    assert.equal(id.privacy, 'full');
    assert.equal(callerIdentity(invite(['Remote-Party-ID: <sip:5551234@pbx>;party=called']), true).source, 'from');
  });

  it('Privacy: id hides; none does not; unknown tokens are ignored', () => {
    assert.equal(privacyOf('id'), 'id');
    assert.equal(privacyOf('id;critical'), 'id;critical');
    assert.equal(privacyOf('none'), null);
    assert.equal(privacyOf('whatever'), null);
    assert.equal(callerIdentity(invite(['Privacy: id', 'P-Asserted-Identity: <sip:+4930555@pbx>']), true).privacy, 'id');
  });

  it('the original called number is the last Diversion entry, else History-Info index 1', () => {
    const div = invite(['Diversion: <sip:8005550101@pbx>;reason=no-answer;counter=1', 'Diversion: <sip:800-555-0100@pbx>;reason=unconditional'], { to: '<sip:2001@ccedge>' });
    assert.equal(callerIdentity(div, false).originalCalled, '8005550100');
    assert.equal(callerIdentity(div, false).called, '2001');
    const hi = invite(['History-Info: <sip:2001@ccedge>;index=1.1, <sip:8005550100@pbx>;index=1'], { to: '<sip:2001@ccedge>' });
    assert.equal(callerIdentity(hi, false).originalCalled, '8005550100');
    assert.equal(callerIdentity(invite([]), false).originalCalled, null);
  });

  it('DNIS rules match the original called number with on: original or either', () => {
    const r = new IntentResolver({
      intents: ['billing', 'tech', 'general'],
      routing: { dnis: [{ match: '8005550100', intent: 'billing', on: 'original' }, { match: '2001', intent: 'tech' }], callerPrefixes: [], header: null, defaultIntent: 'general' },
    });
    assert.equal(r.resolveRules({ callId: 'a', fromUser: null, toUser: '2001', originalCalled: '8005550100', headers: {} }).intent, 'billing');
    assert.equal(r.resolveRules({ callId: 'b', fromUser: null, toUser: '2001', headers: {} }).intent, 'tech');
    assert.equal(r.resolveRules({ callId: 'c', fromUser: null, toUser: '8005550100', headers: {} }).intent, undefined, 'on: original does not match the To user');
  });

  it('REFER targets: a number from sip:, sips: or tel:, nothing else', () => {
    assert.equal(referTargetNumber('sip:+15550199@pbx;user=phone'), '+15550199');
    assert.equal(referTargetNumber('tel:+1-555-0199'), '+15550199');
    assert.equal(referTargetNumber('http://evil'), null);
    assert.equal(referTargetNumber('sip:a%20b@x'), null);
  });
});

describe('session timers (RFC 4028)', () => {
  it('no Session-Expires and no timer support: no timer', () => {
    assert.deepEqual(negotiateSessionTimer(invite([]).headers, CFG), { kind: 'none' });
  });

  it('accepts the RFC minimum of 90 s and keeps the refresher asked for', () => {
    const n = negotiateSessionTimer(invite(['Supported: timer', 'Session-Expires: 90;refresher=uas']).headers, CFG);
    assert.deepEqual(n, { kind: 'timer', interval: 90, refresher: 'uas', require: true });
  });

  it('422 with our Min-SE below sip.minSessionExpiresS', () => {
    assert.deepEqual(negotiateSessionTimer(invite(['Supported: timer', 'Session-Expires: 60']).headers, CFG), { kind: 'reject', minSe: 90 });
    assert.equal(negotiateSessionTimer(invite(['Session-Expires: 60']).headers, { ...CFG, minSessionExpiresS: 30 }).kind, 'timer');
  });

  it('a peer without timer support cannot refresh: we do (refresher=uas), no Require', () => {
    assert.deepEqual(negotiateSessionTimer(invite(['Session-Expires: 1800;refresher=uac']).headers, CFG), { kind: 'timer', interval: 1800, refresher: 'uas', require: false });
  });

  it('Supported: timer without an interval gets ours, the caller refreshes; Min-SE raises it', () => {
    assert.deepEqual(negotiateSessionTimer(invite(['Supported: timer']).headers, CFG), { kind: 'timer', interval: 1800, refresher: 'uac', require: true });
    assert.deepEqual(negotiateSessionTimer(invite(['Require: timer', 'Min-SE: 3600']).headers, CFG), { kind: 'timer', interval: 3600, refresher: 'uac', require: true });
    assert.equal(negotiateSessionTimer(invite(['Require: timer', 'Session-Expires: 600', 'Min-SE: 900']).headers, CFG).kind, 'timer');
  });

  it('the compact form x is read; garbage is a bad request, never a throw', () => {
    const compact = parseSessionTimer(invite(['x: 1200']).headers);
    assert.equal('bad' in compact ? undefined : compact.expires, 1200);
    assert.equal(negotiateSessionTimer(invite(['Session-Expires: soon']).headers, CFG).kind, 'bad');
    assert.equal(negotiateSessionTimer(invite(['Session-Expires: 99999999999']).headers, CFG).kind, 'bad');
    assert.equal(negotiateSessionTimer(invite(['Min-SE: -1']).headers, CFG).kind, 'bad');
  });

  it('refresh at half the interval; the other side gives up at expiry minus min(32 s, interval/3)', () => {
    assert.equal(refreshDelayMs(1800), 900_000);
    assert.equal(expiryDelayMs(1800), 1_768_000);
    assert.equal(expiryDelayMs(90), 60_000);
    assert.equal(expiryDelayMs(6), 4_000);
  });
});

describe('issue 14 config keys', () => {
  const base = { site: { deviceId: 'd1' }, trunks: [{ name: 'pbx', allow: ['127.0.0.1'] }] };
  const parse = (extra: Record<string, unknown>) => configSchema.safeParse({ ...base, ...extra });

  it('calls.rtpTimeoutS defaults to 60; the old rtp.inactivityTimeoutS still works; both set differently is an error', () => {
    const d = parse({});
    assert.ok(d.success);
    assert.equal(rtpTimeoutS(d.data), 60);
    const old = parse({ rtp: { inactivityTimeoutS: 0 } });
    assert.ok(old.success);
    assert.equal(rtpTimeoutS(old.data), 0);
    const both = parse({ rtp: { inactivityTimeoutS: 30 }, calls: { rtpTimeoutS: 20 } });
    assert.ok(!both.success);
    assert.match(JSON.stringify(both.error.issues), /old name of calls.rtpTimeoutS/);
  });

  it('session timer defaults are the RFC minimum and 1800 s; trust and REFER are off per trunk', () => {
    const d = parse({});
    assert.ok(d.success);
    assert.equal(d.data.sip.minSessionExpiresS, 90);
    assert.equal(d.data.sip.sessionExpiresS, 1800);
    assert.equal(d.data.trunks[0].trustIdentity, false);
    assert.equal(d.data.trunks[0].acceptRefer, false);
  });

  it('acceptRefer needs an outbound address to dial the target', () => {
    const r = parse({ trunks: [{ name: 'pbx', allow: ['127.0.0.1'], acceptRefer: true }] });
    assert.ok(!r.success);
    assert.match(JSON.stringify(r.error.issues), /outbound address to dial REFER targets/);
  });
});
