import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthHeader, SipRequest } from 'sip';
import digest from 'sip/digest';

/**
 * `replay`: a correct response whose nonce count is not above the last one accepted for that nonce
 * (RFC 7616 §3.4.5 / 3.3): answered with a fresh challenge, like `stale`, but it is not a guess.
 */
export type DigestVerdict = 'ok' | 'missing' | 'stale' | 'replay' | 'bad';

export interface DigestAuthOptions {
  realm: string;
  username: string;
  password: string;
  nonceTtlS: number;
  /** Nonces whose highest nc is remembered at once (default 10,000); see NonceCounts. */
  maxNonces?: number;
}

/**
 * Highest `nc` accepted per nonce, bounded. Entries are added on a successful response only, so a
 * flood of wrong guesses cannot fill it. When full, the oldest entry goes, and every nonce issued
 * no later than an evicted one is answered `stale` from then on: forgetting a count must never turn
 * into accepting a replay. Expired nonces are `stale` anyway, so their entries are dropped freely.
 */
class NonceCounts {
  private readonly counts = new Map<string, { nc: number; issued: number }>();
  /** Issue time (ms) of the newest nonce whose count was forgotten before it expired. */
  private forgottenUpTo = -1;

  constructor(
    private readonly max: number,
    private readonly ttlMs: number,
  ) {}

  /** True if `nc` is above the last accepted count for this nonce (and then records it). */
  accept(nonce: string, issued: number, nc: number, now: number): boolean {
    const seen = this.counts.get(nonce);
    if (seen) {
      if (nc <= seen.nc) return false;
      seen.nc = nc;
      return true;
    }
    if (issued <= this.forgottenUpTo) return false;
    this.dropExpired(now);
    if (this.counts.size >= this.max) {
      const oldest = this.counts.entries().next().value;
      if (oldest) {
        this.counts.delete(oldest[0]);
        this.forgottenUpTo = Math.max(this.forgottenUpTo, oldest[1].issued);
      }
    }
    this.counts.set(nonce, { nc, issued });
    return true;
  }

  private dropExpired(now: number): void {
    // Map order is first-use order, close to issue order: stop at the first live entry.
    for (const [nonce, e] of this.counts) {
      if (now - e.issued <= this.ttlMs) break;
      this.counts.delete(nonce);
    }
  }

  get size(): number {
    return this.counts.size;
  }
}

function unquote(v: string | undefined): string {
  if (!v) return '';
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

/**
 * RFC 2617/3261 digest (MD5, qop=auth) for one trunk, with RFC 7616's replay rules. Nonces carry
 * their issue time and an HMAC (sip/digest's generateNonce), so no per-challenge state is kept and
 * expiry is checkable; the only state is the bounded highest-nc map of nonces already used.
 */
export class DigestAuthenticator {
  private readonly secret = randomBytes(16).toString('hex');
  private readonly ha1: string;
  private readonly used: NonceCounts;

  constructor(private readonly opts: DigestAuthOptions) {
    this.ha1 = digest.calculateUserRealmPasswordHash(opts.username, opts.realm, opts.password);
    this.used = new NonceCounts(opts.maxNonces ?? 10_000, opts.nonceTtlS * 1000);
  }

  /**
   * Whether the request carries credentials for this realm at all: cheap (no hashing), so the
   * caller can count an attempt before `verify` computes anything.
   */
  hasCredentials(rq: SipRequest): boolean {
    return this.credentials(rq) !== undefined;
  }

  /** Nonces whose count is remembered (for tests and diagnostics). */
  get trackedNonces(): number {
    return this.used.size;
  }

  private credentials(rq: SipRequest): AuthHeader | undefined {
    return (rq.headers.authorization ?? []).find((a) => a.scheme?.toLowerCase() === 'digest' && unquote(a.realm) === this.opts.realm);
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
    const creds = this.credentials(rq);
    if (!creds) return 'missing';
    const nonce = unquote(creds.nonce);
    if (unquote(creds.username) !== this.opts.username || !nonce) return 'bad';
    const issued = (() => { try { return digest.extractNonceTimestamp(nonce, this.secret); } catch { return false; } })(); // throws on a non-date nonce
    if (!issued) return 'bad';
    const algorithm = unquote(creds.algorithm).toLowerCase();
    if (algorithm && algorithm !== 'md5') return 'bad';
    const qop = unquote(creds.qop).toLowerCase();
    if (qop && qop !== 'auth') return 'bad';
    // nc is 8 hex digits with qop; without qop (RFC 2069 style) there is none, which makes the
    // nonce single-use (count 0 can be accepted once).
    const ncText = unquote(creds.nc);
    if (qop && !/^[0-9a-fA-F]{8}$/.test(ncText)) return 'bad';
    const nc = qop ? parseInt(ncText, 16) : 0;
    const expected = digest.calculateDigest({
      ha1: this.ha1,
      method: rq.method,
      nonce,
      nc: ncText,
      cnonce: unquote(creds.cnonce),
      qop: qop || undefined,
      uri: unquote(creds.uri),
    });
    const given = Buffer.from(unquote(creds.response).toLowerCase());
    const want = Buffer.from(expected);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return 'bad';
    // A correct response on an expired nonce is "stale": the PBX retries without asking a human.
    const now = Date.now();
    if (now - issued.getTime() > this.opts.nonceTtlS * 1000) return 'stale';
    // Checked after the digest so that only a correct response can advance a nonce's count.
    if (!this.used.accept(nonce, issued.getTime(), nc, now)) return 'replay';
    return 'ok';
  }
}
