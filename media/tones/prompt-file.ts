import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { MediaError } from '../errors';
import { SILENCE_BYTE, type G711Codec } from './g711';
import { FRAME_SAMPLES } from './tone';

/** WAVE_FORMAT_ALAW and WAVE_FORMAT_MULAW from the RIFF spec. */
const WAV_FORMAT: Readonly<Record<G711Codec, number>> = { PCMA: 6, PCMU: 7 };
const RAW_EXT: Readonly<Record<string, G711Codec>> = { '.ulaw': 'PCMU', '.pcmu': 'PCMU', '.alaw': 'PCMA', '.pcma': 'PCMA' };
/** About 30 minutes of 8 kHz audio: a larger "prompt" is a mistake, not a prompt. */
const MAX_PROMPT_BYTES = 16 * 1024 * 1024;

/**
 * Loads a prompt as 20 ms frames ready for TonePlayer. We do not transcode: the file's law must
 * match the call's codec, so installations ship each prompt in both laws (or convert with sox).
 */
export async function loadPromptFrames(path: string, codec: G711Codec): Promise<Buffer[]> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new MediaError('PROMPT_INVALID', `cannot read prompt ${path}: ${(err as Error).message}`);
  }
  if (data.length > MAX_PROMPT_BYTES) throw new MediaError('PROMPT_INVALID', `prompt ${path} is too large (${data.length} bytes)`);
  const ext = extname(path).toLowerCase();
  let audio: Buffer;
  if (ext === '.wav') {
    audio = wavAudio(data, codec, path);
  } else if (ext in RAW_EXT) {
    if (RAW_EXT[ext] !== codec) {
      throw new MediaError('PROMPT_INVALID', `prompt ${path} is ${RAW_EXT[ext]} but the call uses ${codec}`);
    }
    audio = data;
  } else {
    throw new MediaError('PROMPT_INVALID', `prompt ${path}: unsupported extension "${ext}" (use .ulaw, .alaw, .pcmu, .pcma or .wav)`);
  }
  return splitFrames(audio, codec, path);
}

export function splitFrames(audio: Buffer, codec: G711Codec, name = 'prompt'): Buffer[] {
  if (audio.length === 0) throw new MediaError('PROMPT_INVALID', `${name} contains no audio`);
  const frames: Buffer[] = [];
  for (let off = 0; off < audio.length; off += FRAME_SAMPLES) {
    const frame = Buffer.alloc(FRAME_SAMPLES, SILENCE_BYTE[codec]);
    audio.copy(frame, 0, off, Math.min(off + FRAME_SAMPLES, audio.length));
    frames.push(frame);
  }
  return frames;
}

/** Walks the RIFF chunks rather than assuming a 44-byte header: many tools add LIST/fact chunks. */
function wavAudio(data: Buffer, codec: G711Codec, path: string): Buffer {
  const bad = (why: string): MediaError => new MediaError('PROMPT_INVALID', `prompt ${path}: ${why}`);
  if (data.length < 12 || data.toString('latin1', 0, 4) !== 'RIFF' || data.toString('latin1', 8, 12) !== 'WAVE') {
    throw bad('not a RIFF/WAVE file');
  }
  let fmt: { format: number; channels: number; rate: number; bits: number } | null = null;
  let off = 12;
  while (off + 8 <= data.length) {
    const id = data.toString('latin1', off, off + 4);
    const size = data.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > data.length) throw bad('truncated fmt chunk');
      fmt = {
        format: data.readUInt16LE(body),
        channels: data.readUInt16LE(body + 2),
        rate: data.readUInt32LE(body + 4),
        bits: data.readUInt16LE(body + 14),
      };
      // WAVE_FORMAT_EXTENSIBLE carries the real format in the sub-format GUID's first two bytes.
      if (fmt.format === 0xfffe && size >= 40 && body + 26 <= data.length) fmt.format = data.readUInt16LE(body + 24);
    } else if (id === 'data') {
      if (fmt === null) throw bad('data chunk before fmt chunk');
      const expected = WAV_FORMAT[codec];
      if (fmt.format !== 6 && fmt.format !== 7) throw bad(`WAV format ${fmt.format} is not G.711 (need 6 = A-law or 7 = μ-law)`);
      if (fmt.format !== expected) throw bad(`WAV is ${fmt.format === 7 ? 'PCMU' : 'PCMA'} but the call uses ${codec}`);
      if (fmt.rate !== 8000) throw bad(`sample rate ${fmt.rate} Hz, need 8000`);
      if (fmt.channels !== 1) throw bad(`${fmt.channels} channels, need mono`);
      if (fmt.bits !== 8) throw bad(`${fmt.bits} bits per sample, need 8`);
      // Writers that stream (sox to a pipe) leave size 0 or 0xFFFFFFFF: take what is there.
      const end = size === 0 || size === 0xffffffff ? data.length : Math.min(data.length, body + size);
      return data.subarray(body, end);
    }
    off = body + size + (size & 1); // chunks are word-aligned
  }
  throw bad(fmt === null ? 'no fmt chunk' : 'no data chunk');
}
