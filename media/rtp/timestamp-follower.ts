/** Largest source timestamp step still treated as continuity (60 s of 8 kHz audio). */
const MAX_GAP = 8000 * 60;
const NEXT = 0;
const LAST = 1;
const SOURCE_LAST = 2;

/**
 * One outgoing RTP timeline that mixes our own frames (tones) and frames relayed from another
 * leg. Relayed packets keep the source's timing — gaps (DTX, packet loss, hold) stay gaps and an
 * RFC 4733 event keeps one timestamp — while our SSRC/timeline stays continuous across source
 * changes. Pure arithmetic: nothing is allocated per packet (the 32-bit state lives in a typed
 * array: a plain field holding a value beyond V8's small-integer range would box it on every store).
 */
export class TimestampFollower {
  private readonly state = new Uint32Array(3);
  private sourceSsrc = -1;
  /** True when the last relay() could not follow the source: the caller sets the marker bit. */
  jumped = false;

  constructor(initial: number) {
    this.state[NEXT] = initial >>> 0;
    this.state[LAST] = initial >>> 0;
  }

  /** Timestamp for one of our own frames of `samples` samples. */
  own(samples: number): number {
    const s = this.state;
    const ts = s[NEXT];
    s[LAST] = ts;
    s[NEXT] = ts + samples;
    this.sourceSsrc = -1;
    return ts;
  }

  /** Timestamp for a relayed packet that had `sourceTs` on the other leg. */
  relay(sourceSsrc: number, sourceTs: number, samples: number): number {
    const s = this.state;
    let ts: number;
    const delta = (sourceTs - s[SOURCE_LAST]) >>> 0;
    if (sourceSsrc === this.sourceSsrc && delta <= MAX_GAP) {
      ts = (s[LAST] + delta) >>> 0;
      this.jumped = false;
    } else {
      ts = s[NEXT];
      this.jumped = true;
    }
    this.sourceSsrc = sourceSsrc;
    s[SOURCE_LAST] = sourceTs;
    s[LAST] = ts;
    const after = (ts + samples) >>> 0;
    // `next` only moves forward, so our own frames never reuse a timestamp already sent.
    if (((after - s[NEXT]) >>> 0) < 0x80000000) s[NEXT] = after;
    return ts;
  }
}
