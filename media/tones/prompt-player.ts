import type { RtpSession } from '../rtp/rtp-session';
import type { MediaClock } from './media-clock';
/** What the player needs of the session: one frame out per tick. */
export type FrameSink = Pick<RtpSession, 'sendPayload'>;
export type TickSource = Pick<MediaClock, 'subscribe'>;

/** A prompt's playback as the IVR drives it: here (PromptPlayer) or on the call's media worker. */
export interface PromptPlayback {
  start(): void;
  /** Barge-in: onEnd is not called. */
  stop(): void;
  readonly playing: boolean;
}

/**
 * Plays frames once, one per clock tick, then calls `onEnd`. Like TonePlayer (marker bit on the
 * first packet of the talkspurt) but one-shot, and stop() is barge-in: `onEnd` is not called.
 * A player is used for one playback; the IVR makes a new one per prompt.
 */
export class PromptPlayer implements PromptPlayback {
  private unsubscribe: (() => void) | null = null;
  private index = 0;
  private finished = false;

  constructor(
    private readonly clock: TickSource,
    private readonly sink: FrameSink,
    private readonly frames: readonly Buffer[],
    private readonly onEnd: () => void,
  ) {}

  /** Starts playing; a no-op if playing or already finished/stopped. */
  start(): void {
    if (this.unsubscribe !== null || this.finished) return;
    if (this.frames.length === 0) {
      this.finished = true;
      this.onEnd();
      return;
    }
    this.index = 0;
    this.unsubscribe = this.clock.subscribe(this.onTick);
  }

  /** Stops without calling onEnd. Harmless when not playing. */
  stop(): void {
    this.finished = true;
    this.release();
  }

  get playing(): boolean {
    return this.unsubscribe !== null;
  }

  /** Frames sent so far. */
  get sent(): number {
    return this.index;
  }

  private release(): void {
    if (this.unsubscribe === null) return;
    this.unsubscribe();
    this.unsubscribe = null;
  }

  private readonly onTick = (): void => {
    if (this.unsubscribe === null) return;
    this.sink.sendPayload(this.frames[this.index], this.index === 0);
    this.index++;
    if (this.index >= this.frames.length) {
      this.finished = true;
      this.release();
      this.onEnd();
    }
  };
}
