import sip, { type SipRequest } from 'sip';
import { KNOWN_METHODS, ALLOWED_METHODS, ALLOW_HEADER, SUPPORTED_OPTIONS, headerString } from './messages';

export interface Rejection {
  status: number;
  reason: string;
  headers?: Record<string, string>;
  /** Why, for the log line. */
  detail: string;
}

/** Option tags we implement; anything else in Require gets 420. */
const SUPPORTED_EXTENSIONS = new Set<string>(SUPPORTED_OPTIONS);
const MAX_CSEQ = 2 ** 31 - 1;

/**
 * Checks a request that sip.js managed to parse (messages it cannot parse never reach us).
 * Returns the error response to send, or null when the request is well-formed enough to handle.
 */
export function validateRequest(rq: SipRequest): Rejection | null {
  if (rq.version !== '2.0') return { status: 505, reason: 'Version Not Supported', detail: `SIP/${rq.version}` };

  if (/^tel:/i.test(rq.uri)) {
    // RFC 3966: a PBX may address the trunk by number alone; sip.js cannot parse tel: URIs.
    if (!/^tel:\+?[0-9*#A-Fa-f\-.()]{1,64}(;[!-~]{0,512})?$/i.test(rq.uri)) return { status: 400, reason: 'Bad Request-URI', detail: `Request-URI ${rq.uri.slice(0, 80)}` };
  } else if (!/^sips?:/i.test(rq.uri)) {
    return { status: 416, reason: 'Unsupported URI Scheme', detail: `Request-URI ${rq.uri.slice(0, 80)}` };
  } else if (!sip.parseUri(rq.uri)) return { status: 400, reason: 'Bad Request-URI', detail: `Request-URI ${rq.uri.slice(0, 80)}` };

  const cseq = rq.headers.cseq;
  if (!Number.isInteger(cseq.seq) || cseq.seq < 0 || cseq.seq > MAX_CSEQ) {
    return { status: 400, reason: 'Bad CSeq', detail: `CSeq number ${String(cseq.seq)}` };
  }
  if (cseq.method !== rq.method) {
    return { status: 400, reason: 'CSeq Method Mismatch', detail: `CSeq ${cseq.method} on ${rq.method}` };
  }
  for (const name of ['from', 'to'] as const) {
    const uri = rq.headers[name]?.uri;
    if (typeof uri !== 'string' || !/^[a-z][a-z0-9+.-]*:[^\s"<>]+$/i.test(uri)) {
      return { status: 400, reason: `Bad ${name === 'from' ? 'From' : 'To'} Header`, detail: `${name} URI ${String(uri).slice(0, 80)}` };
    }
  }
  // sip.js joins repeated single-value headers with commas; a Call-ID never contains one.
  if (/[\s,]/.test(rq.headers['call-id'])) return { status: 400, reason: 'Bad Call-ID', detail: 'repeated or malformed Call-ID' };

  const declared = rq.headers['content-length'];
  if (declared !== undefined) {
    if (!Number.isInteger(declared) || declared < 0) {
      return { status: 400, reason: 'Bad Content-Length', detail: `Content-Length ${String(declared)}` };
    }
    if (declared > (rq.content ?? '').length) {
      return { status: 400, reason: 'Content-Length Exceeds Body', detail: `declared ${declared}, got ${(rq.content ?? '').length}` };
    }
  }

  const maxForwards = rq.headers['max-forwards'];
  if (maxForwards !== undefined) {
    const mf = String(maxForwards).trim();
    // Only proxies act on Max-Forwards 0 (483); a UAS such as ours answers normally (RFC 4475 zeromf).
    if (!/^\d{1,6}$/.test(mf) || Number(mf) > 255) return { status: 400, reason: 'Bad Max-Forwards', detail: `Max-Forwards ${mf.slice(0, 20)}` };
  }

  if (!KNOWN_METHODS.has(rq.method)) {
    return { status: 501, reason: 'Not Implemented', headers: { Allow: ALLOW_HEADER }, detail: `method ${rq.method.slice(0, 32)}` };
  }
  // NOTIFY belongs to the subscription of a REFER we sent (RFC 3515): in a dialog only, where the
  // dialog answers it (481 if it has no such subscription). Not in Allow: we take no subscriptions.
  const inDialogNotify = rq.method === 'NOTIFY' && Boolean(rq.headers.to?.params?.tag);
  if (!inDialogNotify && !(ALLOWED_METHODS as readonly string[]).includes(rq.method)) {
    return { status: 405, reason: 'Method Not Allowed', headers: { Allow: ALLOW_HEADER }, detail: `method ${rq.method}` };
  }

  if (rq.method !== 'ACK' && rq.method !== 'CANCEL') {
    const require = headerString(rq, 'require');
    if (require) {
      const unsupported = require.split(',').map((t) => t.trim()).filter((t) => t && !SUPPORTED_EXTENSIONS.has(t));
      if (unsupported.length) {
        return { status: 420, reason: 'Bad Extension', headers: { Unsupported: unsupported.join(', ') }, detail: `Require ${require.slice(0, 80)}` };
      }
    }
  }

  if (rq.method === 'INVITE') {
    // Our 2xx carries SDP; a caller that cannot accept it gets 406 rather than a body it rejects.
    const accept = headerString(rq, 'accept');
    if (accept !== undefined && accept.trim() !== '' && !/(^|,)\s*(application\/sdp|application\/\*|\*\/\*)\s*(;|,|$)/i.test(accept)) {
      return { status: 406, reason: 'Not Acceptable', headers: { Warning: '399 ccedge "answers carry application/sdp"' }, detail: `Accept ${accept.slice(0, 60)}` };
    }
  }

  if (rq.method === 'INVITE' && rq.content) {
    const type = (headerString(rq, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/sdp') {
      return { status: 415, reason: 'Unsupported Media Type', headers: { Accept: 'application/sdp' }, detail: `Content-Type ${type.slice(0, 60) || '(none)'}` };
    }
  }
  return null;
}
