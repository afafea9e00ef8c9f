/**
 * End-pointing for spoken answers: when did the caller start talking, when have they finished (a
 * pause of `silenceMs` after speech), and the limits (`maxSpeechMs` of talking, `noInputMs` before
 * any speech at all). An energy detector against an adaptive noise floor — simple, no model, and
 * good enough on telephone audio where the line is quiet between words. Pure: fed decoded frames,
 * time is the audio's own (samples counted at 8 kHz), no clock, no allocation per frame.
 */
export interface EndpointerOptions {
  /** Silence after speech that ends the answer (ms). */
  silenceMs: number;
  /** Longest answer (ms of audio from the speech start); then it ends with reason max-length. */
  maxSpeechMs: number;
  /** No speech within this long from the first frame → no-input (ms). */
  noInputMs: number;
  /** A frame is speech when this far above the noise floor (dB, default 12). */
  thresholdDb?: number;
  /** ...and at least this loud (dBFS, default -50), so a dead-quiet line's noise is never speech. */
  minSpeechDb?: number;
  /** Consecutive speech needed to call it a start (ms, default 100): clicks and pops are shorter. */
  minSpeechMs?: number;
  /** Audio kept before the detected start, since word onsets are quieter than the threshold (ms, default 200). */
  preRollMs?: number;
  /** Samples per second of the frames (default 8000). */
  sampleRate?: number;
}

export type EndpointStep = 'waiting' | 'started' | 'speech' | 'ended';
export type EndpointReason = 'silence' | 'max-length' | 'no-input';

/** A frame of digital silence has no log energy; treat it as this quiet. */
const FLOOR_DB = -96;
/** How fast the noise floor follows a louder background (per frame, in dB): slow, so speech does not raise it. */
const FLOOR_RISE_DB = 0.05;

export class Endpointer {
  private readonly rate: number;
  private readonly threshold: number;
  private readonly minSpeech: number;
  private readonly minSpeechMs: number;
  private readonly preRollMs: number;
  private samples = 0;
  private floor = Number.NaN;
  private step: EndpointStep = 'waiting';
  private runStartMs = -1;
  private lastSpeechMs = -1;
  private startMs = -1;
  private endMs = -1;
  private why: EndpointReason | null = null;

  constructor(private readonly opts: EndpointerOptions) {
    this.rate = opts.sampleRate ?? 8000;
    this.threshold = opts.thresholdDb ?? 12;
    this.minSpeech = opts.minSpeechDb ?? -50;
    this.minSpeechMs = opts.minSpeechMs ?? 100;
    this.preRollMs = opts.preRollMs ?? 200;
  }

  /** Where the audio is now (ms since the first frame). */
  get positionMs(): number {
    return (this.samples * 1000) / this.rate;
  }

  get state(): EndpointStep {
    return this.step === 'started' ? 'speech' : this.step;
  }

  /** Set once ended: why. */
  get reason(): EndpointReason | null {
    return this.why;
  }

  /** The answer's start (pre-roll included) and end in ms from the first frame; -1 until known. */
  get speechStartMs(): number {
    return this.startMs;
  }

  get speechEndMs(): number {
    return this.endMs;
  }

  /** Feeds one frame; says what it changed. After 'ended' every frame returns 'ended'. */
  push(frame: Int16Array): EndpointStep {
    if (this.step === 'ended') return 'ended';
    const frameStartMs = this.positionMs;
    this.samples += frame.length;
    const nowMs = this.positionMs;
    const db = levelDb(frame);
    if (Number.isNaN(this.floor)) this.floor = db;
    const loud = db >= this.floor + this.threshold && db >= this.minSpeech;
    if (!loud) {
      // The floor drops at once to a quieter frame and rises slowly with a louder background.
      this.floor = db < this.floor ? db : this.floor + Math.min(FLOOR_RISE_DB, db - this.floor);
    }

    if (this.step === 'waiting') {
      if (loud) {
        if (this.runStartMs < 0) this.runStartMs = frameStartMs;
        if (nowMs - this.runStartMs >= this.minSpeechMs) {
          this.step = 'started';
          this.startMs = Math.max(0, this.runStartMs - this.preRollMs);
          this.lastSpeechMs = nowMs;
          return 'started';
        }
      } else {
        this.runStartMs = -1;
      }
      if (nowMs >= this.opts.noInputMs) return this.finish('no-input', -1, -1);
      return 'waiting';
    }

    this.step = 'speech';
    if (loud) this.lastSpeechMs = nowMs;
    if (nowMs - this.lastSpeechMs >= this.opts.silenceMs) return this.finish('silence', this.startMs, this.lastSpeechMs);
    if (nowMs - this.startMs >= this.opts.maxSpeechMs) return this.finish('max-length', this.startMs, nowMs);
    return 'speech';
  }

  private finish(reason: EndpointReason, startMs: number, endMs: number): 'ended' {
    this.step = 'ended';
    this.why = reason;
    this.startMs = startMs;
    this.endMs = endMs;
    return 'ended';
  }
}

/** RMS level of a frame in dBFS (full scale = 32768). */
export function levelDb(frame: Int16Array): number {
  if (frame.length === 0) return FLOOR_DB;
  let sum = 0;
  for (let i = 0; i < frame.length; i++) sum += frame[i] * frame[i];
  const rms = Math.sqrt(sum / frame.length);
  return rms < 1e-3 ? FLOOR_DB : Math.max(FLOOR_DB, 20 * Math.log10(rms / 32768));
}
