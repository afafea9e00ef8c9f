import { alawToLinear, ulawToLinear, type G711Codec } from './g711';

/**
 * How much of a signal's power sits at one frequency (Goertzel), as a share of the signal's total
 * power: ~1 for a clean tone at `hz`, ~0 for silence, noise or another frequency, ~1/k for k equal
 * tones mixed together. Normalising by total power makes the answer independent of level, so a
 * check does not depend on gain, codec law or how loud a mixer made a voice.
 *
 * Streaming, so a detector can be fed packet by packet: the filter state carries across calls and
 * the result covers everything pushed since the last reset(). Nothing allocates after construction.
 */
export class Goertzel {
  private readonly coeff: number;
  private s1 = 0;
  private s2 = 0;
  private energySum = 0;
  private count = 0;

  constructor(
    readonly hz: number,
    readonly sampleRate = 8000,
  ) {
    // The exact frequency, not the nearest DFT bin: the tones we look for need not fit the window.
    this.coeff = 2 * Math.cos((2 * Math.PI * hz) / sampleRate);
  }

  reset(): void {
    this.s1 = 0;
    this.s2 = 0;
    this.energySum = 0;
    this.count = 0;
  }

  /** Feed 16-bit linear samples [start, end). */
  pushLinear(samples: ArrayLike<number>, start = 0, end = samples.length): void {
    const c = this.coeff;
    let s1 = this.s1;
    let s2 = this.s2;
    let e = this.energySum;
    for (let i = start; i < end; i++) {
      const x = samples[i];
      e += x * x;
      const s0 = x + c * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    this.s1 = s1;
    this.s2 = s2;
    this.energySum = e;
    this.count += end > start ? end - start : 0;
  }

  /** Feed a G.711 payload (one byte per sample). */
  pushG711(payload: Uint8Array, codec: G711Codec): void {
    const decode = codec === 'PCMU' ? ulawToLinear : alawToLinear;
    const c = this.coeff;
    let s1 = this.s1;
    let s2 = this.s2;
    let e = this.energySum;
    for (let i = 0; i < payload.length; i++) {
      const x = decode(payload[i]);
      e += x * x;
      const s0 = x + c * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    this.s1 = s1;
    this.s2 = s2;
    this.energySum = e;
    this.count += payload.length;
  }

  /** Samples pushed since the last reset. */
  get samples(): number {
    return this.count;
  }

  /** Share of the total power at `hz`, 0..~1 (0 when nothing or only silence was pushed). */
  get share(): number {
    if (this.count === 0 || this.energySum === 0) return 0;
    const power = this.s1 * this.s1 + this.s2 * this.s2 - this.coeff * this.s1 * this.s2;
    // A sine of amplitude A over N samples: power ≈ (N·A/2)², energy = N·A²/2 → 2·power/(N·energy) ≈ 1.
    const share = (2 * power) / (this.count * this.energySum);
    return share > 1 ? 1 : share;
  }

  /** RMS level of everything pushed (16-bit full scale = 32768), to tell silence from a quiet tone. */
  get rms(): number {
    return this.count === 0 ? 0 : Math.sqrt(this.energySum / this.count);
  }
}

/** One-shot: share of power at `hz` in 16-bit linear samples. */
export function toneShareLinear(samples: ArrayLike<number>, hz: number, sampleRate = 8000): number {
  const g = new Goertzel(hz, sampleRate);
  g.pushLinear(samples);
  return g.share;
}

/** One-shot: share of power at `hz` in G.711 payloads of one law (e.g. the frames a leg received). */
export function toneShareG711(payloads: Uint8Array | readonly Uint8Array[], codec: G711Codec, hz: number): number {
  const g = new Goertzel(hz);
  if (payloads instanceof Uint8Array) g.pushG711(payloads, codec);
  else for (const p of payloads) g.pushG711(p, codec);
  return g.share;
}
