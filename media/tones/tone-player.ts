import type { MediaClock } from './media-clock';
import type { RtpSession } from '../rtp/rtp-session';

/**
 * Loops precomputed frames (tone or prompt) into an RTP session, one frame per clock tick.
 * The marker bit on the first packet tells the far end's jitter buffer a new talkspurt starts.
 */
export class TonePlayer {
  private unsubscribe: (() => void) | null = null;
  private index = 0;
  private marker = false;

  constructor(
    private readonly clock: MediaClock,
    private readonly session: RtpSession,
    private readonly frames: Buffer[],
  ) {
    if (frames.length === 0) throw new Error('TonePlayer needs at least one frame');
  }

  /** Starts from the first frame; a no-op if already playing. */
  start(): void {
    if (this.unsubscribe !== null) return;
    this.index = 0;
    this.marker = true;
    this.unsubscribe = this.clock.subscribe(this.onTick);
  }

  stop(): void {
    if (this.unsubscribe === null) return;
    this.unsubscribe();
    this.unsubscribe = null;
  }

  get playing(): boolean {
    return this.unsubscribe !== null;
  }

  private readonly onTick = (): void => {
    this.session.sendPayload(this.frames[this.index], this.marker);
    this.marker = false;
    this.index = (this.index + 1) % this.frames.length;
  };
}
