/**
 * SRTP (RFC 3711) for SDES-keyed SIP legs: AES_CM_128_HMAC_SHA1_80, RTP only (no SRTCP: we send
 * no RTCP and ignore what arrives on the RTCP port).
 *
 * The packet path runs 50 times a second per direction and per call, so protect/unprotect work in
 * place on the packet's own buffer and allocate nothing: AES-128 and SHA-1 are implemented here on
 * preallocated typed arrays. node:crypto would need a Cipher and an Hmac object (plus output
 * buffers) per packet — it has no API that encrypts into a caller's buffer — which is what the
 * upstream werift SRTP does and what FIELD-NOTES measured as its cost. The unit tests check both
 * primitives against node:crypto and the whole transform against RFC 3711 Appendix B.
 */

export const SRTP_AUTH_TAG_BYTES = 10;
export const SRTP_MASTER_KEY_BYTES = 16;
export const SRTP_MASTER_SALT_BYTES = 14;

// ---- AES-128 (FIPS-197), encryption only: counter mode needs no decryption ------------------

const SBOX = new Uint8Array(256);
const TE0 = new Uint32Array(256);
const TE1 = new Uint32Array(256);
const TE2 = new Uint32Array(256);
const TE3 = new Uint32Array(256);

(function initTables(): void {
  // The S-box from GF(2^8) inverses (p walks the multiplicative group by 3, q by 3's inverse).
  let p = 1;
  let q = 1;
  do {
    p = (p ^ ((p << 1) & 0xff) ^ (p & 0x80 ? 0x1b : 0)) & 0xff;
    q ^= q << 1;
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    const x = q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4);
    SBOX[p] = (x ^ 0x63) & 0xff;
  } while (p !== 1);
  SBOX[0] = 0x63;
  for (let i = 0; i < 256; i++) {
    const s = SBOX[i];
    const s2 = ((s << 1) ^ (s & 0x80 ? 0x1b : 0)) & 0xff;
    const s3 = s2 ^ s;
    const t = ((s2 << 24) | (s << 16) | (s << 8) | s3) >>> 0;
    TE0[i] = t;
    TE1[i] = ((t >>> 8) | (t << 24)) >>> 0;
    TE2[i] = ((t >>> 16) | (t << 16)) >>> 0;
    TE3[i] = ((t >>> 24) | (t << 8)) >>> 0;
  }
})();

function rotl8(x: number, n: number): number {
  return ((x << n) | (x >>> (8 - n))) & 0xff;
}

/** An expanded AES-128 key; encryptBlock writes into a caller's 4-word array. */
export class Aes128 {
  private readonly rk = new Uint32Array(44);

  constructor(key: Uint8Array) {
    if (key.length !== 16) throw new Error('AES-128 needs a 16-byte key');
    const rk = this.rk;
    for (let i = 0; i < 4; i++) rk[i] = ((key[4 * i] << 24) | (key[4 * i + 1] << 16) | (key[4 * i + 2] << 8) | key[4 * i + 3]) >>> 0;
    let rcon = 1;
    for (let i = 4; i < 44; i++) {
      let t = rk[i - 1];
      if (i % 4 === 0) {
        t = ((SBOX[(t >>> 16) & 0xff] << 24) | (SBOX[(t >>> 8) & 0xff] << 16) | (SBOX[t & 0xff] << 8) | SBOX[t >>> 24]) ^ (rcon << 24);
        rcon = ((rcon << 1) ^ (rcon & 0x80 ? 0x1b : 0)) & 0xff;
      }
      rk[i] = (rk[i - 4] ^ t) >>> 0;
    }
  }

  /** out = AES(in), both as four big-endian 32-bit words; `out` may be `inp`. */
  encryptWords(inp: Uint32Array, out: Uint32Array): void {
    const rk = this.rk;
    let s0 = inp[0] ^ rk[0];
    let s1 = inp[1] ^ rk[1];
    let s2 = inp[2] ^ rk[2];
    let s3 = inp[3] ^ rk[3];
    let k = 4;
    for (let r = 1; r < 10; r++) {
      const t0 = TE0[s0 >>> 24] ^ TE1[(s1 >>> 16) & 0xff] ^ TE2[(s2 >>> 8) & 0xff] ^ TE3[s3 & 0xff] ^ rk[k];
      const t1 = TE0[s1 >>> 24] ^ TE1[(s2 >>> 16) & 0xff] ^ TE2[(s3 >>> 8) & 0xff] ^ TE3[s0 & 0xff] ^ rk[k + 1];
      const t2 = TE0[s2 >>> 24] ^ TE1[(s3 >>> 16) & 0xff] ^ TE2[(s0 >>> 8) & 0xff] ^ TE3[s1 & 0xff] ^ rk[k + 2];
      const t3 = TE0[s3 >>> 24] ^ TE1[(s0 >>> 16) & 0xff] ^ TE2[(s1 >>> 8) & 0xff] ^ TE3[s2 & 0xff] ^ rk[k + 3];
      s0 = t0;
      s1 = t1;
      s2 = t2;
      s3 = t3;
      k += 4;
    }
    out[0] = ((SBOX[s0 >>> 24] << 24) | (SBOX[(s1 >>> 16) & 0xff] << 16) | (SBOX[(s2 >>> 8) & 0xff] << 8) | SBOX[s3 & 0xff]) ^ rk[40];
    out[1] = ((SBOX[s1 >>> 24] << 24) | (SBOX[(s2 >>> 16) & 0xff] << 16) | (SBOX[(s3 >>> 8) & 0xff] << 8) | SBOX[s0 & 0xff]) ^ rk[41];
    out[2] = ((SBOX[s2 >>> 24] << 24) | (SBOX[(s3 >>> 16) & 0xff] << 16) | (SBOX[(s0 >>> 8) & 0xff] << 8) | SBOX[s1 & 0xff]) ^ rk[42];
    out[3] = ((SBOX[s3 >>> 24] << 24) | (SBOX[(s0 >>> 16) & 0xff] << 16) | (SBOX[(s1 >>> 8) & 0xff] << 8) | SBOX[s2 & 0xff]) ^ rk[43];
  }
}

// ---- SHA-1 (FIPS 180-4) and HMAC-SHA1 with precomputed pads ----------------------------------

/** Streaming SHA-1 over preallocated state; one instance per direction, reused per packet. */
export class Sha1 {
  readonly h = new Uint32Array(5);
  private readonly w = new Uint32Array(80);
  private readonly block = new Uint8Array(64);
  private fill = 0;
  private total = 0;

  reset(from?: Uint32Array, bytesDone = 0): void {
    if (from) this.h.set(from);
    else {
      this.h[0] = 0x67452301;
      this.h[1] = 0xefcdab89;
      this.h[2] = 0x98badcfe;
      this.h[3] = 0x10325476;
      this.h[4] = 0xc3d2e1f0;
    }
    this.fill = 0;
    this.total = bytesDone;
  }

  update(data: Uint8Array, start = 0, end = data.length): void {
    const block = this.block;
    for (let i = start; i < end; i++) {
      block[this.fill++] = data[i];
      if (this.fill === 64) {
        this.compress();
        this.fill = 0;
      }
    }
    this.total += end - start;
  }

  updateWord(x: number): void {
    const block = this.block;
    for (let shift = 24; shift >= 0; shift -= 8) {
      block[this.fill++] = (x >>> shift) & 0xff;
      if (this.fill === 64) {
        this.compress();
        this.fill = 0;
      }
    }
    this.total += 4;
  }

  /** Pads and leaves the digest in `h`. */
  finish(): void {
    const bits = this.total * 8;
    const block = this.block;
    block[this.fill++] = 0x80;
    if (this.fill > 56) {
      while (this.fill < 64) block[this.fill++] = 0;
      this.compress();
      this.fill = 0;
    }
    while (this.fill < 56) block[this.fill++] = 0;
    const hi = Math.floor(bits / 0x100000000);
    const lo = bits >>> 0;
    block[56] = hi >>> 24;
    block[57] = (hi >>> 16) & 0xff;
    block[58] = (hi >>> 8) & 0xff;
    block[59] = hi & 0xff;
    block[60] = lo >>> 24;
    block[61] = (lo >>> 16) & 0xff;
    block[62] = (lo >>> 8) & 0xff;
    block[63] = lo & 0xff;
    this.compress();
    this.fill = 0;
  }

  private compress(): void {
    const w = this.w;
    const b = this.block;
    for (let i = 0; i < 16; i++) w[i] = (b[4 * i] << 24) | (b[4 * i + 1] << 16) | (b[4 * i + 2] << 8) | b[4 * i + 3];
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
      w[i] = (x << 1) | (x >>> 31);
    }
    const h = this.h;
    let a = h[0];
    let bb = h[1];
    let c = h[2];
    let d = h[3];
    let e = h[4];
    for (let i = 0; i < 80; i++) {
      let f: number;
      let k: number;
      if (i < 20) {
        f = (bb & c) | (~bb & d);
        k = 0x5a827999;
      } else if (i < 40) {
        f = bb ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (i < 60) {
        f = (bb & c) | (bb & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = bb ^ c ^ d;
        k = 0xca62c1d6;
      }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) | 0;
      e = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = t;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + bb) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0;
  }
}

/** HMAC-SHA1 with the inner and outer pad blocks hashed once at setup. */
export class HmacSha1 {
  private readonly inner = new Uint32Array(5);
  private readonly outer = new Uint32Array(5);
  private readonly sha = new Sha1();
  private readonly digest = new Uint8Array(20);

  constructor(key: Uint8Array) {
    if (key.length > 64) throw new Error('HMAC-SHA1 keys longer than one block are not needed here');
    const pad = new Uint8Array(64);
    for (const [value, state] of [[0x36, this.inner], [0x5c, this.outer]] as const) {
      pad.fill(value);
      for (let i = 0; i < key.length; i++) pad[i] ^= key[i];
      this.sha.reset();
      this.sha.update(pad);
      state.set(this.sha.h);
    }
  }

  /** Starts a MAC; feed it with update()/updateWord(), then finish(). */
  begin(): Sha1 {
    this.sha.reset(this.inner, 64);
    return this.sha;
  }

  /** The MAC of what was fed since begin(); a view valid until the next finish(). */
  finish(): Uint8Array {
    const sha = this.sha;
    sha.finish();
    const d = this.digest;
    for (let i = 0; i < 5; i++) {
      const x = sha.h[i];
      d[4 * i] = x >>> 24;
      d[4 * i + 1] = (x >>> 16) & 0xff;
      d[4 * i + 2] = (x >>> 8) & 0xff;
      d[4 * i + 3] = x & 0xff;
    }
    sha.reset(this.outer, 64);
    sha.update(d);
    sha.finish();
    for (let i = 0; i < 5; i++) {
      const x = sha.h[i];
      d[4 * i] = x >>> 24;
      d[4 * i + 1] = (x >>> 16) & 0xff;
      d[4 * i + 2] = (x >>> 8) & 0xff;
      d[4 * i + 3] = x & 0xff;
    }
    return d;
  }
}

// ---- SRTP ------------------------------------------------------------------------------------

/** RFC 3711 §4.3.1 key derivation with key_derivation_rate 0 (SDES default). */
export function deriveSessionKey(masterKey: Uint8Array, masterSalt: Uint8Array, label: number, length: number): Uint8Array {
  const aes = new Aes128(masterKey);
  const iv = new Uint8Array(16);
  iv.set(masterSalt, 0);
  iv[7] ^= label; // key_id = label || r (r = 0), aligned to the salt's low 56 bits
  const out = new Uint8Array(length);
  const words = new Uint32Array(4);
  for (let block = 0; block * 16 < length; block++) {
    words[0] = be32(iv, 0);
    words[1] = be32(iv, 4);
    words[2] = be32(iv, 8);
    words[3] = (be32(iv, 12) ^ block) >>> 0;
    aes.encryptWords(words, words);
    for (let i = 0; i < 16 && block * 16 + i < length; i++) out[block * 16 + i] = (words[i >> 2] >>> (24 - 8 * (i & 3))) & 0xff;
  }
  return out;
}

function be32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Where the RTP payload starts (after CSRCs and the extension), or -1 if the header is cut short. */
function rtpHeaderLength(buf: Uint8Array, len: number): number {
  if (len < 12 || buf[0] >> 6 !== 2) return -1;
  let off = 12 + (buf[0] & 0x0f) * 4;
  if (buf[0] & 0x10) {
    if (off + 4 > len) return -1;
    off += 4 + ((buf[off + 2] << 8) | buf[off + 3]) * 4;
  }
  return off <= len ? off : -1;
}

export type UnprotectResult = number;
/** unprotect(): the packet is shorter than a header and a tag, or its header is malformed. */
export const SRTP_MALFORMED = -1;
/** unprotect(): the authentication tag does not match (forged, corrupted, wrong key). */
export const SRTP_AUTH_FAILED = -2;
/** unprotect(): the index was already received or is older than the replay window. */
export const SRTP_REPLAYED = -3;

const REPLAY_WINDOW = 64;

/**
 * One direction of an SRTP session (RFC 3711) for AES_CM_128_HMAC_SHA1_80: protect() for what we
 * send, unprotect() for what we receive. Both work in place and allocate nothing.
 */
export class SrtpContext {
  private readonly aes: Aes128;
  private readonly hmac: HmacSha1;
  private readonly salt = new Uint32Array(4);
  private readonly ctr = new Uint32Array(4);
  private readonly ks = new Uint32Array(4);

  // Sender state (RFC 3711 §3.3.1): the rollover counter of our own sequence numbers.
  private txRoc = 0;
  private txLastSeq = -1;

  // Receiver state, for one SSRC at a time (a new SSRC starts afresh: a PBX restarting a stream).
  private rxSsrc = -1;
  private rxRoc = 0;
  private rxSl = 0;
  /** Highest 48-bit index received, and the replay bitmap below it (bit i: index - i seen). */
  private rxMax = -1;
  private rxBitsLo = 0;
  private rxBitsHi = 0;

  constructor(masterKey: Uint8Array, masterSalt: Uint8Array) {
    if (masterKey.length !== SRTP_MASTER_KEY_BYTES || masterSalt.length !== SRTP_MASTER_SALT_BYTES) throw new Error('SRTP master key must be 16 bytes and salt 14 bytes');
    this.aes = new Aes128(deriveSessionKey(masterKey, masterSalt, 0, 16));
    this.hmac = new HmacSha1(deriveSessionKey(masterKey, masterSalt, 1, 20));
    const s = deriveSessionKey(masterKey, masterSalt, 2, 14);
    this.salt[0] = be32(s, 0);
    this.salt[1] = be32(s, 4);
    this.salt[2] = be32(s, 8);
    this.salt[3] = ((s[12] << 24) | (s[13] << 16)) >>> 0;
  }

  /** From the 30 bytes of an SDES inline key (master key || master salt). */
  static fromKeySalt(keySalt: Uint8Array): SrtpContext {
    if (keySalt.length !== SRTP_MASTER_KEY_BYTES + SRTP_MASTER_SALT_BYTES) throw new Error('SDES key||salt must be 30 bytes');
    return new SrtpContext(keySalt.subarray(0, 16), keySalt.subarray(16, 30));
  }

  /**
   * Encrypts the RTP packet `buf[0..len)` in place and appends the 10-byte tag; returns the new
   * length, or -1 if `buf` has no room for the tag or the header is malformed.
   */
  protect(buf: Uint8Array, len: number): number {
    const hl = rtpHeaderLength(buf, len);
    if (hl < 0 || len + SRTP_AUTH_TAG_BYTES > buf.length) return -1;
    const seq = (buf[2] << 8) | buf[3];
    if (this.txLastSeq >= 0 && seq < this.txLastSeq && this.txLastSeq - seq > 0x8000) this.txRoc = (this.txRoc + 1) >>> 0;
    this.txLastSeq = seq;
    const ssrc = be32(buf, 8);
    this.xorKeystream(buf, hl, len, ssrc, this.txRoc, seq);
    const tag = this.mac(buf, len, this.txRoc);
    for (let i = 0; i < SRTP_AUTH_TAG_BYTES; i++) buf[len + i] = tag[i];
    return len + SRTP_AUTH_TAG_BYTES;
  }

  /**
   * Authenticates and decrypts the SRTP packet `buf[0..len)` in place. Returns the RTP length
   * (len - 10), or SRTP_MALFORMED / SRTP_AUTH_FAILED / SRTP_REPLAYED (the packet is then untouched
   * apart from nothing: it was not decrypted).
   */
  unprotect(buf: Uint8Array, len = buf.length): UnprotectResult {
    const rtpLen = len - SRTP_AUTH_TAG_BYTES;
    const hl = rtpHeaderLength(buf, rtpLen);
    if (hl < 0) return SRTP_MALFORMED;
    const seq = (buf[2] << 8) | buf[3];
    const ssrc = be32(buf, 8);
    const fresh = ssrc !== this.rxSsrc;
    // RFC 3711 Appendix A: guess the ROC from the highest sequence number seen.
    let v: number;
    if (fresh) v = 0;
    else if (this.rxSl < 0x8000) v = seq - this.rxSl > 0x8000 ? (this.rxRoc - 1) >>> 0 : this.rxRoc;
    else v = this.rxSl - 0x8000 > seq ? (this.rxRoc + 1) >>> 0 : this.rxRoc;
    const index = v * 0x10000 + seq;
    if (!fresh) {
      const delta = this.rxMax - index;
      if (delta >= REPLAY_WINDOW) return SRTP_REPLAYED;
      if (delta >= 0 && this.seen(delta)) return SRTP_REPLAYED;
    }
    const tag = this.mac(buf, rtpLen, v);
    let diff = 0;
    for (let i = 0; i < SRTP_AUTH_TAG_BYTES; i++) diff |= tag[i] ^ buf[rtpLen + i];
    if (diff !== 0) return SRTP_AUTH_FAILED;
    this.xorKeystream(buf, hl, rtpLen, ssrc, v, seq);
    // Only an authenticated packet moves the receiver state.
    if (fresh) {
      this.rxSsrc = ssrc;
      this.rxMax = index;
      this.rxBitsLo = 1;
      this.rxBitsHi = 0;
      this.rxRoc = v;
      this.rxSl = seq;
    } else if (index > this.rxMax) {
      this.shiftWindow(index - this.rxMax);
      this.rxMax = index;
      this.rxRoc = v;
      this.rxSl = seq;
    } else {
      this.mark(this.rxMax - index);
    }
    return rtpLen;
  }

  private seen(delta: number): boolean {
    return delta < 32 ? (this.rxBitsLo & (1 << delta)) !== 0 : (this.rxBitsHi & (1 << (delta - 32))) !== 0;
  }

  private mark(delta: number): void {
    if (delta < 32) this.rxBitsLo |= 1 << delta;
    else this.rxBitsHi |= 1 << (delta - 32);
  }

  private shiftWindow(n: number): void {
    if (n >= 64) {
      this.rxBitsLo = 1;
      this.rxBitsHi = 0;
      return;
    }
    if (n >= 32) {
      this.rxBitsHi = n === 32 ? this.rxBitsLo : this.rxBitsLo << (n - 32);
      this.rxBitsLo = 0;
    } else {
      this.rxBitsHi = (this.rxBitsHi << n) | (this.rxBitsLo >>> (32 - n));
      this.rxBitsLo = this.rxBitsLo << n;
    }
    this.rxBitsLo |= 1;
  }

  /** AES-CM (RFC 3711 §4.1.1): IV = salt ^ (SSRC << 64) ^ (index << 16), block counter in the low 16 bits. */
  private xorKeystream(buf: Uint8Array, from: number, to: number, ssrc: number, roc: number, seq: number): void {
    const c = this.ctr;
    const ks = this.ks;
    const s = this.salt;
    for (let off = from, block = 0; off < to; off += 16, block++) {
      c[0] = s[0];
      c[1] = (s[1] ^ ssrc) >>> 0;
      c[2] = (s[2] ^ roc) >>> 0;
      c[3] = (s[3] ^ (seq << 16) ^ block) >>> 0;
      this.aes.encryptWords(c, ks);
      const n = Math.min(16, to - off);
      for (let i = 0; i < n; i++) buf[off + i] ^= (ks[i >> 2] >>> (24 - 8 * (i & 3))) & 0xff;
    }
  }

  /** HMAC-SHA1(k_a, packet || ROC), of which the first 10 bytes are the tag. */
  private mac(buf: Uint8Array, len: number, roc: number): Uint8Array {
    const sha = this.hmac.begin();
    sha.update(buf, 0, len);
    sha.updateWord(roc);
    return this.hmac.finish();
  }
}
