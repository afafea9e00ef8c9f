import assert from 'node:assert/strict';
import { parseRtp, writeRtpHeader } from '../../rtp/packet';

function header(opts: { cc?: number; x?: boolean; p?: boolean; version?: number } = {}): Buffer {
  const b = Buffer.alloc(12);
  b[0] = ((opts.version ?? 2) << 6) | (opts.p ? 0x20 : 0) | (opts.x ? 0x10 : 0) | (opts.cc ?? 0);
  b[1] = 0x80 | 0; // marker, PT 0
  b.writeUInt16BE(0xfffe, 2);
  b.writeUInt32BE(0xdeadbeef, 4);
  b.writeUInt32BE(0x01020304, 8);
  return b;
}

describe('RTP packet', () => {
  it('round-trips a header written by writeRtpHeader', () => {
    const buf = Buffer.alloc(172);
    const n = writeRtpHeader(buf, { marker: true, payloadType: 8, sequenceNumber: 65535, timestamp: 0xffffffff, ssrc: 0x80000001 });
    assert.equal(n, 12);
    buf.fill(0xd5, 12);
    const p = parseRtp(buf);
    assert.ok(p);
    assert.deepEqual(p.header, {
      version: 2, padding: false, extension: false, csrcCount: 0, marker: true,
      payloadType: 8, sequenceNumber: 65535, timestamp: 0xffffffff, ssrc: 0x80000001,
    });
    assert.equal(p.payload.length, 160);
  });

  it('skips CSRCs', () => {
    const buf = Buffer.concat([header({ cc: 2 }), Buffer.alloc(8, 0xaa), Buffer.from([1, 2, 3])]);
    const p = parseRtp(buf);
    assert.ok(p);
    assert.equal(p.header.csrcCount, 2);
    assert.deepEqual([...p.payload], [1, 2, 3]);
  });

  it('skips a header extension', () => {
    const ext = Buffer.from([0xbe, 0xde, 0x00, 0x01, 9, 9, 9, 9]);
    const p = parseRtp(Buffer.concat([header({ x: true }), ext, Buffer.from([7, 8])]));
    assert.ok(p);
    assert.equal(p.header.extension, true);
    assert.deepEqual([...p.payload], [7, 8]);
  });

  it('strips padding', () => {
    const p = parseRtp(Buffer.concat([header({ p: true }), Buffer.from([5, 6, 0, 0, 3])]));
    assert.ok(p);
    assert.deepEqual([...p.payload], [5, 6]);
  });

  it('rejects truncated, version 1 and inconsistent packets', () => {
    assert.equal(parseRtp(Buffer.alloc(0)), null);
    assert.equal(parseRtp(header().subarray(0, 11)), null);
    assert.equal(parseRtp(header({ version: 1 })), null);
    assert.equal(parseRtp(header({ cc: 15 })), null); // claims 60 bytes of CSRC
    assert.equal(parseRtp(Buffer.concat([header({ x: true }), Buffer.from([0, 0, 0xff, 0xff])])), null);
    assert.equal(parseRtp(Buffer.concat([header({ x: true }), Buffer.from([0, 0])])), null);
    assert.equal(parseRtp(Buffer.concat([header({ p: true }), Buffer.from([1, 0])])), null); // pad 0
    assert.equal(parseRtp(Buffer.concat([header({ p: true }), Buffer.from([1, 200])])), null); // pad > packet
  });

  it('never throws on random input', () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.alloc(rnd() % 40);
      for (let j = 0; j < b.length; j++) b[j] = rnd();
      if (b.length > 0) b[0] = 0x80 | (b[0] & 0x3f);
      parseRtp(b);
    }
  });
});
