import { EventEmitter } from 'node:events';
import type { AudioPort } from '../../joint/audio-port';
import { encodeFrame, type G711Codec } from '../../tones/g711';
import { Goertzel } from '../../tones/goertzel';
import type { MediaClock } from '../../tones/media-clock';

type PortEvents = {
  audio: [payload: Buffer, marker: boolean, timestamp: number, ssrc: number];
  telephoneEvent: [payload: Buffer, marker: boolean, timestamp: number];
};

/**
 * A participant for joint/mixer tests: talks its own tone (one G.711 frame per call to talk(),
 * phase-continuous, its own SSRC and timeline) and keeps everything the joint sends it.
 */
export class TonePort extends EventEmitter<PortEvents> implements AudioPort {
  readonly frames: Buffer[] = [];
  /** The Buffer objects as handed over (to tell relayed-untouched from re-encoded). */
  readonly rawFrames: Buffer[] = [];
  readonly timestamps: number[] = [];
  readonly markers: boolean[] = [];
  readonly events: Buffer[] = [];
  readonly sent = new Set<Buffer>();
  readonly ssrc = (Math.random() * 0x100000000) >>> 0;
  private ts = (Math.random() * 0x100000000) >>> 0;
  private n = 0;
  talking = true;
  /** Packets bigger than a tick's worth are paced by skipping ticks (30 ms: talk on 2 of 3 ticks). */
  private tickNo = 0;

  constructor(
    readonly name: string,
    readonly codec: G711Codec,
    readonly hz: number,
    readonly amplitude = 6000,
    readonly samplesPerPacket = 160,
  ) {
    super();
  }

  sendAudio(payload: Buffer, marker: boolean, timestamp: number): void {
    this.rawFrames.push(payload);
    this.frames.push(Buffer.from(payload));
    this.timestamps.push(timestamp);
    this.markers.push(marker);
  }

  sendTelephoneEvent(payload: Buffer): void {
    this.events.push(Buffer.from(payload));
  }

  /** Sends one packet of its tone (if talking). */
  talk(): void {
    if (!this.talking) return;
    const tick = this.tickNo++;
    if (this.samplesPerPacket > 160 && Math.floor(((tick + 1) * 160) / this.samplesPerPacket) === Math.floor((tick * 160) / this.samplesPerPacket)) return;
    const pcm = new Int16Array(this.samplesPerPacket);
    for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(this.amplitude * Math.sin((2 * Math.PI * this.hz * this.n++) / 8000));
    const frame = encodeFrame(this.codec, pcm);
    this.sent.add(frame);
    this.emit('audio', frame, false, this.ts, this.ssrc);
    this.ts = (this.ts + this.samplesPerPacket) >>> 0;
  }

  /** Index of the next frame it will receive: analyse from here after a change. */
  get mark(): number {
    return this.frames.length;
  }

  /** Share of power at `hz` in what it received from frame `from` (to `to`). */
  heard(hz: number, from: number, to = this.frames.length): number {
    const g = new Goertzel(hz);
    for (let i = from; i < to; i++) g.pushG711(this.frames[i], this.codec);
    return g.share;
  }
}

/** Resolves after `n` ticks of the clock (the talkers run on the same clock). */
export function ticks(clock: MediaClock, n: number): Promise<void> {
  return new Promise((resolve) => {
    let left = n;
    const off = clock.subscribe(() => {
      if (--left > 0) return;
      off();
      resolve();
    });
  });
}
