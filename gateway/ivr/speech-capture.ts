import type { RtpHeader } from '../../media';
import type { Recognition, SpeechEngine, SpeechHypothesis } from '../../media';
import type { Endpointer, EndpointerOptions } from '../../media';
import { isSpeechError } from '../../media';
import { decodeTable, type G711Codec } from '../../media';
import type { IvrLog, IvrTimer, IvrTimers } from './ivr-session';

/** How often the engine is given the audio collected since the last time (off the packet path). */
const FEED_MS = 100;

/** The caller's RTP as it arrives (the call's RtpSession). */
export interface CallerAudio {
  on(event: 'packet', listener: (h: RtpHeader, payload: Buffer) => void): unknown;
  off(event: 'packet', listener: (h: RtpHeader, payload: Buffer) => void): unknown;
}

/** Decides where the answer starts and ends from 20 ms frames of decoded audio (media/speech/endpointer.ts). */
export type FrameEndpointer = Pick<Endpointer, 'push' | 'reason'>;

/** The menu's limits, as the end-pointer takes them. */
export type EndpointerLimits = Pick<EndpointerOptions, 'silenceMs' | 'maxSpeechMs' | 'noInputMs'>;

/** How one listening turn ended. */
export type CaptureResult =
  /**
   * The engine's grammar-mode hypothesis of the answer, and the dictation check of the same audio
   * (null when the engine had no room for it or it failed).
   */
  | { kind: 'heard'; hypothesis: SpeechHypothesis | null; check: SpeechHypothesis | null }
  /** The caller said nothing within noInputS. */
  | { kind: 'no-input' }
  /** The engine could not take the turn (busy, not installed) or failed during it. */
  | { kind: 'unavailable'; code: string; message: string };

export interface SpeechCaptureOptions {
  engine: SpeechEngine;
  /** JSGF text of the menu (grammar mode). */
  grammar: string;
  audio: CallerAudio;
  /** The caller's audio payload type and law now (a re-INVITE may change them). */
  payloadType: () => number;
  codec: () => G711Codec;
  endpointer: FrameEndpointer;
  /** A safety net over the end-pointer: the turn ends after this long whatever the audio does. */
  maxTurnMs: number;
  timers: IvrTimers;
  tag: string;
  log?: IvrLog;
  onResult: (r: CaptureResult) => void;
}

/**
 * One listening turn of a speech menu: the caller's RTP decoded to 8 kHz PCM, end-pointed, and
 * recognised by the engine against the menu's grammar and, when the engine has room for a second
 * recognition, in dictation mode as a check (a grammar search reads any sound as some phrase; the
 * check tells an answer from mumbling and catches wording the grammar missed). Recognitions are
 * started at once (the model loads while the caller draws breath) and given every frame from the
 * start, so the first syllable is never lost to the end-pointer's decision. Exactly one onResult,
 * unless close() came first.
 */
export class SpeechCapture {
  private recognition: Recognition | null = null;
  private check: Recognition | null = null;
  /** Every utterance each recognition decided (a pause inside the answer can make two). */
  private readonly finals: SpeechHypothesis[] = [];
  private readonly checkFinals: SpeechHypothesis[] = [];
  private done = false;
  private started = false;
  private turnTimer: IvrTimer | null = null;
  private readonly tables: Record<G711Codec, Int16Array> = { PCMU: decodeTable('PCMU'), PCMA: decodeTable('PCMA') };
  /**
   * The whole turn's audio, decoded on the packet path into this preallocated array (nothing is
   * allocated per packet); the engine is fed from it every FEED_MS, off the packet path.
   */
  private readonly pcm: Int16Array;
  private written = 0;
  private fed = 0;
  /** One decoded frame for the end-pointer, reused (it keeps no reference); replaced only if the packet size changes. */
  private frame = new Int16Array(160);
  private feedTimer: IvrTimer | null = null;

  constructor(private readonly opts: SpeechCaptureOptions) {
    // The turn ends at maxTurnMs whatever the audio does; a second of slack for late packets.
    this.pcm = new Int16Array(Math.ceil(opts.maxTurnMs / 1000 + 1) * 8000);
  }

  start(): void {
    if (this.started || this.done) return;
    this.started = true;
    try {
      this.recognition = this.opts.engine.recognize({ mode: 'grammar', grammar: this.opts.grammar, tag: this.opts.tag });
    } catch (err) {
      const code = isSpeechError(err) ? err.code : 'SPEECH_ENGINE_FAILED';
      this.finish({ kind: 'unavailable', code, message: (err as Error).message });
      return;
    }
    this.recognition.on('error', this.onEngineError);
    this.recognition.on('final', (h) => this.finals.push(h));
    try {
      const check = this.opts.engine.recognize({ mode: 'dictation', tag: `${this.opts.tag}:check` });
      check.on('final', (h) => this.checkFinals.push(h));
      check.on('error', () => {
        // The check is a help, not a need: the grammar hypothesis alone still decides.
        check.close();
        if (this.check === check) this.check = null;
      });
      this.check = check;
    } catch {
      // At speech.engine.maxConcurrent: grammar only for this turn.
      this.check = null;
    }
    this.opts.audio.on('packet', this.onPacket);
    this.armFeed();
    this.turnTimer = this.opts.timers.setTimeout(() => {
      this.turnTimer = null;
      void this.conclude();
    }, this.opts.maxTurnMs);
  }

  /** Abandons the turn (a key pressed, the caller gone): no onResult. Idempotent. */
  close(): void {
    if (this.done) return;
    this.done = true;
    this.release();
    this.recognition?.close();
    this.check?.close();
  }

  private readonly onPacket = (h: RtpHeader, payload: Buffer): void => {
    if (this.done || h.payloadType !== this.opts.payloadType()) return;
    const table = this.tables[this.opts.codec()];
    if (this.frame.length !== payload.length) this.frame = new Int16Array(payload.length);
    const frame = this.frame;
    const room = this.pcm.length - this.written;
    for (let i = 0; i < payload.length; i++) {
      const v = table[payload[i]];
      frame[i] = v;
      if (i < room) this.pcm[this.written + i] = v;
    }
    this.written += Math.min(room, payload.length);
    if (this.opts.endpointer.push(frame) !== 'ended' && this.written < this.pcm.length) return;
    if (this.opts.endpointer.reason === 'no-input') {
      this.recognition?.close();
      this.check?.close();
      this.finish({ kind: 'no-input' });
    } else void this.conclude();
  };

  private readonly onEngineError = (err: Error): void => {
    if (this.done) return;
    this.recognition?.close();
    this.check?.close();
    this.finish({ kind: 'unavailable', code: isSpeechError(err) ? err.code : 'SPEECH_ENGINE_FAILED', message: err.message });
  };

  private armFeed(): void {
    this.feedTimer = this.opts.timers.setTimeout(() => {
      this.feedTimer = null;
      this.feed();
      if (!this.done) this.armFeed();
    }, FEED_MS);
  }

  /** What arrived since the last feed, to both recognitions (each gets its own copy: they may queue it). */
  private feed(): void {
    if (this.written === this.fed) return;
    const chunk = this.pcm.slice(this.fed, this.written);
    this.fed = this.written;
    this.recognition?.write(chunk);
    this.check?.write(chunk);
  }

  /** The answer is complete: flush the engine and report what it heard. */
  private async conclude(): Promise<void> {
    if (this.done) return;
    this.release();
    this.feed();
    const rec = this.recognition;
    if (rec === null) return;
    const check = this.check;
    const checked = check ? check.end().catch(() => null) : Promise.resolve(null);
    let last: SpeechHypothesis | null;
    try {
      last = await rec.end();
    } catch (err) {
      check?.close();
      this.finish({ kind: 'unavailable', code: isSpeechError(err) ? err.code : 'SPEECH_ENGINE_FAILED', message: (err as Error).message });
      return;
    }
    const lastCheck = await checked;
    this.finish({ kind: 'heard', hypothesis: joined(this.finals, last), check: check ? joined(this.checkFinals, lastCheck) : null });
  }

  /** Stops listening (audio and timer); the recognition is ended or closed by the caller of this. */
  private release(): void {
    this.opts.audio.off('packet', this.onPacket);
    if (this.turnTimer !== null) this.opts.timers.clearTimeout(this.turnTimer);
    this.turnTimer = null;
    if (this.feedTimer !== null) this.opts.timers.clearTimeout(this.feedTimer);
    this.feedTimer = null;
  }

  private finish(r: CaptureResult): void {
    if (this.done) return;
    this.done = true;
    this.release();
    this.opts.log?.debug({ tag: this.opts.tag, result: r.kind }, 'speech turn done');
    this.opts.onResult(r);
  }
}

/** The utterances of one recognition as one hypothesis (text joined, confidence their mean). */
function joined(finals: readonly SpeechHypothesis[], last: SpeechHypothesis | null): SpeechHypothesis | null {
  const all = finals.length > 0 ? finals : last ? [last] : [];
  if (all.length === 0) return null;
  if (all.length === 1) return all[0];
  return {
    text: all.map((h) => h.text).filter((t) => t !== '').join(' '),
    confidence: all.reduce((sum, h) => sum + h.confidence, 0) / all.length,
    startMs: all[0].startMs,
    endMs: all[all.length - 1].endMs,
    words: all.flatMap((h) => h.words),
  };
}
