/**
 * RTP fixed header parse/write (RFC 3550 §5.1). Parsing runs on every received packet from an
 * untrusted network, so it validates lengths before every read and never throws.
 */
export interface RtpHeader {
  version: number;
  padding: boolean;
  extension: boolean;
  csrcCount: number;
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
}

export const RTP_HEADER_SIZE = 12;

/** Header plus where the payload lies in the buffer; filled in place by parseRtpInto. */
export interface RtpParseResult extends RtpHeader {
  payloadStart: number;
  payloadEnd: number;
}

export function newRtpParseResult(): RtpParseResult {
  return {
    version: 0, padding: false, extension: false, csrcCount: 0, marker: false,
    payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, payloadStart: 0, payloadEnd: 0,
  };
}

/**
 * Allocation-free variant for the receive path: fills `out` and returns false for anything that
 * is not a well-formed RTP v2 packet (`out` is then partially written and must be ignored).
 */
export function parseRtpInto(buf: Buffer, out: RtpParseResult, length = buf.length): boolean {
  // `length` < buf.length: the packet is a prefix (an SRTP packet decrypted in place, tag after it).
  if (length < RTP_HEADER_SIZE || length > buf.length) return false;
  const b0 = buf[0];
  const version = b0 >> 6;
  if (version !== 2) return false;
  const padding = (b0 & 0x20) !== 0;
  const extension = (b0 & 0x10) !== 0;
  const csrcCount = b0 & 0x0f;

  let offset = RTP_HEADER_SIZE + csrcCount * 4;
  if (offset > length) return false;
  if (extension) {
    // Extension header: 16-bit profile id, 16-bit length in 32-bit words (excluding itself).
    if (offset + 4 > length) return false;
    const words = buf.readUInt16BE(offset + 2);
    offset += 4 + words * 4;
    if (offset > length) return false;
  }
  let end = length;
  if (padding) {
    // The last octet counts the padding octets including itself; 0 is invalid (RFC 3550 §5.1).
    const padLen = buf[length - 1];
    if (padLen === 0 || end - padLen < offset) return false;
    end -= padLen;
  }
  const b1 = buf[1];
  out.version = version;
  out.padding = padding;
  out.extension = extension;
  out.csrcCount = csrcCount;
  out.marker = (b1 & 0x80) !== 0;
  out.payloadType = b1 & 0x7f;
  out.sequenceNumber = buf.readUInt16BE(2);
  out.timestamp = buf.readUInt32BE(4);
  out.ssrc = buf.readUInt32BE(8);
  out.payloadStart = offset;
  out.payloadEnd = end;
  return true;
}

/**
 * Returns null for anything that is not a well-formed RTP v2 packet. The payload is a view
 * (subarray) into `buf`, not a copy: callers that keep it must copy it.
 */
export function parseRtp(buf: Buffer): { header: RtpHeader; payload: Buffer } | null {
  const r = newRtpParseResult();
  if (!parseRtpInto(buf, r)) return null;
  const { payloadStart, payloadEnd, ...header } = r;
  return { header, payload: buf.subarray(payloadStart, payloadEnd) };
}

/** Writes a plain 12-byte header (no CSRC, extension or padding) at offset 0. */
export function writeRtpHeader(
  target: Buffer,
  h: { marker: boolean; payloadType: number; sequenceNumber: number; timestamp: number; ssrc: number },
): number {
  target[0] = 0x80;
  target[1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  target.writeUInt16BE(h.sequenceNumber & 0xffff, 2);
  // `>>> 0` keeps callers' wrap-around arithmetic from making writeUInt32BE throw a RangeError.
  target.writeUInt32BE(h.timestamp >>> 0, 4);
  target.writeUInt32BE(h.ssrc >>> 0, 8);
  return RTP_HEADER_SIZE;
}
