import type { SipRequest } from 'sip';
import { userOf } from '../sip/messages';
import type { RoutingCall } from './intent';

/**
 * The routing view of an INVITE: From/To users and every string header (names lower-cased, as
 * sip.js gives them; a repeated header arrives joined with commas).
 */
export function routingCallFromInvite(callId: string, rq: SipRequest, ivrIntent?: string): RoutingCall {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(rq.headers)) if (typeof v === 'string') headers[k.toLowerCase()] = v;
  const call: RoutingCall = { callId, fromUser: userOf(rq.headers.from), toUser: userOf(rq.headers.to), headers };
  if (ivrIntent !== undefined) call.ivrIntent = ivrIntent;
  return call;
}
