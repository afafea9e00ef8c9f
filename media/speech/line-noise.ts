/**
 * Quiet, deterministic line noise (about -66 dBFS, xorshift32): what the engine is given instead of
 * digital zeros. A real trunk is never exactly silent, and on all-zero audio pocketsphinx's live
 * cepstral mean drifts away from speech so the next words decode badly (measured in the live
 * transcriber and the speech corpus).
 */
export function lineNoise(n: number, seed = 0x9e3779b9): Int16Array {
  const out = new Int16Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s % 33) - 16;
  }
  return out;
}
