import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeTable, encodeFrame } from '../../tones/g711';
import { FRAME_SAMPLES } from '../../tones/tone';
import { lineNoise } from '../../speech/line-noise';

/**
 * Test callers that really speak: text → a flite voice (or espeak-ng, the hard case) → sox
 * (telephone band, 8 kHz) → G.711 μ-law exactly as a trunk would carry it → decoded 16-bit PCM.
 * The speech tests, the speech IVR e2e and the transcript e2e all take their audio from here, so
 * every recogniser figure is measured on the same kind of signal.
 */
const run = promisify(execFile);

/**
 * flite's general-purpose voices (kal is an 8 kHz diphone voice, the rest 16 kHz). Not awb_time: a
 * limited-domain voice that only speaks clock times and turns anything else into half a second of
 * noise.
 */
export const FLITE_VOICES = ['kal', 'awb', 'rms', 'slt', 'kal16'] as const;
export type FliteVoice = (typeof FLITE_VOICES)[number];
/** espeak-ng's default English voice: barely recognised by pocketsphinx — the hard case. */
export type CorpusVoice = FliteVoice | 'espeak';

export interface SpokenClip {
  text: string;
  voice: CorpusVoice;
  /** G.711 μ-law, 8 kHz, what an RTP peer sends (whole 20 ms frames). */
  ulaw: Buffer;
  /** The same audio decoded back to 16-bit PCM: what a recogniser is given. */
  pcm: Int16Array;
  durationMs: number;
  /** Where the speech itself starts and ends inside the clip (the rest is line noise). */
  speechStartMs: number;
  speechEndMs: number;
}

export interface SpeakOptions {
  /** Line noise before the speech (ms, default 300). */
  leadMs?: number;
  /** Line noise after the speech (ms, default 300). */
  trailMs?: number;
  /** Peak level of the speech in dBFS (default -6, sox `gain -n`). */
  levelDb?: number;
}

const cache = new Map<string, Promise<SpokenClip>>();

/** Speaks `text` with `voice`; the same request is synthesised once per process. */
export function speak(text: string, voice: CorpusVoice, opts: SpeakOptions = {}): Promise<SpokenClip> {
  const key = JSON.stringify([text, voice, opts.leadMs, opts.trailMs, opts.levelDb]);
  let p = cache.get(key);
  if (!p) {
    p = synthesise(text, voice, opts);
    cache.set(key, p);
    // A failed synthesis must not poison the cache for a retry.
    p.catch(() => cache.delete(key));
  }
  return p;
}

async function synthesise(text: string, voice: CorpusVoice, opts: SpeakOptions): Promise<SpokenClip> {
  const dir = await mkdtemp(join(tmpdir(), 'ccedge-speech-'));
  try {
    const wav = join(dir, 'voice.wav');
    if (voice === 'espeak') await run('espeak-ng', ['-v', 'en-us', '-w', wav, text]);
    else await run('flite', ['-voice', voice, '-t', text, '-o', wav]);
    const raw = join(dir, 'line.raw');
    // The telephone band (a trunk passes ~300–3400 Hz) and 8 kHz, before G.711 quantises it.
    await run('sox', [wav, '-t', 'raw', '-r', '8000', '-e', 'signed', '-b', '16', '-c', '1', raw,
      'sinc', '300-3400', 'gain', '-n', String(opts.levelDb ?? -6)]);
    const bytes = await readFile(raw);
    const speech = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
    const lead = msToSamples(opts.leadMs ?? 300);
    const trail = msToSamples(opts.trailMs ?? 300);
    const total = Math.ceil((lead + speech.length + trail) / FRAME_SAMPLES) * FRAME_SAMPLES;
    const line = lineNoise(total, text.length);
    for (let i = 0; i < speech.length; i++) line[lead + i] = clamp(line[lead + i] + speech[i]);
    const ulaw = encodeFrame('PCMU', line);
    const table = decodeTable('PCMU');
    const pcm = new Int16Array(ulaw.length);
    for (let i = 0; i < ulaw.length; i++) pcm[i] = table[ulaw[i]];
    return {
      text,
      voice,
      ulaw,
      pcm,
      durationMs: (pcm.length / 8000) * 1000,
      speechStartMs: (lead / 8000) * 1000,
      speechEndMs: ((lead + speech.length) / 8000) * 1000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** 20 ms μ-law frames (160 bytes each) of a clip, for an RTP sender. */
export function ulawFrames(clip: SpokenClip): Buffer[] {
  const frames: Buffer[] = [];
  for (let off = 0; off < clip.ulaw.length; off += FRAME_SAMPLES) frames.push(clip.ulaw.subarray(off, off + FRAME_SAMPLES));
  return frames;
}

/** 20 ms decoded frames (160 samples each) of a clip, for a recogniser or an endpointer. */
export function pcmFrames(clip: SpokenClip): Int16Array[] {
  const frames: Int16Array[] = [];
  for (let off = 0; off < clip.pcm.length; off += FRAME_SAMPLES) frames.push(clip.pcm.subarray(off, off + FRAME_SAMPLES));
  return frames;
}

/** Decoded frames of `ms` of line noise alone (a caller who says nothing). */
export function silenceFrames(ms: number, seed = 1): Int16Array[] {
  const n = Math.ceil(msToSamples(ms) / FRAME_SAMPLES) * FRAME_SAMPLES;
  const table = decodeTable('PCMU');
  const ulaw = encodeFrame('PCMU', lineNoise(n, seed));
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) pcm[i] = table[ulaw[i]];
  const frames: Int16Array[] = [];
  for (let off = 0; off < n; off += FRAME_SAMPLES) frames.push(pcm.subarray(off, off + FRAME_SAMPLES));
  return frames;
}


function msToSamples(ms: number): number {
  return Math.round((ms * 8000) / 1000);
}

function clamp(v: number): number {
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

/**
 * Word error rate of a hypothesis against the reference text: (substitutions + deletions +
 * insertions) / reference words, by word-level edit distance after normalising case and punctuation.
 */
export function wordErrorRate(reference: string, hypothesis: string): { errors: number; words: number; wer: number } {
  const norm = (s: string): string[] => s.toLowerCase().replace(/[^a-z0-9']+/g, ' ').trim().split(/\s+/).filter(Boolean);
  const ref = norm(reference);
  const hyp = norm(hypothesis);
  let prev = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const cur = [i];
    for (let j = 1; j <= hyp.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ref[i - 1] === hyp[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  const errors = prev[hyp.length];
  return { errors, words: ref.length, wer: ref.length === 0 ? (hyp.length > 0 ? 1 : 0) : errors / ref.length };
}
