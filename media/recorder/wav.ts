/**
 * WAV container for G.711 recordings. ccedge records two-channel G.711 WAV: WAVE_FORMAT_MULAW (7)
 * for PCMU calls, WAVE_FORMAT_ALAW (6) for PCMA calls; 8 kHz, 2 channels (caller left, agent
 * right), 8 bits per sample, block align 2. The codec of the call is kept (no transcoding on the
 * packet path); every common player and sox/ffmpeg read these formats.
 *
 * The vault stores only the interleaved sample data (encrypted); the 58-byte header is a pure
 * function of codec and data length and is prepended when a recording is read or exported.
 */
import type { G711Codec } from '../tones/g711';

export const WAVE_FORMAT_ALAW = 6;
export const WAVE_FORMAT_MULAW = 7;
export const RECORDING_SAMPLE_RATE = 8000;
export const RECORDING_CHANNELS = 2;
/** RIFF(12) + fmt chunk with cbSize (8+18) + fact chunk (8+4) + data chunk header (8). */
export const WAV_HEADER_SIZE = 58;

export function wavFormatTag(codec: G711Codec): number {
  return codec === 'PCMU' ? WAVE_FORMAT_MULAW : WAVE_FORMAT_ALAW;
}

/** The header of a stereo G.711 WAV holding `dataBytes` bytes of interleaved samples. */
export function g711WavHeader(codec: G711Codec, dataBytes: number, channels = RECORDING_CHANNELS, rate = RECORDING_SAMPLE_RATE): Buffer {
  const h = Buffer.alloc(WAV_HEADER_SIZE);
  const padded = dataBytes + (dataBytes & 1); // RIFF chunks are word aligned
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(WAV_HEADER_SIZE - 8 + padded, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(18, 16);
  h.writeUInt16LE(wavFormatTag(codec), 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * channels, 28); // byte rate: 1 byte per sample
  h.writeUInt16LE(channels, 32); // block align
  h.writeUInt16LE(8, 34); // bits per sample
  h.writeUInt16LE(0, 36); // cbSize
  h.write('fact', 38, 'ascii');
  h.writeUInt32LE(4, 42);
  h.writeUInt32LE(Math.floor(dataBytes / channels), 46); // samples per channel
  h.write('data', 50, 'ascii');
  h.writeUInt32LE(dataBytes, 54);
  return h;
}

export interface ParsedG711Wav {
  formatTag: number;
  channels: number;
  sampleRate: number;
  dataOffset: number;
  dataBytes: number;
}

/** Minimal reader for the files ccedge writes (tests, export checks). Throws on anything else. */
export function parseG711Wav(buf: Buffer): ParsedG711Wav {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let off = 12;
  let fmt: { formatTag: number; channels: number; sampleRate: number } | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') fmt = { formatTag: buf.readUInt16LE(off + 8), channels: buf.readUInt16LE(off + 10), sampleRate: buf.readUInt32LE(off + 12) };
    if (id === 'data') {
      if (!fmt) throw new Error('data chunk before fmt chunk');
      return { ...fmt, dataOffset: off + 8, dataBytes: Math.min(size, buf.length - off - 8) };
    }
    off += 8 + size + (size & 1);
  }
  throw new Error('no data chunk');
}
