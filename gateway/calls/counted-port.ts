import type { AudioPort } from '../../media';
type AudioListener = (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void;
type EventListener = (payload: Buffer, marker: boolean, timestamp: number) => void;

/**
 * A leg's audio port as the Call joins it: counts what the joint sends to the leg, for the
 * call-ended record (bridgedToCaller / bridgedToAgent). Per packet: one increment, no allocation.
 */
export class CountedPort implements AudioPort {
  private count = 0;
  /** A worker session counts for its whole life; this port counts from its join. */
  private readonly remoteBase: number;

  constructor(private readonly inner: AudioPort) {
    this.remoteBase = inner.remote?.jointSent ?? 0;
  }

  /** Frames sent to the leg (for a session on a media worker: the worker's count). */
  get sent(): number {
    return this.inner.remote ? this.inner.remote.jointSent - this.remoteBase : this.count;
  }

  get remote(): AudioPort['remote'] {
    return this.inner.remote;
  }

  sendAudio(payload: Buffer, marker: boolean, timestamp: number): void {
    this.count++;
    this.inner.sendAudio(payload, marker, timestamp);
  }

  sendTelephoneEvent(payload: Buffer, marker: boolean, timestamp: number): void {
    this.inner.sendTelephoneEvent?.(payload, marker, timestamp);
  }

  on(event: 'audio', listener: AudioListener): this;
  on(event: 'telephoneEvent', listener: EventListener): this;
  on(event: 'audio' | 'telephoneEvent', listener: AudioListener | EventListener): this {
    if (event === 'audio') this.inner.on('audio', listener as AudioListener);
    else this.inner.on('telephoneEvent', listener as EventListener);
    return this;
  }

  off(event: 'audio', listener: AudioListener): this;
  off(event: 'telephoneEvent', listener: EventListener): this;
  off(event: 'audio' | 'telephoneEvent', listener: AudioListener | EventListener): this {
    if (event === 'audio') this.inner.off('audio', listener as AudioListener);
    else this.inner.off('telephoneEvent', listener as EventListener);
    return this;
  }
}
