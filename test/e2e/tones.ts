import { Goertzel } from '../../media/tones/goertzel';
import { encodeFrame, type G711Codec } from '../../media/tones/g711';

/**
 * Own tones for e2e peers: each party of a call sends its own frequency and reports which of the
 * others' it hears, so a test can say "the caller hears the extension, the extension the caller".
 * The frequencies stay clear of the hold tone (523/659 Hz) and ringback/busy (425 Hz).
 */
export const TONES = { caller: 1000, extension: 1400, agent: 700, target: 1800, supervisor: 2200 } as const;
export const TONE_CANDIDATES: readonly number[] = [700, 1000, 1400, 1800, 2200];

/** One second of a sine at `hz` (an integer, so the second loops without a click) as 20 ms frames. */
export function sineFrames(hz: number, codec: G711Codec, amplitude = 8000): Buffer[] {
  const frames: Buffer[] = [];
  for (let f = 0; f < 50; f++) {
    const pcm = new Int16Array(160);
    for (let i = 0; i < 160; i++) pcm[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * (f * 160 + i)) / 8000));
    frames.push(encodeFrame(codec, pcm));
  }
  return frames;
}

/** Blocks of this many samples (100 ms) are judged one by one: a gap or a source switch spoils one block, not the whole measurement. */
const BLOCK_SAMPLES = 800;
/** A block quieter than this RMS (16-bit) is silence and not judged. */
const SILENCE_RMS = 150;

/**
 * Which of the candidate frequencies a peer hears. Each 100 ms block of received audio gives every
 * candidate its share of the block's power (media/tones/goertzel.ts); share() is the mean over the
 * blocks that were not silent. A relayed single tone gives ~1, two mixed at equal level ~0.5 each.
 */
export class ToneEar {
  private readonly detectors: Goertzel[];
  private readonly sums: number[];
  private judged = 0;
  private silent = 0;

  constructor(readonly candidates: readonly number[] = TONE_CANDIDATES) {
    this.detectors = candidates.map((hz) => new Goertzel(hz));
    this.sums = candidates.map(() => 0);
  }

  push(payload: Uint8Array, codec: G711Codec): void {
    for (const d of this.detectors) d.pushG711(payload, codec);
    const first = this.detectors[0];
    if (!first || first.samples < BLOCK_SAMPLES) return;
    if (first.rms < SILENCE_RMS) {
      this.silent++;
    } else {
      this.judged++;
      for (let i = 0; i < this.detectors.length; i++) this.sums[i] += this.detectors[i].share;
    }
    for (const d of this.detectors) d.reset();
  }

  /** Mean share of `hz` over the non-silent blocks so far (0 if none). */
  share(hz: number): number {
    const i = this.candidates.indexOf(hz);
    if (i < 0) throw new Error(`ToneEar: ${hz} Hz is not a candidate (${this.candidates.join(', ')})`);
    return this.judged ? this.sums[i] / this.judged : 0;
  }

  /** The candidates heard with at least `minShare` (default 0.15: one of up to four equal voices is ~0.25). */
  heard(minShare = 0.15): number[] {
    return this.candidates.filter((hz) => this.share(hz) >= minShare);
  }

  hears(hz: number, minShare = 0.15): boolean {
    return this.share(hz) >= minShare;
  }

  /** 100 ms blocks with sound / silence since the last reset (a test waits for enough of them). */
  get blocks(): { judged: number; silent: number } {
    return { judged: this.judged, silent: this.silent };
  }

  /** For reports: `1000 Hz 0.98, 1400 Hz 0.01, …`. */
  describe(): string {
    return this.candidates.map((hz) => `${hz} Hz ${this.share(hz).toFixed(2)}`).join(', ') + ` (${this.judged} blocks, ${this.silent} silent)`;
  }

  reset(): void {
    for (const d of this.detectors) d.reset();
    this.sums.fill(0);
    this.judged = 0;
    this.silent = 0;
  }
}
