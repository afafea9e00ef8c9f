import type { RtpHeader } from '../rtp/packet';
import type { RtpSession } from '../rtp/rtp-session';
import type { AudioPort } from './audio-port';

type AudioListener = (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void;

/** Source ids on the session's timeline: the joint's frames and an agent's RFC 4733 events. */
const JOINT_SOURCE = 0x4a4f4e54;
const AGENT_DTMF_SOURCE = 0x41475444;

/**
 * An RtpSession (the caller's, or an outbound leg's) as a joint participant. Frames go out through
 * the session's own timeline (sendRelayed with one constant source id), so the session's SSRC,
 * sequence and timestamps stay continuous across relay↔mix switches and with whatever else the
 * session sends itself (hold tone, prompts, DTMF). While `dtmf.active` (the gateway is sending
 * digits on this session) joint audio is held back, so digits and audio never interleave. RFC 4733 received
 * here is left to the session's own detector. Per packet: no allocation.
 */
export class RtpSessionPort implements AudioPort {
  private listener: AudioListener | null = null;

  constructor(
    private readonly rtp: RtpSession,
    private readonly payloadType: number,
    private readonly dtmf?: { readonly active: boolean },
  ) {}

  sendAudio(payload: Buffer, marker: boolean, timestamp: number): void {
    if (this.dtmf?.active === true) return;
    this.rtp.sendRelayed(payload, marker, JOINT_SOURCE, timestamp);
  }

  sendTelephoneEvent(payload: Buffer, marker: boolean, timestamp: number): void {
    const pt = this.rtp.telephoneEventPayloadType;
    if (pt < 0) return;
    this.rtp.sendRelayed(payload, marker, AGENT_DTMF_SOURCE, timestamp, pt);
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
