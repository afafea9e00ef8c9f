import { stat } from 'node:fs/promises';
import path from 'node:path';
import { alawToLinear, linearToAlaw, linearToUlaw, ulawToLinear, type G711Codec } from '../../media';
import { loadPromptFrames } from '../../media';
import { renderTone, type ToneSpec } from '../../media';
import { PROMPT_NAME_PATTERN } from './config';
import type { Log } from '../../lib/log';

/** Where the IVR gets a prompt's audio: 20 ms G.711 frames in the call's law. */
export interface PromptSource {
  /** Never rejects: a missing or bad file gives the generated tone prompt for `name`. */
  frames(name: string, codec: G711Codec): Promise<Buffer[]>;
}

export type PromptLog = Pick<Log, 'warn'> & Partial<Pick<Log, 'debug'>>;

const OWN_EXTS: Readonly<Record<G711Codec, readonly string[]>> = { PCMU: ['.ulaw', '.pcmu'], PCMA: ['.alaw', '.pcma'] };
const OTHER: Readonly<Record<G711Codec, G711Codec>> = { PCMU: 'PCMA', PCMA: 'PCMU' };

/**
 * Prompts from `<dir>/<name>.(ulaw|pcmu|alaw|pcma|wav)`, cached per name and codec. The file in
 * the call's own law is preferred; a file only in the other law is converted once at load (μ-law
 * ↔ A-law through linear: a few table lookups per sample, never on the packet path). With no
 * file, the prompt is a short generated beep pattern distinct per name, so a box with no audio
 * assets still runs a usable IVR. A bad file is logged once and replaced the same way.
 */
export class IvrPrompts implements PromptSource {
  private readonly cache = new Map<string, Promise<Buffer[]>>();
  private readonly warned = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly log?: PromptLog,
  ) {}

  /** The prompts directory of a data dir: `<dataDir>/prompts`. */
  static forDataDir(dataDir: string, log?: PromptLog): IvrPrompts {
    return new IvrPrompts(path.join(dataDir, 'prompts'), log);
  }

  frames(name: string, codec: G711Codec): Promise<Buffer[]> {
    const key = `${codec}\0${name}`;
    let p = this.cache.get(key);
    if (!p) {
      p = this.load(name, codec);
      this.cache.set(key, p);
    }
    return p;
  }

  /** Loads (and caches) every named prompt in each codec; resolves when all are ready. */
  async preload(names: Iterable<string>, codecs: readonly G711Codec[] = ['PCMU', 'PCMA']): Promise<void> {
    const all: Array<Promise<Buffer[]>> = [];
    for (const n of names) for (const c of codecs) all.push(this.frames(n, c));
    await Promise.all(all);
  }

  /** Forgets cached prompts (e.g. after new files were installed). */
  clear(): void {
    this.cache.clear();
    this.warned.clear();
  }

  private async load(name: string, codec: G711Codec): Promise<Buffer[]> {
    if (!PROMPT_NAME_PATTERN.test(name)) {
      this.warnOnce(`name:${name}`, { prompt: name, code: 'PROMPT_INVALID' }, 'unsafe prompt name: using the generated prompt');
      return generatedPrompt(name, codec);
    }
    let file: string | undefined;
    try {
      file = await this.findFile(name, codec);
      if (file === undefined) {
        this.log?.debug?.({ prompt: name, codec, dir: this.dir }, 'no prompt file: using the generated prompt');
        return generatedPrompt(name, codec);
      }
      return await this.loadFile(file, codec);
    } catch (err) {
      this.warnOnce(`file:${file ?? name}`, { err, prompt: name, codec, file, code: 'PROMPT_INVALID' }, 'prompt file unusable: using the generated prompt');
      return generatedPrompt(name, codec);
    }
  }

  private async findFile(name: string, codec: G711Codec): Promise<string | undefined> {
    for (const ext of [...OWN_EXTS[codec], '.wav', ...OWN_EXTS[OTHER[codec]]]) {
      const file = path.join(this.dir, name + ext);
      if (await isFile(file)) return file;
    }
    return undefined;
  }

  private async loadFile(file: string, codec: G711Codec): Promise<Buffer[]> {
    const ext = path.extname(file).toLowerCase();
    if (OWN_EXTS[codec].includes(ext)) return loadPromptFrames(file, codec);
    if (ext === '.wav') {
      try {
        return await loadPromptFrames(file, codec);
      } catch (first) {
        // Perhaps a WAV in the other law: convert it; if that fails too, the first reason stands.
        try {
          return transcodeFrames(await loadPromptFrames(file, OTHER[codec]), OTHER[codec], codec);
        } catch {
          throw first;
        }
      }
    }
    return transcodeFrames(await loadPromptFrames(file, OTHER[codec]), OTHER[codec], codec);
  }

  private warnOnce(key: string, obj: object, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log?.warn(obj, msg);
  }
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw err;
  }
}

/** μ-law ↔ A-law, frame by frame (same frame count and size). */
export function transcodeFrames(frames: Buffer[], from: G711Codec, to: G711Codec): Buffer[] {
  if (from === to) return frames;
  const decode = from === 'PCMU' ? ulawToLinear : alawToLinear;
  const encode = to === 'PCMU' ? linearToUlaw : linearToAlaw;
  return frames.map((f) => {
    const out = Buffer.allocUnsafe(f.length);
    for (let i = 0; i < f.length; i++) out[i] = encode(decode(f[i]));
    return out;
  });
}

/**
 * Pitches for generated prompts: pleasant notes clear of the DTMF row and column frequencies
 * (697-941 Hz, 1209-1633 Hz), so a far end doing in-band detection never hears a key.
 */
const PITCHES = [349, 392, 440, 494, 523, 587, 1046, 1109] as const;
const BEEP_MS = 160;
const GAP_MS = 90;
const TAIL_MS = 300;

/** 32-bit FNV-1a: a stable, well-spread number per prompt name. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The tone pattern standing in for a prompt with no file: 2-4 beeps whose count and pitches derive
 * from the name (over 4 600 patterns), then a short silence. At most about 1.3 s.
 */
export function generatedPromptSpec(name: string): ToneSpec {
  const h = fnv1a(name);
  const count = 2 + (h % 3);
  const segments: ToneSpec['segments'] = [];
  for (let i = 0; i < count; i++) {
    // Three bits of the hash per beep (bits 2-13): PITCHES has 8 entries.
    segments.push({ freqs: [PITCHES[(h >>> (2 + 3 * i)) & 7]], ms: BEEP_MS, level: -16 });
    segments.push({ freqs: [], ms: i === count - 1 ? TAIL_MS : GAP_MS });
  }
  return { name: `prompt:${name}`, segments };
}

export function generatedPrompt(name: string, codec: G711Codec): Buffer[] {
  return renderTone(generatedPromptSpec(name), codec);
}
