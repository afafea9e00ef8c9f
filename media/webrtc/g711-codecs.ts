import { RTCRtpCodecParameters } from 'werift';

export type G711 = 'PCMU' | 'PCMA';

/** RFC 3551 static payload types: browsers and PBXs agree on them without an rtpmap. */
export const G711_PAYLOAD_TYPE: Readonly<Record<G711, number>> = { PCMU: 0, PCMA: 8 };

/**
 * The dynamic PT we offer for RFC 4733. 101 is what PBXs and browsers conventionally use, so the
 * browser's answer keeps it and SIP-side DTMF relays without renumbering.
 */
export const TELEPHONE_EVENT_PAYLOAD_TYPE = 101;

/**
 * The codec list for one leg: the call's G.711 law only (we never transcode, so offering the other
 * law or Opus would let the browser pick something the SIP leg cannot carry) plus telephone-event.
 * werift ships a PCMU helper but none for PCMA, and its helper has no fixed PT, so both are built
 * here with the static PT set explicitly (werift requires that for static codecs).
 */
export function g711CodecParameters(codec: G711): RTCRtpCodecParameters[] {
  return [
    new RTCRtpCodecParameters({
      mimeType: `audio/${codec}`,
      clockRate: 8000,
      channels: 1,
      payloadType: G711_PAYLOAD_TYPE[codec],
      rtcpFeedback: [],
    }),
    new RTCRtpCodecParameters({
      mimeType: 'audio/telephone-event',
      clockRate: 8000,
      channels: 1,
      payloadType: TELEPHONE_EVENT_PAYLOAD_TYPE,
      // 0-15 are the DTMF digits, 16 is flash; what Chromium offers itself.
      parameters: '0-16',
      rtcpFeedback: [],
    }),
  ];
}
