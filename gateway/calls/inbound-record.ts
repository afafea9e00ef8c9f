import type { Flow, SipRequest } from 'sip';
import { normaliseAddress } from '../net/addresses';
import { callerIdentity, type CallerIdentity } from '../sip/identity';
import { uriOf } from '../sip/messages';
import type { CallRecord } from '../store/call-store';

/**
 * The call record of an inbound INVITE, before anything has happened to it. `fromUser` is the
 * caller as decided by `identity` (asserted identity on a trusting trunk, else From; tel: and
 * visual separators normalised); the untrusted default reads From only.
 */
export function inboundRecord(id: string, rq: SipRequest, flow: Flow, trunk: string, identity: CallerIdentity = callerIdentity(rq, false)): CallRecord {
  return {
    id,
    sipCallId: rq.headers['call-id'],
    trunk,
    direction: 'inbound',
    fromUri: uriOf(rq.headers.from),
    fromUser: identity.number,
    fromName: identity.name,
    toUri: uriOf(rq.headers.to),
    toUser: identity.called,
    callerSource: identity.source,
    assertedIdentity: identity.asserted,
    privacy: identity.privacy,
    originalCalled: identity.originalCalled,
    remoteAddr: `${normaliseAddress(flow.address)}:${flow.port}`,
    transport: flow.protocol.toUpperCase(),
    codec: null,
    state: 'ringing',
    createdAt: new Date().toISOString(),
    answeredAt: null,
    endedAt: null,
    endCause: null,
    sipStatus: null,
    dtmf: '',
    rtpLocalPort: null,
    rtpRemote: null,
    rtpPacketsSent: 0,
    rtpPacketsReceived: 0,
    rtpPacketsDropped: 0,
    queue: null,
    agent: null,
  };
}
