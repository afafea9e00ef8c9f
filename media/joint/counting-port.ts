import type { AudioPort } from './audio-port';

type AudioListener = (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void;
type EventListener = (payload: Buffer, marker: boolean, timestamp: number) => void;

/**
 * A joint member's port that counts the frames the joint hands it (the call record's bridgedTo…
 * counts), into `counter` (a worker's per-session slot) or its own. Per packet: one increment.
 */
export class CountingPort implements AudioPort {
  constructor(
    protected readonly inner: AudioPort,
    protected readonly counter: { jointSent: number } = { jointSent: 0 },
  ) {}

  get remote(): AudioPort['remote'] {
    return this.inner.remote;
  }

  sendAudio(payload: Buffer, marker: boolean, timestamp: number): void {
    this.counter.jointSent++;
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
