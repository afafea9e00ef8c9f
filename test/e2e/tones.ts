import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeFrame, type G711Codec } from '../../media/tones/g711';
import { Goertzel } from '../../media/tones/goertzel';

/**
 * Tone test peers: every party of a call sends its own frequency and reports the frequencies it
 * hears, so a test can say who hears whom (transfers, conferences, monitoring) without a person.
 * The caller (test-uac) sends 1 kHz; agents and far ends pick others from PEER_TONES.
 */

/** Frequencies the peers use: far apart, none a harmonic of another within G.711's band. */
export const PEER_TONES = [600, 800, 1000, 1400] as const;

/**
 * A tone with at least this share of the received power is "heard"; below NOT_HEARD it is not.
 * Low on purpose: in a mix a party's share follows its level, and Chromium's fake microphone
 * arrives ~20 dB below its WAV (measured: WAV amplitude 30000 → RMS ~2200 at the caller, against
 * ~4200 from a werift peer at amplitude 6000), so in a three-way mix the Chromium agent's tone
 * is ~0.1-0.2 of what the others hear. A tone nobody sends measures 0.00 (G.711 noise spreads
 * over the whole band), so NOT_HEARD still has a wide margin.
 */
export const HEARD = 0.05;
export const NOT_HEARD = 0.01;

/**
 * One second of a tone as 50 G.711 frames of 20 ms (integer Hz: the second loops seamlessly).
 * Amplitude 6000 of 32768: well clear of clipping, as loud as speech.
 */
export function toneFrames(codec: G711Codec, hz: number, amplitude = 6000): Buffer[] {
  const frames: Buffer[] = [];
  for (let f = 0; f < 50; f++) {
    const pcm = new Int16Array(160);
    for (let i = 0; i < 160; i++) pcm[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * (f * 160 + i)) / 8000));
    frames.push(encodeFrame(codec, pcm));
  }
  return frames;
}

/**
 * A mono 16-bit PCM WAV of `seconds` of a tone (integer Hz and seconds: it loops seamlessly).
 * Near full scale: Chromium's capture path takes ~20 dB off it (see HEARD).
 */
export function toneWav(hz: number, seconds = 10, sampleRate = 48_000, amplitude = 30000): Buffer {
  const n = seconds * sampleRate;
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / sampleRate)), i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28); // byte rate
  h.writeUInt16LE(2, 32); // block align
  h.writeUInt16LE(16, 34); // bits per sample
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** Writes a tone WAV into a new temp dir; `remove()` deletes the dir. */
export function writeToneWav(hz: number): { file: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'ccedge-tone-'));
  const file = path.join(dir, `tone-${hz}.wav`);
  writeFileSync(file, toneWav(hz));
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What a party heard over a measurement window: share of the received power per frequency. */
export interface ToneReport {
  /** Share (0..1) per candidate frequency. */
  shares: Record<number, number>;
  /** RMS of what was received (16-bit scale): ~0 is silence. */
  rms: number;
  samples: number;
}

/** Frequencies a report says were heard (share ≥ HEARD). */
export function heardTones(r: ToneReport): number[] {
  return Object.entries(r.shares)
    .filter(([, share]) => share >= HEARD)
    .map(([hz]) => Number(hz));
}

/** "600 Hz 0.93, 800 Hz 0.00, … (rms 2100)": for assertion messages. */
export function describeReport(r: ToneReport): string {
  return `${Object.entries(r.shares)
    .map(([hz, s]) => `${hz} Hz ${s.toFixed(2)}`)
    .join(', ')} (rms ${r.rms.toFixed(0)}, ${r.samples} samples)`;
}

/**
 * Asserts `who` heard exactly `expected` among the candidates: each expected tone at least HEARD,
 * every other candidate below NOT_HEARD, and not silence. Returns a description for logs.
 */
export function checkHears(who: string, r: ToneReport, expected: readonly number[]): string | null {
  if (r.samples < 8000) return `${who}: only ${r.samples} samples received`;
  for (const [hzText, share] of Object.entries(r.shares)) {
    const hz = Number(hzText);
    if (expected.includes(hz) && share < HEARD) return `${who} should hear ${hz} Hz: ${describeReport(r)}`;
    if (!expected.includes(hz) && share >= NOT_HEARD) return `${who} should not hear ${hz} Hz: ${describeReport(r)}`;
  }
  return null;
}

/**
 * Goertzel detectors over received G.711 payloads for each candidate frequency. Fed packet by
 * packet; report() covers everything since the last reset().
 */
export class ToneMeter {
  private readonly detectors: Goertzel[];

  constructor(readonly candidates: readonly number[] = PEER_TONES) {
    this.detectors = candidates.map((hz) => new Goertzel(hz));
  }

  push(payload: Uint8Array, codec: G711Codec): void {
    for (const d of this.detectors) d.pushG711(payload, codec);
  }

  reset(): void {
    for (const d of this.detectors) d.reset();
  }

  report(): ToneReport {
    const first = this.detectors[0];
    return {
      shares: Object.fromEntries(this.detectors.map((d) => [d.hz, d.share])),
      rms: first?.rms ?? 0,
      samples: first?.samples ?? 0,
    };
  }
}

/** G.711 law of an RTP payload type (0 PCMU, 8 PCMA), or null for anything else. */
export function g711Of(payloadType: number): G711Codec | null {
  return payloadType === 0 ? 'PCMU' : payloadType === 8 ? 'PCMA' : null;
}

/**
 * Own tones for e2e peers: each party of a call sends its own frequency and reports which of the
 * others' it hears, so a test can say "the caller hears the extension, the extension the caller".
 * The frequencies stay clear of the hold tone (523/659 Hz) and ringback/busy (425 Hz).
 */
export const TONES = { caller: 1000, extension: 1400, agent: 700, target: 1800, supervisor: 2200 } as const;
export const TONE_CANDIDATES: readonly number[] = [700, 1000, 1400, 1800, 2200];

/** One second of a sine at `hz` as 20 ms frames (toneFrames with the arguments the SIP peers use). */
export function sineFrames(hz: number, codec: G711Codec, amplitude = 8000): Buffer[] {
  return toneFrames(codec, hz, amplitude);
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
  // Judged per 100 ms block (unlike ToneMeter's one window): for peers whose source switches
  // mid-measurement (a REFER moving the caller to the extension).
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
