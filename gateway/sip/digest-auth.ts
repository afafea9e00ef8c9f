import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthHeader, SipRequest } from 'sip';
import digest from 'sip/digest';

export type DigestVerdict = 'ok' | 'missing' | 'stale' | 'bad';

function unquote(v: string | undefined): string {
  if (!v) return '';
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

/**
 * Stateless RFC 2617/3261 digest (MD5, qop=auth) for one trunk. Nonces carry their issue time and
 * an HMAC (sip/digest's generateNonce), so no per-challenge state is kept and expiry is checkable.
 */
export class DigestAuthenticator {
  private readonly secret = randomBytes(16).toString('hex');
  private readonly ha1: string;

  constructor(private readonly opts: { realm: string; username: string; password: string; nonceTtlS: number }) {
    this.ha1 = digest.calculateUserRealmPasswordHash(opts.username, opts.realm, opts.password);
  }

  /** The WWW-Authenticate header for a 401. */
  challenge(stale = false): AuthHeader {
    const h: AuthHeader = {
      scheme: 'Digest',
      realm: `"${this.opts.realm}"`,
      nonce: `"${digest.generateNonce(this.secret)}"`,
      algorithm: 'MD5',
      qop: '"auth"',
    };
    if (stale) h.stale = 'true';
    return h;
  }

  verify(rq: SipRequest): DigestVerdict {
    const creds = (rq.headers.authorization ?? []).find(
      (a) => a.scheme?.toLowerCase() === 'digest' && unquote(a.realm) === this.opts.realm,
    );
    if (!creds) return 'missing';
    const nonce = unquote(creds.nonce);
    if (unquote(creds.username) !== this.opts.username || !nonce) return 'bad';
    const issued = (() => { try { return digest.extractNonceTimestamp(nonce, this.secret); } catch { return false; } })(); // throws on a non-date nonce
    if (!issued) return 'bad';
    const algorithm = unquote(creds.algorithm).toLowerCase();
    if (algorithm && algorithm !== 'md5') return 'bad';
    const qop = unquote(creds.qop).toLowerCase();
    if (qop && qop !== 'auth') return 'bad';
    const expected = digest.calculateDigest({
      ha1: this.ha1,
      method: rq.method,
      nonce,
      nc: unquote(creds.nc),
      cnonce: unquote(creds.cnonce),
      qop: qop || undefined,
      uri: unquote(creds.uri),
    });
    const given = Buffer.from(unquote(creds.response).toLowerCase());
    const want = Buffer.from(expected);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return 'bad';
    // A correct response on an expired nonce is "stale": the PBX retries without asking a human.
    if (Date.now() - issued.getTime() > this.opts.nonceTtlS * 1000) return 'stale';
    return 'ok';
  }
}
