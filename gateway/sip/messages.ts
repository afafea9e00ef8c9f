import { randomBytes } from 'node:crypto';
import sip, { type NameAddr, type SipRequest, type SipResponse } from 'sip';
import { uriUser } from './identity';

/** Methods this trunk endpoint implements; the rest get 405 (known) or 501 (unknown). */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'INFO', 'UPDATE', 'REFER'] as const;
export const KNOWN_METHODS = new Set<string>([
  ...ALLOWED_METHODS,
  'REGISTER', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'REFER', 'MESSAGE', 'UPDATE',
]);
export const ALLOW_HEADER = ALLOWED_METHODS.join(', ');
/** Option tags we support (RFC 4028 session timers); listed in Supported and accepted in Require. */
export const SUPPORTED_OPTIONS = ['timer'] as const;
export const SUPPORTED_HEADER = SUPPORTED_OPTIONS.join(', ');

export function newTag(): string {
  return randomBytes(6).toString('hex');
}

/**
 * A response to `rq`. sip.makeResponse shares header objects with the request, so To is
 * copied before a tag is added: the request must stay as received for retransmission matching.
 */
export function respond(
  rq: SipRequest,
  status: number,
  reason: string,
  opts: { toTag?: string; headers?: Record<string, unknown>; content?: string } = {},
): SipResponse {
  const rs = sip.makeResponse(rq, status, reason, { headers: opts.headers, content: opts.content });
  rs.version = '2.0'; // we speak SIP/2.0 even to a request claiming another version (505)
  const to = rq.headers.to;
  rs.headers.to = { ...to, params: { ...to.params } };
  if (opts.toTag && !to.params.tag) rs.headers.to.params.tag = opts.toTag;
  return rs;
}

/** The URI of a Contact, To or From header as a string (sip.js may hand back either form). */
export function uriOf(addr: NameAddr | undefined): string {
  if (!addr) return '';
  return typeof addr.uri === 'string' ? addr.uri : sip.stringifyUri(addr.uri);
}

/** The user of a sip:, sips: or tel: URI, %-decoded, visual separators of numbers removed. */
export function userOf(addr: NameAddr | undefined): string | null {
  return uriUser(uriOf(addr));
}

export function displayNameOf(addr: NameAddr | undefined): string | null {
  const name = addr?.name?.trim();
  if (!name) return null;
  return name.startsWith('"') && name.endsWith('"') ? name.slice(1, -1) : name;
}

export function firstContact(rq: SipRequest): string | null {
  const c = rq.headers.contact;
  if (!Array.isArray(c) || c.length === 0) return null;
  return uriOf(c[0]);
}

export function headerString(rq: SipRequest, name: string): string | undefined {
  const v = rq.headers[name];
  return typeof v === 'string' ? v : undefined;
}
