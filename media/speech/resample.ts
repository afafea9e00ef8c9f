/**
 * 8 kHz → 16 kHz for recognisers whose acoustic model is 16 kHz only (pocketsphinx's en-us).
 * A windowed-sinc half-band interpolator: the even outputs are the input samples themselves, the odd
 * ones are filtered between them, so nothing above the telephone band's 4 kHz is invented (linear
 * interpolation would fold images there, which the model hears as hiss). Streaming, one millisecond
 * of delay, no allocation per frame once the output buffer has grown to the frame size.
 */
const TAPS = 8;
/** Coefficients of the odd phase: sinc(j + 0.5) under a Blackman window. */
const COEF = new Float64Array(TAPS);
for (let j = 0; j < TAPS; j++) {
  const x = j + 0.5;
  const sinc = Math.sin(Math.PI * x) / (Math.PI * x);
  // The window spans the whole 2*TAPS-tap odd phase (positions -TAPS+0.5 .. TAPS-0.5).
  const n = (x + TAPS) / (2 * TAPS);
  const w = 0.42 - 0.5 * Math.cos(2 * Math.PI * n) + 0.08 * Math.cos(4 * Math.PI * n);
  COEF[j] = sinc * w;
}
{
  // Normalise so a constant input stays constant (unity DC gain on the odd phase).
  let sum = 0;
  for (let j = 0; j < TAPS; j++) sum += 2 * COEF[j];
  for (let j = 0; j < TAPS; j++) COEF[j] /= sum;
}

export class Upsampler8to16 {
  /** The last 2*TAPS input samples, then room for the frame being processed. */
  private ext = new Float64Array(2 * TAPS + 160);
  private out = new Int16Array(320);

  /**
   * The 16 kHz samples for `input` (twice as many). The result is a view of an internal buffer,
   * valid until the next call: copy it if you keep it.
   */
  push(input: Int16Array): Int16Array {
    const len = input.length;
    if (this.ext.length < 2 * TAPS + len) {
      const grown = new Float64Array(2 * TAPS + len);
      grown.set(this.ext.subarray(0, 2 * TAPS));
      this.ext = grown;
    }
    if (this.out.length < 2 * len) this.out = new Int16Array(2 * len);
    const ext = this.ext;
    const out = this.out;
    for (let i = 0; i < len; i++) ext[2 * TAPS + i] = input[i];
    // Centre m runs TAPS .. TAPS+len-1: each has TAPS samples of future, so output lags by TAPS.
    for (let k = 0; k < len; k++) {
      const m = TAPS + k;
      out[2 * k] = ext[m];
      let acc = 0;
      for (let j = 0; j < TAPS; j++) acc += COEF[j] * (ext[m - j] + ext[m + 1 + j]);
      const r = Math.round(acc);
      out[2 * k + 1] = r > 32767 ? 32767 : r < -32768 ? -32768 : r;
    }
    // Keep the last 2*TAPS samples as history for the next frame.
    ext.copyWithin(0, len, len + 2 * TAPS);
    return out.subarray(0, 2 * len);
  }

  reset(): void {
    this.ext.fill(0);
  }
}

/** A whole buffer at once (tests, files): a fresh array, same delay as the streaming form. */
export function upsample8to16(input: Int16Array): Int16Array {
  return new Upsampler8to16().push(input).slice();
}
