import type { SipRequest } from 'sip';
import type { CallerIdentity } from '../sip/identity';
import { userOf } from '../sip/messages';
import type { RoutingCall, SpeechRouting } from './intent';

/**
 * The routing view of an INVITE: From/To users and every string header (names lower-cased, as
 * sip.js gives them; a repeated header arrives joined with commas).
 */
export function routingCallFromInvite(callId: string, rq: SipRequest, ivrIntent?: string, identity?: CallerIdentity, ivrSpeech?: SpeechRouting): RoutingCall {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(rq.headers)) if (typeof v === 'string') headers[k.toLowerCase()] = v;
  // With an identity (trunks[].trustIdentity decided it) the caller is the asserted number.
  const call: RoutingCall = identity
    ? { callId, fromUser: identity.number, toUser: identity.called, originalCalled: identity.originalCalled, headers }
    : { callId, fromUser: userOf(rq.headers.from), toUser: userOf(rq.headers.to), headers };
  if (ivrIntent !== undefined) call.ivrIntent = ivrIntent;
  if (ivrIntent !== undefined && ivrSpeech !== undefined) call.ivrSpeech = ivrSpeech;
  return call;
}
