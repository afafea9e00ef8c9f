import { EventEmitter } from 'node:events';
import type { Flow, SipRequest, SipResponse, Stack } from 'sip';
import { ALLOW_HEADER, SUPPORTED_HEADER, firstContact, newTag, respond } from './messages';
import {
  allowsUpdate,
  expiryDelayMs,
  negotiateSessionTimer,
  parseSessionTimer,
  refreshDelayMs,
  sessionExpiresValue,
  type SessionTimerConfig,
  type SessionTimerNegotiation,
} from './session-timer';
import { asHeaderValues, inDialogAddressing, recordRouteOf, type RouteEntry } from './route-set';
import { CcedgeError } from '../errors';
import { OutgoingRefer, REFER_FINAL_TIMEOUT_MS, REFER_RESPONSE_TIMEOUT_MS, checkReferUri, readReferNotify, type ReferOptions } from './refer';

export type DialogState = 'early' | 'accepting' | 'confirmed' | 'terminated';
export type DialogEndReason = 'rejected' | 'cancelled' | 'remote-bye' | 'local-bye' | 'ack-timeout' | 'shutdown' | 'session-expired';

export interface UasDialogEvents {
  /** The ACK for our 2xx arrived: the call is up (the ACK carries the answer to an offer in our 2xx). */
  confirmed: [ack: SipRequest];
  /** Every ACK for a 2xx of ours (initial or re-INVITE), after `confirmed` for the first. */
  ack: [ack: SipRequest];
  /** REFER in the dialog: answer it with answer() and report with notifyRefer(). */
  refer: [SipRequest];
  /**
   * Progress of a REFER we sent (refer()), from the PBX's NOTIFYs: the sipfrag status of the
   * referred call. `final` once: a status ≥ 200, a terminating NOTIFY, or 408 when no final
   * NOTIFY came within the bound.
   */
  referProgress: [status: number, final: boolean];
  /** A NOTIFY we answered with an error (400 malformed, 481 no subscription, 489 wrong event): count and log it. */
  notifyRejected: [status: number, detail: string];
  /** The caller cancelled before we answered; 487 has been sent. */
  cancelled: [];
  /** The caller hung up; 200 to the BYE has been sent. */
  bye: [];
  /** A re-INVITE or an UPDATE with SDP (hold, unhold, new address): answer it with answerReinvite(). */
  reinvite: [SipRequest];
  /** SIP INFO within the dialog (e.g. application/dtmf-relay). 200 has been sent. */
  info: [SipRequest];
  /** The 2xx was retransmitted for 32 s and no ACK came. */
  ackTimeout: [];
  /** A session refresh of ours was answered 2xx (RFC 4028). */
  refreshed: [];
  /** The session timer ran out (no refresh from the peer, or ours failed): BYE with Reason sent. */
  sessionExpired: [];
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
  /** RFC 4028: the timer config, what the initial INVITE negotiated, and the running timer. */
  private readonly timerConfig: SessionTimerConfig;
  readonly initialTimer: SessionTimerNegotiation;
  private sessionTimer: { interval: number; weRefresh: boolean; timer: NodeJS.Timeout } | undefined;
  /** A peer's refresh (re-INVITE/UPDATE) being answered: applied when our 2xx goes out. */
  private pendingRefresh: { rq: SipRequest; negotiation: SessionTimerNegotiation } | undefined;
  /** The SDP of our last 2xx: a re-INVITE refresh offers it again unchanged (RFC 3264 §8). */
  private lastLocalSdp: string | undefined;
  private readonly peerAllowsUpdate: boolean;
  private refreshing = false;
  /** The REFER we sent and its implicit subscription (one at a time). */
  private outgoingRefer: OutgoingRefer | undefined;

  constructor(
    private readonly stack: Stack,
    readonly invite: SipRequest,
    readonly flow: Flow,
    private readonly localContact: string,
    private readonly userAgent: string,
    timerConfig: SessionTimerConfig = { minSessionExpiresS: 90, sessionExpiresS: 1800 },
  ) {
    super();
    this.callId = invite.headers['call-id'];
    this.remoteTag = String(invite.headers.from.params.tag ?? '');
    this.remoteCseq = invite.headers.cseq.seq;
    this.remoteTarget = firstContact(invite) ?? invite.headers.from.uri;
    this.timerConfig = timerConfig;
    this.initialTimer = negotiateSessionTimer(invite.headers, timerConfig);
    this.peerAllowsUpdate = allowsUpdate(invite.headers);
    const rr = recordRouteOf(invite.headers);
    this.routeSet = rr.ok ? rr.routes : [];
  }

  /** The peer's Contact (where in-dialog requests are addressed; not where they are sent). */
  get remoteTargetUri(): string {
    return this.remoteTarget;
  }

  /** The running session timer (undefined: none): the interval and whether we refresh. */
  get sessionTimerState(): { interval: number; weRefresh: boolean } | undefined {
    return this.sessionTimer ? { interval: this.sessionTimer.interval, weRefresh: this.sessionTimer.weRefresh } : undefined;
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
    this.sendReliable2xx(this.invite, sdp, this.timerHeaders(this.initialTimer));
    this.startSessionTimer(this.initialTimer, false);
  }

  /** Any final answer to an in-dialog request (REFER's 202 or 603, say). */
  answer(rq: SipRequest, status: number, reason: string, headers: Record<string, unknown> = {}): void {
    this.stack.send(respond(rq, status, reason, { toTag: this.localTag, headers: { ...this.commonHeaders(status < 300), ...headers } }));
  }

  /**
   * A NOTIFY for a REFER (RFC 3515): `sipfrag` is the status line of the referred call's progress
   * (`SIP/2.0 100 Trying`, `SIP/2.0 200 OK`); `final` ends the implicit subscription.
   */
  notifyRefer(referCseq: number, sipfrag: string, final: boolean): void {
    if (this.stateValue === 'terminated') return;
    this.sendInDialog('NOTIFY', {
      event: `refer;id=${referCseq}`,
      'subscription-state': final ? 'terminated;reason=noresource' : 'active;expires=60',
      'content-type': 'message/sipfrag;version=2.0',
      contact: [{ uri: this.localContact, params: {} }],
    }, `${sipfrag}\r\n`);
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
          this.emit('confirmed', rq);
        }
        if (this.stateValue === 'confirmed') this.emit('ack', rq);
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
      case 'UPDATE': {
        if (this.pending && rq.method === 'INVITE') {
          // RFC 3261 14.2: a re-INVITE while our previous 2xx is unacknowledged.
          this.stack.send(respond(rq, 500, 'Server Internal Error', { headers: { 'Retry-After': '2' } }));
          return;
        }
        // Every re-INVITE and UPDATE is a session refresh (RFC 4028 §9), with or without SDP.
        const negotiation = negotiateSessionTimer(rq.headers, this.timerConfig);
        if (negotiation.kind === 'reject') {
          this.stack.send(respond(rq, 422, 'Session Interval Too Small', { headers: { ...this.commonHeaders(false), 'min-se': String(negotiation.minSe) } }));
          return;
        }
        if (negotiation.kind === 'bad') {
          this.stack.send(respond(rq, 400, negotiation.why, { headers: this.commonHeaders(false) }));
          return;
        }
        // A re-INVITE or UPDATE is a target refresh (RFC 3261 §12.2.2, RFC 3311): its Contact is the
        // new remote target. The route set stays as established by the INVITE.
        this.refreshTarget(rq);
        if (rq.method === 'UPDATE' && !rq.content) {
          // RFC 3311 without an offer: a refresh only (RFC 4028 §7.4 prefers it to re-INVITE).
          this.stack.send(respond(rq, 200, 'OK', { headers: { ...this.commonHeaders(true), ...this.timerHeaders(negotiation) } }));
          this.startSessionTimer(negotiation, false);
          return;
        }
        this.pendingRefresh = { rq, negotiation };
        this.emit('reinvite', rq);
        return;
      }
      case 'REFER':
        if (this.listenerCount('refer') === 0) this.stack.send(respond(rq, 603, 'Decline', { headers: this.commonHeaders(false) }));
        else this.emit('refer', rq);
        return;
      case 'INFO':
        this.stack.send(respond(rq, 200, 'OK', { headers: this.commonHeaders(false) }));
        this.emit('info', rq);
        return;
      case 'NOTIFY':
        this.onNotify(rq);
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
    const refresh = this.pendingRefresh?.rq === rq ? this.pendingRefresh.negotiation : undefined;
    if (this.pendingRefresh?.rq === rq) this.pendingRefresh = undefined;
    if (!('sdp' in result)) {
      this.stack.send(respond(rq, result.status, result.reason, { headers: { ...this.commonHeaders(false), ...result.headers } }));
      return;
    }
    const timerHeaders = refresh ? this.timerHeaders(refresh) : {};
    if (rq.method === 'UPDATE') {
      // UPDATE is not an INVITE: its transaction retransmits our 200 and no ACK follows.
      this.lastLocalSdp = result.sdp;
      this.stack.send(respond(rq, 200, 'OK', { toTag: this.localTag, headers: { ...this.commonHeaders(true), ...timerHeaders, 'content-type': 'application/sdp' }, content: result.sdp }));
    } else {
      this.sendReliable2xx(rq, result.sdp, timerHeaders);
    }
    if (refresh) this.startSessionTimer(refresh, false);
  }

  /**
   * Hangs up from our side. Resolves with the BYE's final status (408 if the peer never answered).
   * `why` becomes a Reason header (RFC 3326), e.g. `SIP;cause=488;text="no usable SDP answer in ACK"`.
   */
  bye(reason: DialogEndReason = 'local-bye', why?: string): Promise<number> {
    if (this.stateValue === 'early') {
      this.reject(480, 'Temporarily Unavailable', why ? { reason: why } : {});
      return Promise.resolve(480);
    }
    if (this.stateValue === 'terminated') return Promise.resolve(0);
    this.terminate(reason);
    return new Promise((resolve) => {
      this.sendInDialog('BYE', why ? { reason: why } : {}, undefined, (rs) => {
        if (rs.status >= 200) resolve(rs.status);
      });
    });
  }

  /**
   * Asks the PBX to connect the caller to `targetUri` (RFC 3515 REFER, in this dialog, along its
   * route set). Resolves with the REFER's final status (202 accepted; 4xx-6xx refused; 408 no
   * answer). After a 2xx the PBX's NOTIFYs arrive as `referProgress` events; the last has
   * final=true (408 if none came within opts.finalTimeoutMs). One REFER at a time.
   */
  refer(targetUri: string, opts: ReferOptions = {}): Promise<number> {
    if (this.stateValue !== 'confirmed') return Promise.reject(new CcedgeError('SIP_DIALOG_NOT_CONFIRMED', `REFER needs a confirmed dialog (it is ${this.stateValue})`));
    if (this.outgoingRefer && !this.outgoingRefer.ended) return Promise.reject(new CcedgeError('SIP_REFER_PENDING', 'a REFER of ours is still running on this dialog'));
    let headers: Record<string, unknown>;
    try {
      headers = {
        'refer-to': { uri: checkReferUri(targetUri, 'target'), params: {} },
        ...(opts.referredBy === undefined ? {} : { 'referred-by': `<${checkReferUri(opts.referredBy, 'referredBy')}>` }),
        contact: [{ uri: this.localContact, params: {} }],
        allow: ALLOW_HEADER,
        supported: SUPPORTED_HEADER,
      };
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve) => {
      let settled = false;
      const settle = (status: number): void => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        if (status >= 300) this.outgoingRefer?.end();
        resolve(status);
      };
      // sip.js answers 408 itself after Timer F; this guard bounds even a stack that went away.
      const guard = setTimeout(() => settle(408), REFER_RESPONSE_TIMEOUT_MS);
      guard.unref();
      const seq = this.sendInDialog('REFER', headers, undefined, (rs) => {
        if (rs.status >= 200) settle(rs.status);
      });
      const refer = new OutgoingRefer(seq, opts.finalTimeoutMs ?? REFER_FINAL_TIMEOUT_MS, () => {
        refer.end();
        if (refer.finalReported || this.outgoingRefer !== refer) return;
        refer.finalReported = true;
        this.emit('referProgress', 408, true);
      });
      this.outgoingRefer = refer;
    });
  }

  /** A NOTIFY of the implicit subscription of our REFER (RFC 3515 §2.4.4): 200, then referProgress. */
  private onNotify(rq: SipRequest): void {
    const refer = this.outgoingRefer;
    const reject = (status: number, reason: string, detail: string): void => {
      this.stack.send(respond(rq, status, reason, { headers: this.commonHeaders(false) }));
      this.emit('notifyRejected', status, detail);
    };
    if (!refer || refer.ended) {
      reject(481, 'Subscription Does Not Exist', refer ? `NOTIFY after the REFER subscription ended` : 'NOTIFY without a REFER of ours');
      return;
    }
    const notify = readReferNotify(rq, refer.cseq);
    if (!notify.ok) {
      reject(notify.status, notify.status === 489 ? 'Bad Event' : 'Bad Request', notify.detail);
      return;
    }
    this.stack.send(respond(rq, 200, 'OK', { headers: this.commonHeaders(false) }));
    if (notify.terminated) refer.end();
    if (refer.finalReported) return;
    const final = notify.terminated || notify.status >= 200;
    if (final) refer.finalReported = true;
    this.emit('referProgress', notify.status, final);
  }

  /**
   * Every request we send in the dialog (BYE, NOTIFY, UPDATE, re-INVITE, REFER) is built here, so the
   * dialog's routing (today: the INVITE's flow) applies to all of them alike.
   */
  private sendInDialog(method: string, headers: Record<string, unknown>, content?: string, onResponse?: (rs: SipResponse) => void): number {
    const rq = this.newRequest(method, headers, content);
    this.stack.send(rq, onResponse ?? (() => undefined));
    return rq.headers.cseq.seq;
  }

  /**
   * A request within this dialog: the next local CSeq, swapped tags, and RFC 3261 §12.2.1.1
   * addressing from the route set and remote target. Its first Route is our flow URI, which makes
   * sip.js send over the INVITE's connection/source (the first route hop behind a proxy) and is
   * removed before sending.
   */
  newRequest(method: string, headers: Record<string, unknown> = {}, content?: string, seq?: number): SipRequest {
    const addressing = inDialogAddressing(this.routeSet, this.remoteTarget);
    return {
      method,
      uri: addressing.uri,
      version: '2.0',
      headers: {
        to: { ...this.invite.headers.from, params: { ...this.invite.headers.from.params } },
        from: { ...this.invite.headers.to, params: { ...this.invite.headers.to.params, tag: this.localTag } },
        'call-id': this.callId,
        cseq: { method, seq: seq ?? ++this.localCseq },
        via: [],
        route: [{ uri: this.stack.encodeFlowUri(this.flow) as unknown as string, params: {} }, ...addressing.route],
        'max-forwards': 70,
        'user-agent': this.userAgent,
        ...headers,
      },
      ...(content === undefined ? {} : { content }),
    };
  }

  /** Session-Expires (and Require: timer) for our 2xx, as negotiated. */
  private timerHeaders(n: SessionTimerNegotiation): Record<string, unknown> {
    if (n.kind !== 'timer') return {};
    const h: Record<string, unknown> = { 'session-expires': sessionExpiresValue(n.interval, n.refresher) };
    if (n.require) h.require = 'timer';
    return h;
  }

  /**
   * Runs the negotiated timer: as refresher we refresh at half the interval; otherwise the session
   * ends (BYE with Reason) when no refresh came by expiry minus min(32 s, interval/3).
   * `weSentIt`: the negotiation was of a refresh we sent, so `uac` means us.
   */
  private startSessionTimer(n: SessionTimerNegotiation | { kind: 'timer'; interval: number; refresher: 'uac' | 'uas' }, weSentIt: boolean): void {
    if (this.sessionTimer) clearTimeout(this.sessionTimer.timer);
    this.sessionTimer = undefined;
    if (n.kind !== 'timer' || this.stateValue === 'terminated') return;
    const weRefresh = (n.refresher === 'uac') === weSentIt;
    const timer = weRefresh
      ? setTimeout(() => this.refresh(), refreshDelayMs(n.interval))
      : setTimeout(() => void this.bye('session-expired', `SIP;cause=408;text="session timer expired: no refresh within ${n.interval} s"`), expiryDelayMs(n.interval));
    timer.unref();
    this.sessionTimer = { interval: n.interval, weRefresh, timer };
  }

  /** Our refresh: UPDATE without SDP if the peer allows it, else a re-INVITE offering our SDP unchanged. */
  private refresh(): void {
    const current = this.sessionTimer;
    if (!current || this.stateValue === 'terminated' || this.refreshing) return;
    if (this.stateValue !== 'confirmed' || this.pending) {
      // A 2xx still awaits its ACK: try again shortly rather than cross it.
      const retry = setTimeout(() => this.refresh(), 1000);
      retry.unref();
      this.sessionTimer = { ...current, timer: retry };
      return;
    }
    const useUpdate = this.peerAllowsUpdate || !this.lastLocalSdp;
    const headers: Record<string, unknown> = {
      'session-expires': sessionExpiresValue(current.interval, 'uac'),
      'min-se': String(this.timerConfig.minSessionExpiresS),
      supported: SUPPORTED_HEADER,
      contact: [{ uri: this.localContact, params: {} }],
      allow: ALLOW_HEADER,
    };
    if (!useUpdate) headers['content-type'] = 'application/sdp';
    this.refreshing = true;
    let seq = 0;
    let done = false;
    seq = this.sendInDialog(useUpdate ? 'UPDATE' : 'INVITE', headers, useUpdate ? undefined : this.lastLocalSdp, (rs) => {
      if (rs.status < 200) return;
      if (!useUpdate && rs.status < 300) {
        // Every 2xx to our INVITE (retransmissions too) gets an ACK; the core leaves that to us.
        this.sendAck(seq);
      }
      if (done) return;
      done = true;
      this.refreshing = false;
      this.onRefreshResponse(rs, current.interval);
    });
  }

  private sendAck(seq: number): void {
    // The ACK of our re-INVITE's 2xx carries that INVITE's CSeq number (RFC 3261 §13.2.2.4).
    const ack = this.newRequest('ACK', {}, undefined, seq);
    delete ack.headers['user-agent'];
    this.stack.send(ack);
  }

  private onRefreshResponse(rs: SipResponse, interval: number): void {
    if (this.stateValue === 'terminated') return;
    if (rs.status >= 200 && rs.status < 300) {
      // RFC 4028 §7.4: the 2xx's Session-Expires is what runs; none means no session timer.
      const t = parseSessionTimer(rs.headers);
      if ('bad' in t || t.expires === undefined) this.startSessionTimer({ kind: 'none' }, true);
      else this.startSessionTimer({ kind: 'timer', interval: t.expires, refresher: t.refresher ?? 'uac' }, true);
      this.emit('refreshed');
      return;
    }
    if (rs.status === 422) {
      const t = parseSessionTimer(rs.headers);
      const minSe = 'bad' in t ? 0 : t.minSe;
      if (minSe > interval && minSe <= 86_400) {
        this.sessionTimer = { interval: minSe, weRefresh: true, timer: setTimeout(() => this.refresh(), 0) };
        return;
      }
    }
    if (rs.status === 481 || rs.status === 408 || rs.status === 422) {
      // RFC 4028 §10 / RFC 3261 12.2.1.2: the dialog is gone for the peer.
      void this.bye('session-expired', `SIP;cause=${rs.status};text="session refresh failed: ${rs.status}"`);
      return;
    }
    // Anything else (491 glare, 500): the session stands; try again at half the interval.
    this.startSessionTimer({ kind: 'timer', interval, refresher: 'uac' }, true);
  }

  /** Forgets the dialog without signalling (daemon stop after BYEs were sent, or rejection). */
  terminate(reason: DialogEndReason): void {
    if (this.stateValue === 'terminated') return;
    // The state changes before any listener runs, so a listener that reacts by hanging up
    // sees a finished dialog and sends nothing more (no BYE after the caller's BYE, no 480 after 487).
    this.stateValue = 'terminated';
    this.stopRetransmitting();
    if (this.sessionTimer) clearTimeout(this.sessionTimer.timer);
    this.sessionTimer = undefined;
    this.outgoingRefer?.end();
    if (reason === 'remote-bye') this.emit('bye');
    else if (reason === 'cancelled') this.emit('cancelled');
    else if (reason === 'ack-timeout') this.emit('ackTimeout');
    else if (reason === 'session-expired') this.emit('sessionExpired');
    this.emit('terminated', reason);
    this.removeAllListeners();
  }

  private sendReliable2xx(rq: SipRequest, sdp: string, extraHeaders: Record<string, unknown> = {}): void {
    this.lastLocalSdp = sdp;
    const response = respond(rq, 200, 'OK', {
      toTag: this.localTag,
      headers: { ...this.commonHeaders(true), ...extraHeaders, ...this.recordRoute(rq), 'content-type': 'application/sdp' },
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
    const h: Record<string, unknown> = { 'user-agent': this.userAgent, allow: ALLOW_HEADER, supported: SUPPORTED_HEADER };
    if (withContact) h.contact = [{ uri: this.localContact, params: {} }];
    return h;
  }
}
