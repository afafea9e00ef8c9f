import type { Flow, SipRequest } from 'sip';
import { normaliseAddress } from '../net/addresses';
import { displayNameOf, uriOf, userOf } from '../sip/messages';
import type { CallRecord } from '../store/call-store';

/** The call record of an inbound INVITE, before anything has happened to it. */
export function inboundRecord(id: string, rq: SipRequest, flow: Flow, trunk: string): CallRecord {
  return {
    id,
    sipCallId: rq.headers['call-id'],
    trunk,
    direction: 'inbound',
    fromUri: uriOf(rq.headers.from),
    fromUser: userOf(rq.headers.from),
    fromName: displayNameOf(rq.headers.from),
    toUri: uriOf(rq.headers.to),
    toUser: userOf(rq.headers.to),
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
