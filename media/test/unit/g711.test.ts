import assert from 'node:assert/strict';
import { alawToLinear, encodeFrame, linearToAlaw, linearToUlaw, ulawToLinear } from '../../tones/g711';

describe('G.711', () => {
  it('encodes silence as 0xFF (μ-law) and 0xD5 (A-law)', () => {
    assert.equal(linearToUlaw(0), 0xff);
    assert.equal(linearToAlaw(0), 0xd5);
    assert.equal(ulawToLinear(0xff), 0);
    assert.equal(alawToLinear(0xd5), 8);
  });

  it('matches reference values at the extremes', () => {
    assert.equal(linearToUlaw(32767), 0x80);
    assert.equal(linearToUlaw(-32768), 0x00);
    assert.equal(ulawToLinear(0x80), 32124);
    assert.equal(ulawToLinear(0x00), -32124);
    assert.equal(linearToAlaw(32767), 0xaa);
    assert.equal(linearToAlaw(-32768), 0x2a);
    assert.equal(alawToLinear(0xaa), 32256);
    assert.equal(alawToLinear(0x2a), -32256);
  });

  it('every code decodes and re-encodes to itself (except μ-law negative zero)', () => {
    for (let c = 0; c < 256; c++) {
      if (c !== 0x7f) assert.equal(linearToUlaw(ulawToLinear(c)), c, `ulaw ${c}`);
      assert.equal(linearToAlaw(alawToLinear(c)), c, `alaw ${c}`);
    }
  });

  it('round-trip error stays within the segment step', () => {
    for (let s = -32000; s <= 32000; s += 97) {
      const u = ulawToLinear(linearToUlaw(s));
      const a = alawToLinear(linearToAlaw(s));
      const tol = Math.max(16, Math.abs(s) / 16);
      assert.ok(Math.abs(u - s) <= tol, `ulaw ${s} → ${u}`);
      assert.ok(Math.abs(a - s) <= tol, `alaw ${s} → ${a}`);
    }
  });

  it('clamps out-of-range input instead of wrapping', () => {
    assert.equal(linearToUlaw(100000), linearToUlaw(32767));
    assert.equal(linearToAlaw(-100000), linearToAlaw(-32768));
  });

  it('encodeFrame encodes every sample', () => {
    const f = encodeFrame('PCMA', new Int16Array(160));
    assert.equal(f.length, 160);
    assert.ok(f.every((b) => b === 0xd5));
  });
});
