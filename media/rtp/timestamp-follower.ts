/** Largest source timestamp step still treated as continuity (60 s of 8 kHz audio). */
const MAX_GAP = 8000 * 60;

/**
 * One outgoing RTP timeline that mixes our own frames (tones) and frames relayed from another
 * leg. Relayed packets keep the source's timing — gaps (DTX, packet loss, hold) stay gaps and an
 * RFC 4733 event keeps one timestamp — while our SSRC/timeline stays continuous across source
 * changes. Pure arithmetic: nothing is allocated per packet.
 */
export class TimestampFollower {
  private next: number;
  private last: number;
  private sourceSsrc = -1;
  private sourceLast = 0;
  /** True when the last relay() could not follow the source: the caller sets the marker bit. */
  jumped = false;

  constructor(initial: number) {
    this.next = initial >>> 0;
    this.last = this.next;
  }

  /** Timestamp for one of our own frames of `samples` samples. */
  own(samples: number): number {
    const ts = this.next;
    this.last = ts;
    this.next = (ts + samples) >>> 0;
    this.sourceSsrc = -1;
    return ts;
  }

  /** Timestamp for a relayed packet that had `sourceTs` on the other leg. */
  relay(sourceSsrc: number, sourceTs: number, samples: number): number {
    let ts: number;
    const delta = (sourceTs - this.sourceLast) >>> 0;
    if (sourceSsrc === this.sourceSsrc && delta <= MAX_GAP) {
      ts = (this.last + delta) >>> 0;
      this.jumped = false;
    } else {
      ts = this.next;
      this.jumped = true;
    }
    this.sourceSsrc = sourceSsrc;
    this.sourceLast = sourceTs;
    this.last = ts;
    const after = (ts + samples) >>> 0;
    // `next` only moves forward, so our own frames never reuse a timestamp already sent.
    if (((after - this.next) >>> 0) < 0x80000000) this.next = after;
    return ts;
  }
}
