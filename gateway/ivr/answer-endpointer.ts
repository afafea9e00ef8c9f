import type { EndpointerLimits, EndpointVerdict, FrameEndpointer } from './speech-capture';

/** Frame RMS above this (16-bit linear, ~-36 dBFS) is speech; telephone line noise sits far below. */
const SPEECH_RMS = 500;
/** Loud frames in a row that make a start (60 ms): a click or a key's thump is not an answer. */
const START_FRAMES = 3;
const FRAME_MS = 20;

/**
 * An energy end-pointer for one answer: speech starts after START_FRAMES loud frames, ends after
 * limits.silenceMs of quiet, is cut at limits.maxSpeechMs, and is no-input when nothing started
 * within limits.noInputMs. Pure: frames in, verdicts out (time is counted in frames).
 */
export class AnswerEndpointer implements FrameEndpointer {
  private frames = 0;
  private loudRun = 0;
  private quietRun = 0;
  private startedAt = -1;
  private ended = false;

  constructor(private readonly limits: EndpointerLimits) {}

  push(frame: Int16Array): EndpointVerdict {
    if (this.ended) return null;
    this.frames++;
    let sum = 0;
    for (let i = 0; i < frame.length; i++) sum += frame[i] * frame[i];
    const loud = frame.length > 0 && Math.sqrt(sum / frame.length) >= SPEECH_RMS;
    if (this.startedAt < 0) {
      this.loudRun = loud ? this.loudRun + 1 : 0;
      if (this.loudRun >= START_FRAMES) {
        this.startedAt = this.frames - START_FRAMES;
        return 'speech-start';
      }
      if (this.frames * FRAME_MS >= this.limits.noInputMs) return this.end('no-input');
      return null;
    }
    this.quietRun = loud ? 0 : this.quietRun + 1;
    if (this.quietRun * FRAME_MS >= this.limits.silenceMs) return this.end('speech-end');
    if ((this.frames - this.startedAt) * FRAME_MS >= this.limits.maxSpeechMs) return this.end('max-length');
    return null;
  }

  private end(v: Exclude<EndpointVerdict, null | 'speech-start'>): EndpointVerdict {
    this.ended = true;
    return v;
  }
}
