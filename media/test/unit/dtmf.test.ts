import assert from 'node:assert/strict';
import { Rfc4733Detector, encodeRfc4733, type DtmfDigit, type DtmfDigitEvent } from '../../dtmf/rfc4733';
import type { RtpHeader } from '../../rtp/packet';

function hdr(timestamp: number, seq: number, marker = false): RtpHeader {
  return { version: 2, padding: false, extension: false, csrcCount: 0, marker, payloadType: 101, sequenceNumber: seq, timestamp, ssrc: 1 };
}

/** What a phone sends for one key press: start (marker), continuations every 20 ms, 3 end packets. */
function keyPress(digit: DtmfDigit, ts: number, seq: number, steps = 5): Array<[RtpHeader, Buffer]> {
  const pkts: Array<[RtpHeader, Buffer]> = [];
  for (let i = 1; i <= steps; i++) pkts.push([hdr(ts, seq++, i === 1), encodeRfc4733(digit, i * 160, false, 10)]);
  for (let i = 0; i < 3; i++) pkts.push([hdr(ts, seq++), encodeRfc4733(digit, (steps + 1) * 160, true, 10)]);
  return pkts;
}

function run(det: Rfc4733Detector, pkts: Array<[RtpHeader, Buffer]>): DtmfDigitEvent[] {
  const out: DtmfDigitEvent[] = [];
  for (const [h, p] of pkts) {
    const d = det.push(h, p);
    if (d) out.push(d);
  }
  return out;
}

describe('RFC 4733 DTMF', () => {
  it('start, continuations and 3 end packets give exactly one digit', () => {
    const got = run(new Rfc4733Detector(), keyPress('5', 1000, 1));
    assert.deepEqual(got, [{ digit: '5', durationMs: 120, timestamp: 1000 }]);
  });

  it('two digits back to back', () => {
    const got = run(new Rfc4733Detector(), [...keyPress('1', 1000, 1), ...keyPress('#', 3000, 20)]);
    assert.deepEqual(got.map((d) => d.digit), ['1', '#']);
  });

  it('the same digit twice is two digits (keyed on the event timestamp)', () => {
    const got = run(new Rfc4733Detector(), [...keyPress('7', 1000, 1), ...keyPress('7', 3000, 20)]);
    assert.deepEqual(got.map((d) => d.digit), ['7', '7']);
  });

  it('a press whose end packets were all lost is reported when the next press starts', () => {
    const first = keyPress('2', 1000, 1).slice(0, 5); // no end packets
    const got = run(new Rfc4733Detector(), [...first, ...keyPress('3', 3000, 20)]);
    assert.deepEqual(got.map((d) => d.digit), ['2', '3']);
    assert.equal(got[0].durationMs, 100);
  });

  it('sipp pcap shape (event 1, volume 10, 8 packets, marker first, duration in 8 kHz units)', () => {
    const raw = [
      '01 0a 00 a0', '01 0a 01 40', '01 0a 01 e0', '01 0a 02 80', '01 0a 03 20',
      '01 8a 03 c0', '01 8a 03 c0', '01 8a 03 c0',
    ].map((s) => Buffer.from(s.replace(/ /g, ''), 'hex'));
    const got = run(new Rfc4733Detector(), raw.map((p, i) => [hdr(48000, 100 + i, i === 0), p]));
    assert.deepEqual(got, [{ digit: '1', durationMs: 120, timestamp: 48000 }]);
  });

  it('ignores event codes above 15 and short payloads', () => {
    const det = new Rfc4733Detector();
    assert.equal(det.push(hdr(1, 1), Buffer.from([16, 0x80, 0, 160])), null);
    assert.equal(det.push(hdr(2, 2), Buffer.from([1, 0x80, 0])), null);
    assert.equal(det.push(hdr(3, 3), Buffer.alloc(0)), null);
  });

  it('maps codes 10-15 to * # A B C D', () => {
    const digits: DtmfDigit[] = ['*', '#', 'A', 'B', 'C', 'D'];
    const det = new Rfc4733Detector();
    const got = digits.map((d, i) => det.push(hdr(100 * (i + 1), i), encodeRfc4733(d, 800, true, 10))?.digit);
    assert.deepEqual(got, digits);
  });

  it('encodes the E bit, volume and duration', () => {
    assert.deepEqual([...encodeRfc4733('9', 1280, true, 10)], [9, 0x8a, 0x05, 0x00]);
  });
});
