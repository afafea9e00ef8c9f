import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, type RTCRtpTransceiver } from 'werift';
import { pinIceToSite, siteIceConfig } from '../../webrtc/site-ice';

export interface ReceivedRtp {
  payloadType: number;
  payload: Buffer;
  marker: boolean;
  timestamp: number;
  ssrc: number;
}

/**
 * A plain werift peer that answers a WebRtcLeg's offer the way a browser would: it accepts both
 * G.711 laws and telephone-event, and receives through werift's ordinary track API (so the leg's
 * SSRC must match its a=ssrc lines). ICE is kept on loopback with the same site settings, so the
 * no-egress test judges the whole process.
 */
export class WeriftAnswerer {
  private seq = 1000;
  private readonly header = new RtpHeader();

  private constructor(
    readonly pc: RTCPeerConnection,
    private readonly transceiver: RTCRtpTransceiver,
    readonly answer: string,
    readonly received: ReceivedRtp[],
  ) {}

  static async answer(offer: string, opts: { telephoneEvent?: boolean; interfaces?: string[] } = {}): Promise<WeriftAnswerer> {
    const audio = [
      new RTCRtpCodecParameters({ mimeType: 'audio/PCMU', clockRate: 8000, channels: 1, payloadType: 0 }),
      new RTCRtpCodecParameters({ mimeType: 'audio/PCMA', clockRate: 8000, channels: 1, payloadType: 8 }),
    ];
    if (opts.telephoneEvent !== false) {
      audio.push(new RTCRtpCodecParameters({ mimeType: 'audio/telephone-event', clockRate: 8000, channels: 1, payloadType: 101, parameters: '0-16' }));
    }
    const pc = new RTCPeerConnection({
      ...siteIceConfig({ interfaces: opts.interfaces ?? ['127.0.0.1'] }),
      codecs: { audio, video: [] },
    });
    const received: ReceivedRtp[] = [];
    // Before setRemoteDescription: werift announces the remote track while applying the offer.
    pc.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        const h = rtp.header;
        received.push({ payloadType: h.payloadType, payload: Buffer.from(rtp.payload), marker: h.marker, timestamp: h.timestamp, ssrc: h.ssrc });
      });
    });
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    const transceiver = pc.getTransceivers()[0];
    pinIceToSite(transceiver);
    transceiver.setDirection('sendrecv');
    await pc.setLocalDescription(await pc.createAnswer());
    const sdp = pc.localDescription?.sdp;
    if (!sdp) throw new Error('werift produced no answer');
    return new WeriftAnswerer(pc, transceiver, sdp, received);
  }

  /** Sends one packet with the negotiated audio codec (werift's sender sets the PT). */
  sendAudio(payload: Buffer, timestamp: number, marker = false): void {
    const header = new RtpHeader({ sequenceNumber: this.seq++ & 0xffff, timestamp, marker });
    void this.transceiver.sender.sendRtp(new RtpPacket(header, payload));
  }

  /** Sends one packet with an explicit PT (telephone-event), bypassing the sender's PT rewrite. */
  sendRaw(payloadType: number, payload: Buffer, timestamp: number, marker = false): void {
    const h = this.header;
    h.payloadType = payloadType;
    h.sequenceNumber = this.seq++ & 0xffff;
    h.timestamp = timestamp;
    h.marker = marker;
    h.ssrc = this.transceiver.sender.ssrc;
    void this.transceiver.sender.dtlsTransport.sendRtp(payload, h);
  }

  get connectionState(): string {
    return this.pc.connectionState;
  }

  async waitConnected(timeoutMs = 10_000): Promise<void> {
    if (this.pc.connectionState === 'connected') return;
    await this.pc.connectionStateChange.watch((s) => s === 'connected', timeoutMs);
  }

  close(): Promise<void> {
    return this.pc.close();
  }
}
