/**
 * The speech contract: what an on-site recognizer (the built-in pocketsphinx engine, a model a site
 * installs, an on-prem AudioHook server) gives the gateway. Nothing here downloads anything or sends
 * audio off the box. media/ never imports gateway/: the gateway's IVR, transcripts and fork wiring
 * program against these types.
 *
 * Audio in is 8 kHz 16-bit signed mono PCM (decoded G.711) in 20 ms frames of 160 samples; an engine
 * that needs 16 kHz upsamples itself. Times are milliseconds from the start of the audio the
 * recognition was given.
 */
import type { EventEmitter } from 'node:events';

export interface SpeechWord {
  word: string;
  startMs: number;
  endMs: number;
  /** 0..1 where the engine gives one. */
  confidence?: number;
}

export interface SpeechHypothesis {
  /** Lower-case words separated by single spaces; '' when nothing was recognised. */
  text: string;
  /** 0..1: the engine's posterior (pocketsphinx) or its own score, mapped to 0..1. */
  confidence: number;
  startMs: number;
  endMs: number;
  words: SpeechWord[];
}

/**
 * grammar: only the phrases of a JSGF grammar (plus fillers) can be recognised — keyword grade,
 * what intent routing uses. dictation: the engine's language model — what transcripts use.
 */
export type RecognitionMode = 'grammar' | 'dictation';

export interface RecognitionOptions {
  mode: RecognitionMode;
  /** JSGF text (mode grammar), e.g. from media/speech/jsgf.ts. */
  grammar?: string;
  /** For logs and counters: the call id or test name. */
  tag?: string;
}

export interface RecognitionEvents {
  /** An interim hypothesis (engines that have them; pocketsphinx's CLI has none). */
  partial: [SpeechHypothesis];
  /** One utterance decided (an engine may find several in a long stream). */
  final: [SpeechHypothesis];
  /** The engine failed (process died, bad grammar); no more events follow. */
  error: [Error];
}

/**
 * One stream of audio being recognised. write() never blocks and never throws: beyond the engine's
 * budget audio is dropped and counted. end() flushes and resolves with the last utterance (or null);
 * close() abandons it. Both are idempotent; the engine's process or worker is released by either.
 */
export interface Recognition extends EventEmitter<RecognitionEvents> {
  write(samples: Int16Array): void;
  end(): Promise<SpeechHypothesis | null>;
  close(): void;
}

export interface SpeechEngine {
  /** e.g. 'pocketsphinx'. */
  readonly name: string;
  /**
   * What was measured for this engine on this hardware, shown with every transcript so nobody takes
   * keyword-grade text for a verbatim record (e.g. 'keyword-grade: ~20 % WER on clean synthetic speech').
   */
  readonly quality: string;
  /** Recognitions running now, and the box's limit (speech.engine.maxConcurrent). */
  readonly active: number;
  readonly limit: number;
  /** Throws SpeechError SPEECH_BUSY at the limit, SPEECH_UNAVAILABLE when the engine cannot run. */
  recognize(opts: RecognitionOptions): Recognition;
  close(): Promise<void>;
}

/** Who spoke: AudioHook's external (the customer) and internal (the agent) channels. */
export type Speaker = 'caller' | 'agent';

/**
 * One utterance of a call's transcript, from the built-in engine or a fork endpoint. Text never
 * leaves the site; only numeric aggregates may (the sync policy decides).
 */
export interface TranscriptUtterance {
  callId: string;
  speaker: Speaker;
  /** ms from when the call was bridged (the agent's audio connected): the built-in transcriber and the fork start there. */
  startMs: number;
  endMs: number;
  text: string;
  confidence: number;
  /** 'builtin:pocketsphinx' or 'fork:<endpoint name>'. */
  source: string;
  /** AFINN-style score of this utterance (sentiment library), when computed. */
  sentiment?: number;
}

/** Where utterances go (gateway/transcripts implements it; the engine and the fork feed it). */
export interface TranscriptSink {
  utterance(u: TranscriptUtterance): void;
}
