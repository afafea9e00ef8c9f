import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { SipRequest, SipResponse, Stack } from 'sip';
import { firstContact, newTag, respond } from './messages';
import { inDialogAddressing, recordRouteOf, type RouteEntry } from './route-set';

export type UacDialogState = 'calling' | 'early' | 'confirmed' | 'terminated';
export type UacEndReason = 'rejected' | 'cancelled' | 'remote-bye' | 'local-bye' | 'timeout' | 'shutdown';

export interface UacDialogEvents {
  /** 1xx from the callee (180 Ringing, 183). */
  progress: [status: number];
  /** 2xx: the call is up; the SDP answer is given. ACK has been sent. */
  answered: [sdp: string];
  /** A final non-2xx response (or 408 when nobody answered). */
  failed: [status: number, reason: string];
  terminated: [UacEndReason];
}

export interface OutboundTarget {
  /** The trunk peer (PBX) that places the call to the number. */
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
}

/**
 * The client side of one INVITE dialog: an outbound call through the PBX trunk (queued
 * callbacks, forwarded calls). ACKs 2xx itself (the `sip` package leaves that to the
 * application) and can CANCEL or BYE. RFC 3261 §12.1.2: the route set is the 2xx's Record-Route
 * reversed, the remote target its Contact; in-dialog requests carry them as Request-URI and Route
 * (loose or strict routing), and are sent to the trunk's outbound address (behind an SBC that is
 * the first route hop), never to an address taken from the wire.
 */
export class UacDialog extends EventEmitter<UacDialogEvents> {
  readonly callId = `${randomBytes(10).toString('hex')}@ccedge`;
  readonly localTag = newTag();
  private remoteTag = '';
  private remoteTarget: string;
  /** Empty until the 2xx: requests before it (CANCEL) follow the INVITE's path. */
  private routeSetValue: RouteEntry[] = [];
  private stateValue: UacDialogState = 'calling';
  private cseq = 1;
  private invite: SipRequest | undefined;
  private cancelRequested = false;

  constructor(
    private readonly stack: Stack,
    private readonly target: OutboundTarget,
    private readonly opts: { fromUser: string; toUser: string; localAddress: string; localPort: number; userAgent: string },
  ) {
    super();
    this.remoteTarget = this.requestUri();
  }

  get state(): UacDialogState {
    return this.stateValue;
  }

  get routeSet(): readonly RouteEntry[] {
    return this.routeSetValue;
  }

  /** The callee's Contact (where in-dialog requests are addressed; not where they are sent). */
  get remoteTargetUri(): string {
    return this.remoteTarget;
  }

  /** Sends the INVITE with our SDP offer. */
  start(sdp: string): void {
    const uri = this.requestUri();
    const rq: SipRequest = {
      method: 'INVITE',
      uri,
      version: '2.0',
      headers: {
        to: { uri, params: {} },
        from: { uri: `sip:${this.opts.fromUser}@${this.opts.localAddress}`, params: { tag: this.localTag } },
        'call-id': this.callId,
        cseq: { method: 'INVITE', seq: this.cseq },
        contact: [{ uri: this.contact(), params: {} }],
        via: [],
        route: this.route(),
        'max-forwards': 70,
        'content-type': 'application/sdp',
        'user-agent': this.opts.userAgent,
        allow: 'INVITE, ACK, BYE, CANCEL, OPTIONS, INFO',
      },
      content: sdp,
    };
    this.invite = rq;
    this.stack.send(rq, (rs) => this.onInviteResponse(rs));
  }

  /** Hangs up: CANCEL while ringing, BYE once answered. */
  hangup(reason: UacEndReason = 'local-bye'): void {
    if (this.stateValue === 'terminated') return;
    if (this.stateValue === 'calling' || this.stateValue === 'early') {
      this.cancelRequested = true;
      if (this.invite) {
        const inv = this.invite;
        const cancel: SipRequest = {
          method: 'CANCEL',
          uri: inv.uri,
          version: '2.0',
          headers: {
            to: inv.headers.to,
            from: inv.headers.from,
            'call-id': this.callId,
            cseq: { method: 'CANCEL', seq: inv.headers.cseq.seq },
            via: inv.headers.via.map((v) => ({ ...v, params: { ...v.params } })),
            route: this.route(),
            'max-forwards': 70,
          },
        };
        this.stack.send(cancel);
      }
      this.terminate('cancelled');
      return;
    }
    this.stack.send(this.inDialog('BYE'));
    this.terminate(reason);
  }

  /** Requests from the callee within this dialog (routed by the SIP server on our From tag). */
  onRequest(rq: SipRequest): void {
    if (rq.method === 'ACK') return;
    if (rq.method === 'BYE') {
      this.stack.send(respond(rq, 200, 'OK'));
      this.terminate('remote-bye');
      return;
    }
    if (rq.method === 'INVITE') {
      // A re-INVITE on a callback leg: keep the media as it is, answer with 488 (not supported yet).
      this.stack.send(respond(rq, 488, 'Not Acceptable Here'));
      return;
    }
    this.stack.send(respond(rq, this.stateValue === 'terminated' ? 481 : 200, this.stateValue === 'terminated' ? 'Call/Transaction Does Not Exist' : 'OK'));
  }

  private onInviteResponse(rs: SipResponse): void {
    if (rs.status < 200) {
      if (this.stateValue === 'calling' && rs.status > 100) this.stateValue = 'early';
      this.emit('progress', rs.status);
      return;
    }
    if (rs.status >= 300) {
      if (this.stateValue !== 'terminated') {
        this.emit('failed', rs.status, rs.reason);
        this.terminate(rs.status === 408 ? 'timeout' : 'rejected');
      }
      return;
    }
    // 2xx (also retransmissions): every one gets an ACK.
    if (this.stateValue !== 'confirmed') {
      // The first 2xx fixes the dialog: tag, remote target and route set (RFC 3261 §12.1.2).
      this.remoteTag = String(rs.headers.to.params.tag ?? '');
      const contact = Array.isArray(rs.headers.contact) && rs.headers.contact.length ? firstContact(rs as unknown as SipRequest) : null;
      if (contact && /^sips?:/i.test(contact)) this.remoteTarget = contact;
      const rr = recordRouteOf(rs.headers);
      // An unusable Record-Route is ignored: the trunk peer is reached directly as before.
      this.routeSetValue = rr.ok ? rr.routes.reverse() : [];
    }
    const ack = this.inDialog('ACK', rs.headers.cseq.seq);
    this.stack.send(ack);
    if (this.cancelRequested || this.stateValue === 'terminated') {
      // Answered after we gave up: end it at once.
      this.stack.send(this.inDialog('BYE'));
      return;
    }
    if (this.stateValue !== 'confirmed') {
      this.stateValue = 'confirmed';
      this.emit('answered', rs.content ?? '');
    }
  }

  private inDialog(method: 'ACK' | 'BYE', seq?: number): SipRequest {
    const inv = this.invite as SipRequest;
    const addressing = inDialogAddressing(this.routeSetValue, this.remoteTarget);
    return {
      method,
      uri: addressing.uri,
      version: '2.0',
      headers: {
        to: { uri: inv.headers.to.uri, params: { tag: this.remoteTag } },
        from: inv.headers.from,
        'call-id': this.callId,
        cseq: { method, seq: seq ?? ++this.cseq },
        via: [],
        route: [...this.route(), ...addressing.route],
        'max-forwards': 70,
        'user-agent': this.opts.userAgent,
      },
    };
  }

  /**
   * Everything goes to the trunk peer itself, whatever its Contact or Record-Route says: a first
   * Route to a flow URI makes sip.js send straight to that address (no DNS, and it works when the
   * PBX shares our IP); sip.js removes that entry, so the wire shows only the dialog's route set.
   */
  private route(): Array<{ uri: string; params: Record<string, string> }> {
    const flow = {
      protocol: this.target.transport.toUpperCase(),
      address: this.target.host,
      port: this.target.port,
      local: { address: this.opts.localAddress, port: this.opts.localPort },
    };
    return [{ uri: this.stack.encodeFlowUri(flow) as unknown as string, params: {} }];
  }

  private requestUri(): string {
    const t = this.target;
    return `sip:${this.opts.toUser}@${t.host}:${t.port}${t.transport === 'tcp' ? ';transport=tcp' : ''}`;
  }

  private contact(): string {
    return `sip:ccedge@${this.opts.localAddress}:${this.opts.localPort}${this.target.transport === 'tcp' ? ';transport=tcp' : ''}`;
  }

  private terminate(reason: UacEndReason): void {
    if (this.stateValue === 'terminated') return;
    this.stateValue = 'terminated';
    this.emit('terminated', reason);
    this.removeAllListeners();
  }
}
