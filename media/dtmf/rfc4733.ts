import type { RtpHeader } from '../rtp/packet';

export type DtmfDigit =
  | '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9'
  | '*' | '#' | 'A' | 'B' | 'C' | 'D';

export interface DtmfDigitEvent {
  digit: DtmfDigit;
  durationMs: number;
  /** RTP timestamp of the event (the same on every packet of one key press). */
  timestamp: number;
}

/** Event codes 0-15 of RFC 4733 §3.2, in code order. */
const DIGITS: readonly DtmfDigit[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'];

/**
 * Turns RFC 4733 telephone-event packets into digits. One key press is one RTP timestamp; the
 * sender repeats the end packet (usually 3×) and may lose all of them, so we key on the timestamp:
 * report at the first end packet, ignore repeats, and if a new timestamp arrives while the
 * previous press never saw an end, report the previous one then.
 */
export class Rfc4733Detector {
  private current: { timestamp: number; code: number; duration: number; reported: boolean } | null = null;

  constructor(private readonly clockRate = 8000) {}

  push(header: RtpHeader, payload: Buffer): DtmfDigitEvent | null {
    if (payload.length < 4) return null;
    const code = payload[0];
    if (code > 15) return null;
    const end = (payload[1] & 0x80) !== 0;
    const duration = payload.readUInt16BE(2);
    const ts = header.timestamp;

    let out: DtmfDigitEvent | null = null;
    const cur = this.current;
    if (cur === null || cur.timestamp !== ts) {
      // A different press: flush an unfinished previous one so a lost end bit does not lose a digit.
      if (cur !== null && !cur.reported) out = this.toEvent(cur.code, cur.duration, cur.timestamp);
      this.current = { timestamp: ts, code, duration, reported: false };
    } else if (duration > cur.duration) {
      cur.duration = duration;
    }
    const now = this.current!;
    if (end && !now.reported) {
      now.reported = true;
      // If both a flushed previous digit and this end exist in one push, the flushed one wins and
      // this one is reported on its next repeated end packet (senders repeat ends for that reason).
      if (out === null) return this.toEvent(now.code, now.duration, now.timestamp);
      now.reported = false;
    }
    return out;
  }

  private toEvent(code: number, durationSamples: number, timestamp: number): DtmfDigitEvent {
    return { digit: DIGITS[code], durationMs: Math.round((durationSamples * 1000) / this.clockRate), timestamp };
  }
}

/** Builds the 4-byte telephone-event payload (RFC 4733 §2.3); volume is -dBm0, 0-63. */
export function encodeRfc4733(digit: DtmfDigit, durationSamples: number, end: boolean, volume = 10): Buffer {
  const code = DIGITS.indexOf(digit);
  if (code < 0) throw new Error(`not a DTMF digit: ${String(digit)}`);
  const buf = Buffer.allocUnsafe(4);
  buf[0] = code;
  buf[1] = (end ? 0x80 : 0) | (volume & 0x3f);
  buf.writeUInt16BE(Math.max(0, Math.min(0xffff, Math.round(durationSamples))), 2);
  return buf;
}
