import { alawToLinear, linearToUlaw, SILENCE_BYTE, type G711Codec } from '../../tones/g711';

const ULAW_SILENCE = SILENCE_BYTE.PCMU;

/** A-law code → µ-law code, so a PCMA call forks as PCMU (the one format AudioHook endpoints must take). */
const ALAW_TO_ULAW = ((): Uint8Array => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) t[i] = linearToUlaw(alawToLinear(i));
  return t;
})();

/** One channel's µ-law samples waiting to be sent: a fixed ring; the oldest are overwritten when full. */
class Ring {
  private readonly buf: Uint8Array;
  private head = 0;
  private size = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Returns how many old samples were overwritten (the reader fell that far behind). */
  push(payload: Uint8Array, table: Uint8Array | null): number {
    const cap = this.buf.length;
    let lost = 0;
    for (let i = 0; i < payload.length; i++) {
      const tail = (this.head + this.size) % cap;
      this.buf[tail] = table === null ? payload[i] : table[payload[i]];
      if (this.size === cap) {
        this.head = (this.head + 1) % cap;
        lost++;
      } else {
        this.size++;
      }
    }
    return lost;
  }

  /** Writes `n` samples to out[offset], out[offset + stride], ...; missing ones are silence. */
  take(n: number, out: Uint8Array, offset: number, stride: number): void {
    const cap = this.buf.length;
    const have = Math.min(n, this.size);
    for (let i = 0; i < n; i++) out[offset + i * stride] = i < have ? this.buf[(this.head + i) % cap] : ULAW_SILENCE;
    this.head = (this.head + have) % cap;
    this.size -= have;
  }

  /** Drops up to `n` of the oldest samples. */
  skip(n: number): void {
    const have = Math.min(n, this.size);
    this.head = (this.head + have) % this.buf.length;
    this.size -= have;
  }

  clear(): void {
    this.head = 0;
    this.size = 0;
  }
}

/**
 * The two sides of a call as AudioHook wants them: µ-law, external (the customer) and internal
 * (what the customer hears), interleaved sample by sample. The tap's pushes (on the packet path)
 * only copy into preallocated rings; frames are built off that path by `take`. The sides arrive
 * independently (a held customer sends nothing, the mixer delivers on its own clock), so a side
 * that falls more than `maxSkew` samples behind the other is padded with silence.
 */
export class StereoBuffer {
  private readonly left: Ring;
  private readonly right: Ring;
  private readonly table: Uint8Array | null;
  /** Samples overwritten because nobody took them in time (both sides). */
  overwritten = 0;

  constructor(
    codec: G711Codec,
    capacity = 16_000,
    private readonly maxSkew = 800,
  ) {
    this.left = new Ring(capacity);
    this.right = new Ring(capacity);
    this.table = codec === 'PCMA' ? ALAW_TO_ULAW : null;
  }

  pushExternal(payload: Uint8Array): void {
    this.overwritten += this.left.push(payload, this.table);
  }

  pushInternal(payload: Uint8Array): void {
    this.overwritten += this.right.push(payload, this.table);
  }

  /** Samples per channel `take` would return now. */
  ready(): number {
    const l = this.left.length;
    const r = this.right.length;
    return Math.max(Math.min(l, r), Math.max(l, r) - this.maxSkew);
  }

  /**
   * The next `n` (default: all ready) samples per channel. channels: which sides, in order
   * (an endpoint may take only one); stereo is interleaved.
   */
  take(channels: readonly ('external' | 'internal')[], n = this.ready()): Buffer {
    const out = Buffer.allocUnsafe(n * channels.length);
    const stride = channels.length;
    let external = false;
    let internal = false;
    channels.forEach((c, i) => {
      if (c === 'external') {
        this.left.take(n, out, i, stride);
        external = true;
      } else {
        this.right.take(n, out, i, stride);
        internal = true;
      }
    });
    // A side the endpoint did not ask for still moves on, so it never lags behind.
    if (!external) this.left.skip(n);
    if (!internal) this.right.skip(n);
    return out;
  }

  /** Drops the next `n` (default: all ready) samples per channel (paused, backpressure); returns n. */
  skip(n = this.ready()): number {
    this.left.skip(n);
    this.right.skip(n);
    return n;
  }

  /** Forgets everything waiting (what came before the endpoint opened). */
  clear(): void {
    this.left.clear();
    this.right.clear();
  }
}
