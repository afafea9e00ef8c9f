import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import sip, { type AuthHeader, type SipRequest } from 'sip';
import { DigestAuthenticator } from '../../sip/digest-auth';

const REALM = 'ccedge';
const USER = 'pbx-trunk';
const PASSWORD = 'correct horse';
const URI = 'sip:support@192.0.2.1:5060';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function unquote(v: string | undefined): string {
  return v && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : (v ?? '');
}

/** What the PBX does with a 401: RFC 2617 MD5 with qop=auth, computed independently of sip/digest. */
function authorization(opts: {
  challenge: AuthHeader;
  method?: string;
  password?: string;
  username?: string;
  realm?: string;
  uri?: string;
  qop?: boolean;
  nonce?: string;
  nc?: number;
}): string {
  const method = opts.method ?? 'INVITE';
  const realm = opts.realm ?? unquote(opts.challenge.realm);
  const username = opts.username ?? USER;
  const nonce = opts.nonce ?? unquote(opts.challenge.nonce);
  const uri = opts.uri ?? URI;
  const ha1 = md5(`${username}:${realm}:${opts.password ?? PASSWORD}`);
  const ha2 = md5(`${method}:${uri}`);
  if (opts.qop === false) {
    return `Digest username="${username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${md5(`${ha1}:${nonce}:${ha2}`)}", algorithm=MD5`;
  }
  const nc = (opts.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = randomBytes(8).toString('hex');
  const response = md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `Digest username="${username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
}

/** The request as it reaches DigestAuthenticator: text parsed by sip.js. */
function request(authHeader?: string, method = 'INVITE'): SipRequest {
  const lines = [
    `${method} ${URI} SIP/2.0`,
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-auth-1',
    'Max-Forwards: 70',
    'From: <sip:1001@192.0.2.10>;tag=abc',
    'To: <sip:support@192.0.2.1>',
    'Call-ID: auth-test@192.0.2.10',
    `CSeq: 2 ${method}`,
    ...(authHeader ? [`Authorization: ${authHeader}`] : []),
    'Content-Length: 0',
  ];
  return sip.parse(`${lines.join('\r\n')}\r\n\r\n`) as SipRequest;
}

function authenticator(nonceTtlS = 300, maxNonces?: number): DigestAuthenticator {
  return new DigestAuthenticator({ realm: REALM, username: USER, password: PASSWORD, nonceTtlS, maxNonces });
}

describe('DigestAuthenticator', () => {
  it('issues an MD5 qop=auth challenge for its realm', () => {
    const c = authenticator().challenge();
    assert.equal(c.scheme, 'Digest');
    assert.equal(unquote(c.realm), REALM);
    assert.equal(unquote(c.qop), 'auth');
    assert.equal(c.algorithm, 'MD5');
    assert.ok(unquote(c.nonce).length >= 16);
    assert.equal(c.stale, undefined);
    assert.equal(authenticator().challenge(true).stale, 'true');
  });

  it('accepts a response a PBX computes from the challenge (RFC 2617, qop=auth)', () => {
    const auth = authenticator();
    const challenge = auth.challenge();
    assert.equal(auth.verify(request(authorization({ challenge }))), 'ok');
  });

  it('accepts a response without qop (RFC 2069 style) as well', () => {
    const auth = authenticator();
    assert.equal(auth.verify(request(authorization({ challenge: auth.challenge(), qop: false }))), 'ok');
  });

  it('says missing when there is no Authorization header', () => {
    assert.equal(authenticator().verify(request()), 'missing');
  });

  it('says missing when the only credentials are for another realm', () => {
    const auth = authenticator();
    assert.equal(auth.verify(request(authorization({ challenge: auth.challenge(), realm: 'other-realm' }))), 'missing');
  });

  it('rejects a wrong password', () => {
    const auth = authenticator();
    assert.equal(auth.verify(request(authorization({ challenge: auth.challenge(), password: 'wrong horse' }))), 'bad');
  });

  it('rejects a wrong user name even with the right password', () => {
    const auth = authenticator();
    assert.equal(auth.verify(request(authorization({ challenge: auth.challenge(), username: 'intruder' }))), 'bad');
  });

  it('rejects credentials computed for another method (INVITE response replayed on a BYE)', () => {
    const auth = authenticator();
    const header = authorization({ challenge: auth.challenge(), method: 'INVITE' });
    assert.equal(auth.verify(request(header, 'INVITE')), 'ok');
    assert.equal(auth.verify(request(header, 'BYE')), 'bad');
  });

  it('rejects a nonce issued by another authenticator (another trunk or an earlier run)', () => {
    const mine = authenticator();
    const other = authenticator();
    const foreign = other.challenge();
    assert.equal(mine.verify(request(authorization({ challenge: foreign }))), 'bad');
  });

  it('rejects a nonce it never issued', () => {
    const auth = authenticator();
    const made = Buffer.from(`${new Date().toISOString()};${'0'.repeat(32)}`).toString('base64');
    assert.equal(auth.verify(request(authorization({ challenge: auth.challenge(), nonce: made }))), 'bad');
  });

  it('answers bad, not an exception, for a nonce whose date part is not a date', () => {
    const auth = authenticator();
    const crafted = Buffer.from('not-a-date;whatever').toString('base64');
    assert.equal(auth.verify(request(authorization({ challenge: auth.challenge(), nonce: crafted }))), 'bad');
  });

  it('says stale for a correct response on an expired nonce, bad for a wrong one', async () => {
    // The schema's minimum TTL is 5 s; the class itself takes 0, which expires a nonce after 1 ms.
    const auth = authenticator(0);
    const challenge = auth.challenge();
    await sleep(20);
    assert.equal(auth.verify(request(authorization({ challenge }))), 'stale');
    assert.equal(auth.verify(request(authorization({ challenge, password: 'nope' }))), 'bad');
  });

  describe('nonce counts (RFC 7616 replay rules)', () => {
    it('refuses a replayed response (same nonce, same nc) as replay, accepts a higher nc', () => {
      const auth = authenticator();
      const challenge = auth.challenge();
      const first = authorization({ challenge, nc: 1 });
      assert.equal(auth.verify(request(first)), 'ok');
      assert.equal(auth.verify(request(first)), 'replay', 'the captured INVITE sent again');
      assert.equal(auth.verify(request(authorization({ challenge, nc: 1 }))), 'replay', 'fresh cnonce, same nc');
      assert.equal(auth.verify(request(authorization({ challenge, nc: 2 }))), 'ok');
      assert.equal(auth.verify(request(authorization({ challenge, nc: 2 }))), 'replay');
      assert.equal(auth.verify(request(authorization({ challenge, nc: 1 }))), 'replay', 'a lower nc after a higher one');
      assert.equal(auth.verify(request(authorization({ challenge, nc: 7 }))), 'ok', 'gaps are allowed (RFC 7616: greater, not next)');
    });

    it('a wrong response does not advance the count (a guess cannot burn the nonce)', () => {
      const auth = authenticator();
      const challenge = auth.challenge();
      assert.equal(auth.verify(request(authorization({ challenge, nc: 5, password: 'guess' }))), 'bad');
      assert.equal(auth.verify(request(authorization({ challenge, nc: 1 }))), 'ok');
      assert.equal(auth.trackedNonces, 1);
    });

    it('without qop (no nc) a nonce is single-use', () => {
      const auth = authenticator();
      const header = authorization({ challenge: auth.challenge(), qop: false });
      assert.equal(auth.verify(request(header)), 'ok');
      assert.equal(auth.verify(request(header)), 'replay');
    });

    it('with qop, a missing or malformed nc is bad', () => {
      const auth = authenticator();
      const header = authorization({ challenge: auth.challenge() });
      assert.equal(auth.verify(request(header.replace(/nc=[0-9a-f]+/, 'nc=zz'))), 'bad');
      assert.equal(auth.verify(request(header.replace(/, nc=[0-9a-f]+/, ''))), 'bad');
    });

    it('an expired nonce is stale even with a fresh nc', async () => {
      const auth = authenticator(0);
      const challenge = auth.challenge();
      await sleep(20);
      assert.equal(auth.verify(request(authorization({ challenge, nc: 9 }))), 'stale');
    });

    it('stays bounded, and a nonce whose count was forgotten is not accepted again', async () => {
      const auth = authenticator(300, 2);
      const a = auth.challenge();
      await sleep(3); // nonces carry a millisecond time: keep them distinct
      const b = auth.challenge();
      await sleep(3);
      const c = auth.challenge();
      assert.equal(auth.verify(request(authorization({ challenge: a }))), 'ok');
      assert.equal(auth.verify(request(authorization({ challenge: b }))), 'ok');
      assert.equal(auth.verify(request(authorization({ challenge: c }))), 'ok'); // evicts a
      assert.equal(auth.trackedNonces, 2);
      assert.equal(auth.verify(request(authorization({ challenge: a, nc: 1 }))), 'replay', 'forgotten, so refused: never a replay accepted');
      assert.equal(auth.verify(request(authorization({ challenge: a, nc: 2 }))), 'replay');
      await sleep(3);
      assert.equal(auth.verify(request(authorization({ challenge: auth.challenge() }))), 'ok', 'a fresh nonce still works');
    });
  });
});
