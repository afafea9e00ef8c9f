import type { RtpSession } from '../rtp/rtp-session';
import type { MediaClock } from '../tones/media-clock';
import { encodeRfc4733, type DtmfDigit } from './rfc4733';

const TONE_TICKS = 5; // 100 ms per digit
const END_REPEATS = 3; // RFC 4733 §2.5.1.4: the end packet is sent three times
const GAP_TICKS = 3; // 60 ms between digits
const SAMPLES_PER_TICK = 160;
/** A source id of our own so the session's timeline treats DTMF as one continuous stream. */
const DTMF_SOURCE = 0x44544d46;

/**
 * Sends digits to the SIP leg as RFC 4733 events, one packet per 20 ms clock tick: the start
 * packet with the marker bit, updates with growing duration, then the end packet three times.
 */
export class DtmfSender {
  private queue: DtmfDigit[] = [];
  private unsubscribe: (() => void) | undefined;
  private tick = 0;
  private sourceTs = 0;
  private eventTs = 0;

  constructor(
    private readonly clock: MediaClock,
    private readonly session: RtpSession,
  ) {}

  /** True while digits are being sent: the bridge holds back relayed audio meanwhile. */
  get active(): boolean {
    return this.unsubscribe !== undefined;
  }

  /** Queues digits; false if the remote did not negotiate telephone-event. */
  send(digits: string): boolean {
    if (this.session.telephoneEventPayloadType < 0) return false;
    for (const d of digits) this.queue.push(d as DtmfDigit);
    if (!this.unsubscribe) {
      this.tick = 0;
      this.unsubscribe = this.clock.subscribe(() => this.onTick());
    }
    return true;
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.queue = [];
  }

  private onTick(): void {
    this.sourceTs = (this.sourceTs + SAMPLES_PER_TICK) >>> 0;
    const digit = this.queue[0];
    if (digit === undefined) {
      this.stop();
      return;
    }
    const pt = this.session.telephoneEventPayloadType;
    const t = this.tick++;
    if (t === 0) this.eventTs = this.sourceTs;
    if (t < TONE_TICKS) {
      this.session.sendRelayed(encodeRfc4733(digit, (t + 1) * SAMPLES_PER_TICK, false), t === 0, DTMF_SOURCE, this.eventTs, pt);
    } else if (t < TONE_TICKS + END_REPEATS) {
      this.session.sendRelayed(encodeRfc4733(digit, TONE_TICKS * SAMPLES_PER_TICK, true), false, DTMF_SOURCE, this.eventTs, pt);
    } else if (t >= TONE_TICKS + END_REPEATS + GAP_TICKS - 1) {
      this.queue.shift();
      this.tick = 0;
    }
  }
}
