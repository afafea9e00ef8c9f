import { EventEmitter } from 'node:events';
import type { Flow, SipRequest, SipResponse, Stack } from 'sip';
import { firstContact, newTag, respond } from './messages';
import { asHeaderValues, inDialogAddressing, recordRouteOf, type RouteEntry } from './route-set';

export type DialogState = 'early' | 'accepting' | 'confirmed' | 'terminated';
export type DialogEndReason = 'rejected' | 'cancelled' | 'remote-bye' | 'local-bye' | 'ack-timeout' | 'shutdown';

export interface UasDialogEvents {
  /** The ACK for our 2xx arrived: the call is up. */
  confirmed: [];
  /** The caller cancelled before we answered; 487 has been sent. */
  cancelled: [];
  /** The caller hung up; 200 to the BYE has been sent. */
  bye: [];
  /** A re-INVITE (hold, unhold, new address): answer it with answerReinvite(). */
  reinvite: [SipRequest];
  /** SIP INFO within the dialog (e.g. application/dtmf-relay). 200 has been sent. */
  info: [SipRequest];
  /** The 2xx was retransmitted for 32 s and no ACK came. */
  ackTimeout: [];
  terminated: [DialogEndReason];
}

/** RFC 3261 timers for 2xx retransmission by the UAS core (the `sip` package leaves it to us). */
const T1 = 500;
const T2 = 4000;
const TIMER_H = 64 * T1;

interface Pending2xx {
  response: SipResponse;
  cseq: number;
  timer: NodeJS.Timeout | undefined;
  giveUp: NodeJS.Timeout;
}

/**
 * The server side of one INVITE dialog. Owns the to-tag, CSeq space and 2xx retransmission.
 * RFC 3261 §12: the route set is the INVITE's Record-Route (copied into our 18x/2xx), the remote
 * target the peer's Contact (refreshed by a re-INVITE); in-dialog requests carry them as
 * Request-URI and Route (loose or strict routing). They are *sent* over the flow the INVITE came
 * on (symmetric signalling; behind a proxy that is the first route hop), so a hostile Contact or
 * Record-Route can never make the appliance resolve names or contact third parties.
 */
export class UasDialog extends EventEmitter<UasDialogEvents> {
  readonly callId: string;
  readonly localTag = newTag();
  readonly remoteTag: string;
  private stateValue: DialogState = 'early';
  private localCseq = Math.floor(Math.random() * 10_000) + 1;
  private remoteCseq: number;
  private pending: Pending2xx | undefined;
  private remoteTarget: string;
  /** RFC 3261 §12.1.1: Record-Route of the INVITE, in order. SipServer refuses unusable ones (400). */
  readonly routeSet: readonly RouteEntry[];

  constructor(
    private readonly stack: Stack,
    readonly invite: SipRequest,
    readonly flow: Flow,
    private readonly localContact: string,
    private readonly userAgent: string,
  ) {
    super();
    this.callId = invite.headers['call-id'];
    this.remoteTag = String(invite.headers.from.params.tag ?? '');
    this.remoteCseq = invite.headers.cseq.seq;
    this.remoteTarget = firstContact(invite) ?? invite.headers.from.uri;
    const rr = recordRouteOf(invite.headers);
    this.routeSet = rr.ok ? rr.routes : [];
  }

  /** The peer's Contact (where in-dialog requests are addressed; not where they are sent). */
  get remoteTargetUri(): string {
    return this.remoteTarget;
  }

  get state(): DialogState {
    return this.stateValue;
  }

  get transport(): string {
    return this.flow.protocol.toUpperCase();
  }

  /** 1xx for the initial INVITE (100 carries no tag: it is hop-by-hop). */
  provisional(status: 100 | 180 | 183, reason: string): void {
    if (this.stateValue !== 'early') return;
    // 18x establishes the early dialog at the caller: it carries our Contact and the route set.
    const headers = status === 100 ? this.commonHeaders(false) : { ...this.commonHeaders(true), ...this.recordRoute(this.invite) };
    this.stack.send(respond(this.invite, status, reason, { toTag: status === 100 ? undefined : this.localTag, headers }));
  }

  /** Answers the INVITE with `sdp`; the 2xx is retransmitted until ACK or 32 s. */
  accept(sdp: string): void {
    if (this.stateValue !== 'early') return;
    this.stateValue = 'accepting';
    this.sendReliable2xx(this.invite, sdp);
  }

  reject(status: number, reason: string, headers: Record<string, unknown> = {}): void {
    if (this.stateValue !== 'early') return;
    this.stack.send(respond(this.invite, status, reason, { toTag: this.localTag, headers: { ...this.commonHeaders(false), ...headers } }));
    this.terminate('rejected');
  }

  /** Called by the SIP server for CANCEL matching our INVITE's transaction. */
  onCancel(cancel: SipRequest): void {
    this.stack.send(respond(cancel, 200, 'OK', { toTag: this.localTag }));
    if (this.stateValue !== 'early') return; // already answered: the CANCEL has no effect
    this.stack.send(respond(this.invite, 487, 'Request Terminated', { toTag: this.localTag, headers: this.commonHeaders(false) }));
    this.terminate('cancelled');
  }

  /** Called by the SIP server for every request carrying this dialog's Call-ID and our tag. */
  onRequest(rq: SipRequest): void {
    if (rq.method === 'ACK') {
      if (this.pending && rq.headers.cseq.seq === this.pending.cseq) {
        this.stopRetransmitting();
        if (this.stateValue === 'accepting') {
          this.stateValue = 'confirmed';
          this.emit('confirmed');
        }
      }
      return;
    }
    if (this.stateValue === 'terminated') {
      this.stack.send(respond(rq, 481, 'Call/Transaction Does Not Exist'));
      return;
    }
    if (rq.headers.cseq.seq <= this.remoteCseq && rq.method !== 'CANCEL') {
      this.stack.send(respond(rq, 500, 'Server Internal Error', { headers: { 'Retry-After': '1' } }));
      return;
    }
    this.remoteCseq = rq.headers.cseq.seq;
    switch (rq.method) {
      case 'BYE':
        this.stack.send(respond(rq, 200, 'OK', { headers: this.commonHeaders(false) }));
        this.terminate('remote-bye');
        return;
      case 'INVITE':
        if (this.pending) {
          // RFC 3261 14.2: a re-INVITE while our previous 2xx is unacknowledged.
          this.stack.send(respond(rq, 500, 'Server Internal Error', { headers: { 'Retry-After': '2' } }));
          return;
        }
        // A re-INVITE is a target refresh (RFC 3261 §12.2.2): its Contact is the new remote target.
        // The route set stays as established by the INVITE.
        this.refreshTarget(rq);
        this.emit('reinvite', rq);
        return;
      case 'INFO':
        this.stack.send(respond(rq, 200, 'OK', { headers: this.commonHeaders(false) }));
        this.emit('info', rq);
        return;
      case 'OPTIONS':
        this.stack.send(respond(rq, 200, 'OK', { headers: this.commonHeaders(false) }));
        return;
      default:
        this.stack.send(respond(rq, 405, 'Method Not Allowed', { headers: this.commonHeaders(false) }));
    }
  }

  /** Answers a re-INVITE: 200 with our SDP (retransmitted until ACK), or an error status. */
  answerReinvite(rq: SipRequest, result: { sdp: string } | { status: number; reason: string; headers?: Record<string, unknown> }): void {
    if (this.stateValue === 'terminated') return;
    if ('sdp' in result) this.sendReliable2xx(rq, result.sdp);
    else this.stack.send(respond(rq, result.status, result.reason, { headers: { ...this.commonHeaders(false), ...result.headers } }));
  }

  /** Hangs up from our side. Resolves with the BYE's final status (408 if the peer never answered). */
  bye(reason: DialogEndReason = 'local-bye'): Promise<number> {
    if (this.stateValue === 'early') {
      this.reject(480, 'Temporarily Unavailable');
      return Promise.resolve(480);
    }
    if (this.stateValue === 'terminated') return Promise.resolve(0);
    this.terminate(reason);
    const rq = this.newRequest('BYE');
    return new Promise((resolve) => {
      this.stack.send(rq, (rs) => {
        if (rs.status >= 200) resolve(rs.status);
      });
    });
  }

  /**
   * A request within this dialog (BYE; re-INVITE, UPDATE, INFO when we send them): the next local
   * CSeq, swapped tags, and RFC 3261 §12.2.1.1 addressing from the route set and remote target.
   * Pass it to the stack as is: its first Route is our flow URI, which makes sip.js send over the
   * INVITE's connection/source (the first route hop behind a proxy) and is removed before sending.
   */
  newRequest(method: string, headers: Record<string, unknown> = {}, content?: string): SipRequest {
    const addressing = inDialogAddressing(this.routeSet, this.remoteTarget);
    return {
      method,
      uri: addressing.uri,
      version: '2.0',
      headers: {
        to: { ...this.invite.headers.from, params: { ...this.invite.headers.from.params } },
        from: { ...this.invite.headers.to, params: { ...this.invite.headers.to.params, tag: this.localTag } },
        'call-id': this.callId,
        cseq: { method, seq: ++this.localCseq },
        via: [],
        route: [{ uri: this.stack.encodeFlowUri(this.flow) as unknown as string, params: {} }, ...addressing.route],
        'max-forwards': 70,
        'user-agent': this.userAgent,
        ...headers,
      },
      ...(content === undefined ? {} : { content }),
    };
  }

  /** Forgets the dialog without signalling (daemon stop after BYEs were sent, or rejection). */
  terminate(reason: DialogEndReason): void {
    if (this.stateValue === 'terminated') return;
    // The state changes before any listener runs, so a listener that reacts by hanging up
    // sees a finished dialog and sends nothing more (no BYE after the caller's BYE, no 480 after 487).
    this.stateValue = 'terminated';
    this.stopRetransmitting();
    if (reason === 'remote-bye') this.emit('bye');
    else if (reason === 'cancelled') this.emit('cancelled');
    else if (reason === 'ack-timeout') this.emit('ackTimeout');
    this.emit('terminated', reason);
    this.removeAllListeners();
  }

  private sendReliable2xx(rq: SipRequest, sdp: string): void {
    const response = respond(rq, 200, 'OK', {
      toTag: this.localTag,
      headers: { ...this.commonHeaders(true), ...this.recordRoute(rq), 'content-type': 'application/sdp' },
      content: sdp,
    });
    this.stopRetransmitting();
    const pending: Pending2xx = {
      response,
      cseq: rq.headers.cseq.seq,
      timer: undefined,
      giveUp: setTimeout(() => this.onAckTimeout(), TIMER_H),
    };
    this.pending = pending;
    this.stack.send(response);
    // Reliable transports deliver the 2xx; retransmission is for UDP (RFC 3261 13.3.1.4).
    if (this.transport === 'UDP') {
      const retransmit = (interval: number): void => {
        pending.timer = setTimeout(() => {
          if (this.pending !== pending) return;
          this.stack.send(pending.response);
          retransmit(Math.min(interval * 2, T2));
        }, interval);
      };
      retransmit(T1);
    }
  }

  private stopRetransmitting(): void {
    if (!this.pending) return;
    clearTimeout(this.pending.timer);
    clearTimeout(this.pending.giveUp);
    this.pending = undefined;
  }

  private onAckTimeout(): void {
    this.stopRetransmitting();
    if (this.stateValue === 'terminated') return;
    void this.bye('ack-timeout');
  }

  /**
   * Record-Route for a dialog-creating (or target refresh) response: the request's own values,
   * unchanged and in order (RFC 3261 §12.1.1). For the INVITE that is our route set.
   */
  private recordRoute(rq: SipRequest): Record<string, unknown> {
    const rr = rq === this.invite ? { ok: true as const, routes: this.routeSet } : recordRouteOf(rq.headers);
    return rr.ok && rr.routes.length ? { 'record-route': asHeaderValues(rr.routes) } : {};
  }

  private refreshTarget(rq: SipRequest): void {
    const contact = firstContact(rq);
    if (contact && /^sips?:/i.test(contact)) this.remoteTarget = contact;
  }

  private commonHeaders(withContact: boolean): Record<string, unknown> {
    const h: Record<string, unknown> = { 'user-agent': this.userAgent, allow: 'INVITE, ACK, BYE, CANCEL, OPTIONS, INFO' };
    if (withContact) h.contact = [{ uri: this.localContact, params: {} }];
    return h;
  }
}
