import { CodedError, codedErrorGuard } from '../../lib/coded-error';

/** Coded errors of the speech engines and the media fork. */
export type SpeechErrorCode =
  /** speech.engine.maxConcurrent recognitions already run. */
  | 'SPEECH_BUSY'
  /** The engine's binary or model is missing (e.g. pocketsphinx not installed). */
  | 'SPEECH_UNAVAILABLE'
  /** The engine process died or answered nonsense. */
  | 'SPEECH_ENGINE_FAILED'
  /** A grammar that cannot be built (no phrases, words not in the dictionary). */
  | 'SPEECH_GRAMMAR_INVALID'
  /** A fork endpoint refused, misbehaved or is not allowed. */
  | 'SPEECH_FORK_FAILED';

export class SpeechError extends CodedError<SpeechErrorCode> {}

export const isSpeechError = codedErrorGuard(SpeechError);
