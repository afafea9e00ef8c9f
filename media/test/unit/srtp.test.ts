import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { RtpHeader as WeriftRtpHeader, SrtpSession, ProtectionProfileAes128CmHmacSha1_80 } from 'werift';
import { writeRtpHeader } from '../../rtp/packet';
import { Aes128, deriveSessionKey, HmacSha1, Sha1, SRTP_AUTH_FAILED, SRTP_REPLAYED, SrtpContext } from '../../rtp/srtp';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function aesBlock(aes: Aes128, block: Buffer): Buffer {
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = block.readUInt32BE(4 * i);
  aes.encryptWords(w, w);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 4; i++) out.writeUInt32BE(w[i], 4 * i);
  return out;
}

function rtpPacket(seq: number, ts: number, ssrc: number, payload: Buffer, room = 10): { buf: Buffer; len: number } {
  const buf = Buffer.alloc(12 + payload.length + room);
  writeRtpHeader(buf, { marker: false, payloadType: 0, sequenceNumber: seq, timestamp: ts, ssrc });
  payload.copy(buf, 12);
  return { buf, len: 12 + payload.length };
}

describe('SRTP (RFC 3711) AES_CM_128_HMAC_SHA1_80', () => {
  it('AES-128 matches FIPS-197 C.1 and node:crypto on random blocks', () => {
    const aes = new Aes128(hex('000102030405060708090a0b0c0d0e0f'));
    assert.equal(aesBlock(aes, hex('00112233445566778899aabbccddeeff')).toString('hex'), '69c4e0d86a7b0430d8cdb78070b4c55a');
    for (let i = 0; i < 50; i++) {
      const key = randomBytes(16);
      const block = randomBytes(16);
      const c = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
      assert.deepEqual(aesBlock(new Aes128(key), block), Buffer.concat([c.update(block), c.final()]));
    }
  });

  it('SHA-1 and HMAC-SHA1 match node:crypto for lengths around the block boundaries', () => {
    const sha = new Sha1();
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 172, 300]) {
      const data = randomBytes(n);
      sha.reset();
      sha.update(data);
      sha.finish();
      const got = Buffer.alloc(20);
      for (let i = 0; i < 5; i++) got.writeUInt32BE(sha.h[i] >>> 0, 4 * i);
      assert.equal(got.toString('hex'), createHash('sha1').update(data).digest('hex'), `sha1 of ${n} bytes`);
      const key = randomBytes(20);
      const h = new HmacSha1(key);
      h.begin().update(data);
      assert.equal(Buffer.from(h.finish()).toString('hex'), createHmac('sha1', key).update(data).digest('hex'), `hmac of ${n} bytes`);
    }
  });

  it('AES-CM keystream: RFC 3711 Appendix B.2', () => {
    const aes = new Aes128(hex('2B7E151628AED2A6ABF7158809CF4F3C'));
    const iv = hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000');
    const block = (n: number): string => {
      const b = Buffer.from(iv);
      b.writeUInt16BE(n, 14);
      return aesBlock(aes, b).toString('hex').toUpperCase();
    };
    assert.equal(block(0), 'E03EAD0935C95E80E166B16DD92B4EB4');
    assert.equal(block(1), 'D23513162B02D0F72A43A2FE4A5F97AB');
    assert.equal(block(2), '41E95B3BB0A2E8DD477901E4FCA894C0');
    assert.equal(block(0xfeff), 'EC8CDF7398607CB0F2D21675EA9EA1E4');
    assert.equal(block(0xff00), '362B7C3C6773516318A077D7FC5073AE');
    assert.equal(block(0xff01), '6A2CC3787889374FBEB4C81B17BA6C44');
  });

  it('key derivation: RFC 3711 Appendix B.3', () => {
    const key = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
    const salt = hex('0EC675AD498AFEEBB6960B3AABE6');
    assert.equal(Buffer.from(deriveSessionKey(key, salt, 0, 16)).toString('hex').toUpperCase(), 'C61E7A93744F39EE10734AFE3FF7A087');
    assert.equal(Buffer.from(deriveSessionKey(key, salt, 2, 14)).toString('hex').toUpperCase(), '30CBBC08863D8C85D49DB34A9AE1');
    assert.equal(Buffer.from(deriveSessionKey(key, salt, 1, 20)).toString('hex').toUpperCase(), 'CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4');
  });

  it('interoperates with werift SRTP both ways, byte for byte', () => {
    const a = randomBytes(30);
    const b = randomBytes(30);
    const ours = SrtpContext.fromKeySalt(a);
    const theirs = new SrtpSession({
      profile: ProtectionProfileAes128CmHmacSha1_80,
      keys: { localMasterKey: b.subarray(0, 16), localMasterSalt: b.subarray(16), remoteMasterKey: a.subarray(0, 16), remoteMasterSalt: a.subarray(16) },
    });
    const payload = randomBytes(160);
    for (const seq of [1, 2, 3, 65535, 0, 1]) {
      const p = rtpPacket(seq, seq * 160, 0x1234abcd, payload);
      const n = ours.protect(p.buf, p.len);
      assert.equal(n, p.len + 10);
      const plain = theirs.decrypt(Buffer.from(p.buf.subarray(0, n)));
      assert.deepEqual(plain.subarray(12), payload, `werift decrypts ours at seq ${seq}`);
    }
    const ourRx = SrtpContext.fromKeySalt(b);
    for (const seq of [100, 101, 102]) {
      const header = new WeriftRtpHeader({ version: 2, payloadType: 0, sequenceNumber: seq, timestamp: seq * 160, ssrc: 0x55667788 });
      const wire = theirs.encrypt(payload, header);
      const buf = Buffer.from(wire);
      const n = ourRx.unprotect(buf);
      assert.equal(n, 12 + payload.length);
      assert.deepEqual(buf.subarray(12, n), payload, `we decrypt werift at seq ${seq}`);
    }
  });

  it('refuses a forged or altered packet and a replay, and follows the rollover', () => {
    const key = randomBytes(30);
    const tx = SrtpContext.fromKeySalt(key);
    const rx = SrtpContext.fromKeySalt(key);
    const payload = randomBytes(160);
    const send = (seq: number): Buffer => {
      const p = rtpPacket(seq, seq * 160, 7, payload);
      return Buffer.from(p.buf.subarray(0, tx.protect(p.buf, p.len)));
    };
    const first = send(65534);
    assert.equal(rx.unprotect(Buffer.from(first)), 172);
    assert.equal(rx.unprotect(Buffer.from(first)), SRTP_REPLAYED);
    const altered = send(65535);
    altered[20] ^= 1;
    assert.equal(rx.unprotect(altered), SRTP_AUTH_FAILED);
    const forged = rtpPacket(1, 0, 7, payload);
    forged.buf.fill(0xaa, forged.len, forged.len + 10);
    assert.equal(rx.unprotect(forged.buf), SRTP_AUTH_FAILED);
    // Across the wrap (ROC 0 → 1): both ends derive the same index, so the tag still verifies.
    for (const seq of [65535, 0, 1, 2]) {
      const pkt = send(seq);
      const n = rx.unprotect(pkt);
      assert.equal(n, 172, `seq ${seq}`);
      assert.deepEqual(pkt.subarray(12, n), payload);
    }
  });

  it('protect and unprotect allocate nothing per packet (heap stays flat over 200k packets)', () => {
    const key = randomBytes(30);
    const tx = SrtpContext.fromKeySalt(key);
    const rx = SrtpContext.fromKeySalt(key);
    const p = rtpPacket(0, 0, 9, randomBytes(160));
    const buf = p.buf;
    const run = (n: number, from: number): void => {
      for (let i = 0; i < n; i++) {
        const seq = (from + i) & 0xffff;
        buf.writeUInt16BE(seq, 2);
        const len = tx.protect(buf, 172);
        if (rx.unprotect(buf, len) !== 172) throw new Error('round trip failed');
      }
    };
    run(20_000, 0); // warm up (JIT)
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    run(200_000, 20_000);
    const perPacketUs = Number(process.hrtime.bigint() - t0) / 1000 / 400_000;
    gc?.();
    const grown = process.memoryUsage().heapUsed - before;
    // Per-packet allocation of even a 64-byte buffer would be ~25 MB here.
    assert.ok(grown < 2_000_000, `heap grew ${grown} bytes`);
    console.log(`      SRTP protect/unprotect of a 172-byte PCMU packet: ${perPacketUs.toFixed(2)} µs each`);
  });
});
