import type { RtpHeader } from '../rtp/packet';
import type { RtpSession } from '../rtp/rtp-session';
import type { AgentAudioLeg } from './media-bridge';

type AudioListener = (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void;

/**
 * A plain RTP leg on the far side of a MediaBridge (RTP↔RTP relay, e.g. a call forwarded to a
 * trunk number): the bridge sees it like an agent's WebRTC leg. Audio of the negotiated payload
 * type is passed through untouched; the bridge computes the wire timestamps. RFC 4733 from the
 * far end is consumed by the session's detector and not relayed. Per packet: no allocation.
 */
export class RtpAudioLeg implements AgentAudioLeg {
  private listener: AudioListener | null = null;

  constructor(
    private readonly rtp: RtpSession,
    private readonly payloadType: number,
  ) {}

  sendAudio(payload: Buffer, marker: boolean, timestamp: number): void {
    this.rtp.sendFrame(payload, marker, timestamp);
  }

  on(event: 'audio' | 'telephoneEvent', listener: AudioListener): this {
    if (event !== 'audio') return this;
    if (this.listener === null) this.rtp.on('packet', this.onPacket);
    this.listener = listener;
    return this;
  }

  off(event: 'audio' | 'telephoneEvent', listener: AudioListener): this {
    if (event !== 'audio' || this.listener !== listener) return this;
    this.listener = null;
    this.rtp.off('packet', this.onPacket);
    return this;
  }

  private readonly onPacket = (h: RtpHeader, payload: Buffer): void => {
    if (h.payloadType === this.payloadType) this.listener?.(payload, h.marker, h.timestamp, h.ssrc);
  };
}
