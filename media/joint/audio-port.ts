import type { AgentAudioLeg } from '../bridge/media-bridge';

/**
 * One participant's audio as the joint sees it: the AgentAudioLeg a MediaBridge already relays
 * (WebRtcLeg, RtpAudioLeg, RtpSessionPort). `sendTelephoneEvent`, where present, receives RFC 4733
 * packets relayed from an agent (the source's timestamp; the port keeps its own timeline).
 * Listeners get payloads that are only valid during the call: copy to keep.
 */
export interface AudioPort extends AgentAudioLeg {
  sendTelephoneEvent?(payload: Buffer, marker: boolean, timestamp: number): void;
}
