/**
 * ITU-T G.711 μ-law and A-law (the classic Sun reference algorithms, bit-exact with what PBXs and
 * sipp expect). Decoding is a 256-entry table; encoding is computed, since it only runs when
 * tones or prompts are prepared, never per relayed packet.
 */
export type G711Codec = 'PCMU' | 'PCMA';

const ULAW_BIAS = 0x84;
const ULAW_CLIP = 8159; // in 14-bit magnitude after the >> 2
const SEG_UEND = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
const SEG_AEND = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

function segment(value: number, ends: readonly number[]): number {
  for (let i = 0; i < ends.length; i++) if (value <= ends[i]) return i;
  return ends.length;
}

function clamp16(sample: number): number {
  const s = Math.round(sample);
  return s > 32767 ? 32767 : s < -32768 ? -32768 : s | 0;
}

export function linearToUlaw(sample: number): number {
  let pcm = clamp16(sample) >> 2;
  let mask: number;
  if (pcm < 0) {
    pcm = -pcm;
    mask = 0x7f;
  } else {
    mask = 0xff;
  }
  if (pcm > ULAW_CLIP) pcm = ULAW_CLIP;
  pcm += ULAW_BIAS >> 2;
  const seg = segment(pcm, SEG_UEND);
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0f)) ^ mask;
}

export function linearToAlaw(sample: number): number {
  let pcm = clamp16(sample) >> 3;
  let mask: number;
  if (pcm >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  const seg = segment(pcm, SEG_AEND);
  if (seg >= 8) return 0x7f ^ mask;
  const quant = seg < 2 ? (pcm >> 1) & 0x0f : (pcm >> seg) & 0x0f;
  return ((seg << 4) | quant) ^ mask;
}

function ulawDecodeSlow(u: number): number {
  const v = ~u & 0xff;
  let t = ((v & 0x0f) << 3) + ULAW_BIAS;
  t <<= (v & 0x70) >> 4;
  return v & 0x80 ? ULAW_BIAS - t : t - ULAW_BIAS;
}

function alawDecodeSlow(a: number): number {
  const v = (a & 0xff) ^ 0x55;
  let t = (v & 0x0f) << 4;
  const seg = (v & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return v & 0x80 ? t : -t;
}

const ULAW_TABLE = new Int16Array(256);
const ALAW_TABLE = new Int16Array(256);
for (let i = 0; i < 256; i++) {
  ULAW_TABLE[i] = ulawDecodeSlow(i);
  ALAW_TABLE[i] = alawDecodeSlow(i);
}

export function ulawToLinear(code: number): number {
  return ULAW_TABLE[code & 0xff];
}

export function alawToLinear(code: number): number {
  return ALAW_TABLE[code & 0xff];
}

/** The code of digital silence (linear 0) for each law: what padding and comfort gaps use. */
export const SILENCE_BYTE: Readonly<Record<G711Codec, number>> = { PCMU: 0xff, PCMA: 0xd5 };

export function encodeFrame(codec: G711Codec, samples: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length);
  const enc = codec === 'PCMU' ? linearToUlaw : linearToAlaw;
  for (let i = 0; i < samples.length; i++) out[i] = enc(samples[i]);
  return out;
}

/** The decode table (code → 16-bit linear) of a law, for loops that decode whole frames. */
export function decodeTable(codec: G711Codec): Int16Array {
  return codec === 'PCMU' ? ULAW_TABLE : ALAW_TABLE;
}

let ulawEncode: Uint8Array | null = null;
let alawEncode: Uint8Array | null = null;

/**
 * The encode table of a law: index = the 16-bit sample as unsigned (`sample & 0xffff`). 64 KiB
 * per law, built on first use, so a mixer encodes each sample with one lookup instead of the
 * segment search.
 */
export function encodeTable(codec: G711Codec): Uint8Array {
  if (codec === 'PCMU') return (ulawEncode ??= buildEncodeTable(linearToUlaw));
  return (alawEncode ??= buildEncodeTable(linearToAlaw));
}

function buildEncodeTable(enc: (sample: number) => number): Uint8Array {
  const t = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = enc(i < 32768 ? i : i - 65536);
  return t;
}
