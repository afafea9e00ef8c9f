import { encodeFrame, type G711Codec } from './g711';

export interface ToneSegment {
  /** Frequencies in Hz summed together; [] is silence. */
  freqs: number[];
  ms: number;
  /** Level of each frequency in dBm0; default -13 (typical call-progress tone level). */
  level?: number;
}

export interface ToneSpec {
  name: string;
  segments: ToneSegment[];
}

/** A soft two-note chime rather than a harsh tone: callers hear it for minutes. */
export const HOLD_TONE: ToneSpec = {
  name: 'hold',
  segments: [
    { freqs: [523], ms: 400, level: -16 },
    { freqs: [659], ms: 400, level: -16 },
    { freqs: [], ms: 1200 },
  ],
};

/** ETSI/European ringback (ETSI TR 101 041): 425 Hz, 1 s on, 4 s off. */
export const RINGBACK_TONE: ToneSpec = {
  name: 'ringback',
  segments: [
    { freqs: [425], ms: 1000 },
    { freqs: [], ms: 4000 },
  ],
};

/** ETSI busy: 425 Hz, 500 ms on, 500 ms off. */
export const BUSY_TONE: ToneSpec = {
  name: 'busy',
  segments: [
    { freqs: [425], ms: 500 },
    { freqs: [], ms: 500 },
  ],
};

export const SAMPLE_RATE = 8000;
export const FRAME_SAMPLES = 160; // 20 ms at 8 kHz
/** Peak linear amplitude of a 0 dBm0 sine in G.711 (+3.14 dBm0 is full scale, G.711 Table 5/6). */
const ZERO_DBM0_PEAK = 32767 / Math.pow(10, 3.14 / 20);
/** Ramp length at tone on/off edges: an abrupt start or stop is heard as a click. */
const RAMP_SAMPLES = 40;

/**
 * Renders one full cycle of the tone as 20 ms G.711 frames. Precomputed once per tone and codec
 * so that playing costs nothing but a send per tick. Each oscillator keeps its phase across frame
 * and segment boundaries; a cycle that is not a multiple of 20 ms is padded with silence.
 */
export function renderTone(spec: ToneSpec, codec: G711Codec): Buffer[] {
  let totalSamples = 0;
  for (const seg of spec.segments) {
    if (!(seg.ms >= 0) || !Number.isFinite(seg.ms)) throw new Error(`tone ${spec.name}: invalid segment length ${seg.ms}`);
    totalSamples += Math.round((seg.ms * SAMPLE_RATE) / 1000);
  }
  const frames = Math.max(1, Math.ceil(totalSamples / FRAME_SAMPLES));
  const pcm = new Int16Array(frames * FRAME_SAMPLES);

  const phases: number[] = [];
  let pos = 0;
  for (const seg of spec.segments) {
    const n = Math.round((seg.ms * SAMPLE_RATE) / 1000);
    const amp = ZERO_DBM0_PEAK * Math.pow(10, (seg.level ?? -13) / 20);
    const ramp = Math.min(RAMP_SAMPLES, Math.floor(n / 2));
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (let k = 0; k < seg.freqs.length; k++) {
        v += Math.sin(phases[k] ?? 0);
        phases[k] = ((phases[k] ?? 0) + (2 * Math.PI * seg.freqs[k]) / SAMPLE_RATE) % (2 * Math.PI);
      }
      const env = ramp > 0 ? Math.min(1, i / ramp, (n - 1 - i) / ramp) : 1;
      pcm[pos + i] = Math.max(-32768, Math.min(32767, Math.round(v * amp * env)));
    }
    pos += n;
  }

  const out: Buffer[] = [];
  for (let f = 0; f < frames; f++) {
    out.push(encodeFrame(codec, pcm.subarray(f * FRAME_SAMPLES, (f + 1) * FRAME_SAMPLES)));
  }
  return out;
}
