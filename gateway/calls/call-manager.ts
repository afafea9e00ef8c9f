import { randomUUID } from 'node:crypto';
import { MediaError } from '../../media';
import type { MediaWorker, MediaWorkers, PortPool, RtpEndpoint } from '../../media';
import { RtpSession } from '../../media';
import { buildOffer, negotiateOffer, type NegotiatedAudio } from '../../media';
import type { Logger } from '../logging';
import { compileAllowList, type TrunkConfig } from '../config/schema';
import { advertisedAddress } from '../net/addresses';
import type { IncomingInvite, RejectedInvite, SipServerHandlers } from '../sip/sip-server';
import type { Flow, SipRequest } from 'sip';
import type { Acd } from '../acd/acd';
import { ForwardRules, type ForwardTarget } from '../routing/forward';
import { routingCallFromInvite } from '../routing/sip-call';
import { userOf } from '../sip/messages';
import { callerIdentity } from '../sip/identity';
import type { RouteDecision, Router } from '../routing/router';
import type { IvrResult } from '../ivr/ivr-session';
import { Call, sanitise, type CallDeps, type OutboundDialer } from './call';
import { OutboundLeg, type OutboundPlacer } from './legs/outbound-leg';
import { inboundRecord } from './inbound-record';

const allowLists = new WeakMap<TrunkConfig, ReturnType<typeof compileAllowList>>();

/**
 * trunks[].symmetricRtp: the RTP session may latch to a source whose address is in the trunk's
 * allow-list (media/ gets a predicate, not the config). Undefined: SDP address and port only.
 */
export function latchPredicate(trunk: TrunkConfig | undefined): ((address: string) => boolean) | undefined {
  if (!trunk?.symmetricRtp) return undefined;
  let list = allowLists.get(trunk);
  if (!list) {
    list = compileAllowList(trunk.allow);
    allowLists.set(trunk, list);
  }
  const allow = list;
  return (address) => allow.check(address, 'ipv4');
}

/** The trunk's allow-list when it may latch (symmetricRtp), for a session on a media worker. */
function latchList(trunk: TrunkConfig | undefined): string[] | null {
  return trunk?.symmetricRtp ? trunk.allow : null;
}

/** Where answered calls go (the agent desk). */
export interface Queueing {
  enqueue(call: Call, target: string | RouteDecision): boolean;
  requestCallback?(call: Call): Promise<boolean>;
  /** The call left the desk while going on (a REFER moved the caller elsewhere): free queue and agent. */
  release?(call: Call, cause: 'transferred'): void;
}

/** Media of a delayed-offer call until the ACK's answer: nothing to send to, nothing sent. */
function placeholderAudio(codec: NegotiatedAudio['codec']): NegotiatedAudio {
  return { codec, payloadType: codec === 'PCMU' ? 0 : 8, clockRate: 8000, remoteAddress: '0.0.0.0', remotePort: 9, remoteDirection: 'inactive', localDirection: 'inactive', ptime: 20, onHold: true };
}

/** Turns INVITEs into Calls, keeps the live set, and records calls that never got that far. */
export class CallManager implements SipServerHandlers {
  private readonly calls = new Map<string, Call>();
  private readonly log: Logger;

  /** Where answered calls go (the agent desk), and how their queue is chosen. */
  private queueing: Queueing | undefined;
  private routing: { router: Router; acd: Acd } | undefined;
  private forwardRules: ForwardRules;
  private forwardRulesOf: unknown;
  private placeOutbound: OutboundPlacer | undefined;
  private warnedUnwired = false;
  private warnedNoWorker = false;

  constructor(
    private readonly deps: CallDeps,
    private readonly pool: PortPool,
    logger: Logger,
    /** Media worker threads: every inbound call carries its media on one (least loaded at its INVITE). */
    private readonly workers?: MediaWorkers,
  ) {
    this.log = logger.child({ component: 'calls' });
    this.forwardRules = new ForwardRules(deps.config.routing.forward);
    this.forwardRulesOf = deps.config.routing.forward;
  }

  /**
   * How forwarded calls (routing.forward) are placed: the daemon passes
   * `(trunk, number) => sip.createOutbound(trunk, number)`. Until then forward rules are ignored.
   */
  placeOutboundWith(place: OutboundPlacer): void {
    this.placeOutbound = place;
  }

  /**
   * How a call's outbound legs are dialled (forward rules, REFER, callbacks, transfers): the
   * target trunk's outbound address, an RTP port from the pool. Undefined until wired.
   */
  get outboundDialer(): OutboundDialer | undefined {
    const place = this.placeOutbound;
    if (!place) return undefined;
    return (target, codec, log, media) =>
      OutboundLeg.open({
        pool: this.pool,
        host: this.deps.config.rtp.host,
        place,
        target,
        codec,
        userAgent: this.deps.config.sip.userAgent,
        log,
        latchAllowed: latchPredicate(this.deps.config.trunks.find((t) => t.name === target.trunk)),
        ...(media ? { media: { worker: media, latch: latchList(this.deps.config.trunks.find((t) => t.name === target.trunk)) } } : {}),
      });
  }

  get outboundWired(): boolean {
    return this.placeOutbound !== undefined;
  }

  routeAnsweredCallsTo(queueing: Queueing, routing?: { router: Router; acd: Acd }): void {
    this.queueing = queueing;
    this.routing = routing;
  }

  /** The live call with this id (not callbacks: the scheduler owns those). */
  get(callId: string): Call | undefined {
    return this.calls.get(callId);
  }

  get active(): number {
    return this.calls.size;
  }

  onInvite(invite: IncomingInvite): void {
    this.setupCall(invite).catch((err: unknown) => {
      this.log.error({ err, sipCallId: invite.dialog.callId }, 'call setup failed');
      invite.dialog.reject(500, 'Server Internal Error');
    });
  }

  onRejectedInvite(rejected: RejectedInvite): void {
    this.recordFailed(rejected.rq, rejected.flow, rejected.trunk, rejected.status, rejected.reason);
  }

  /** Ends every call (BYE to established ones) and waits up to `waitMs` for the BYEs' answers. */
  async closeAll(waitMs: number): Promise<void> {
    const hangups = [...this.calls.values()].map((call) => call.close('shutdown'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(hangups), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  private async setupCall(invite: IncomingInvite): Promise<void> {
    const { rq, dialog, trunk } = invite;
    const fail = (status: number, reason: string, why: string, code: string): void => {
      this.log.warn({ code, status, sipCallId: dialog.callId, detail: why }, `INVITE rejected: ${status} ${reason}`);
      this.deps.metrics.sipRejections.inc({ status: String(status), code });
      dialog.reject(status, reason, { warning: `399 ccedge "${sanitise(why)}"`, ...extra });
      this.recordFailed(rq, invite.flow, trunk, status, code);
    };
    let extra: Record<string, unknown> = {};
    const timer = dialog.initialTimer;
    if (timer.kind === 'reject') {
      // RFC 4028 §9: the PBX retries with at least our Min-SE.
      extra = { 'min-se': String(timer.minSe) };
      fail(422, 'Session Interval Too Small', `Session-Expires below sip.minSessionExpiresS (${timer.minSe} s)`, 'SIP_SESSION_INTERVAL_TOO_SMALL');
      return;
    }
    if (timer.kind === 'bad') {
      fail(400, 'Bad Session-Expires', timer.why, 'SIP_BAD_REQUEST');
      return;
    }
    const identity = callerIdentity(rq, trunk.trustIdentity);
    const forward = this.forwardTarget(rq);
    let route: RouteDecision | undefined;
    // With an IVR the caller's intent is known only after it: routing then runs on `routed`.
    const ivrOn = this.deps.ivr !== undefined;
    if (!forward && !ivrOn && this.routing?.router.enabled && this.queueing) {
      route = await this.routing.router.route(routingCallFromInvite(dialog.callId, rq, undefined, identity));
      for (const i of route.ignored) this.log.info({ sipCallId: dialog.callId, ...i }, 'routing step ignored');
      if (dialog.state !== 'early') return; // cancelled while routing
      if (this.routing.acd.placement(route.queue) === null) {
        fail(486, 'Busy Here', `queue ${route.queue} is full`, 'ACD_QUEUE_FULL');
        return;
      }
    }
    let rtp: RtpEndpoint;
    // A call's media goes to a worker thread for its whole life: relay, IVR prompts, hold, agents' legs.
    const worker = this.placeMedia();
    try {
      rtp = worker
        ? await worker.openSession({ pool: this.pool, host: this.deps.config.rtp.host, latch: latchList(trunk) })
        : await RtpSession.open({ pool: this.pool, host: this.deps.config.rtp.host, log: this.log, latchAllowed: latchPredicate(trunk) });
    } catch (e) {
      const code = e instanceof MediaError ? e.code : 'RTP_BIND_FAILED';
      fail(503, 'Service Unavailable', (e as Error).message, code);
      return;
    }
    if (dialog.state !== 'early') {
      rtp.close(); // cancelled while the socket was being bound
      return;
    }
    this.deps.metrics.rtpPortsInUse.set(this.pool.inUse);
    const localAddress = advertisedAddress({ publicAddress: this.deps.config.rtp.publicAddress, bound: this.deps.config.rtp.host, peer: invite.peerAddress });
    let negotiated: { answerSdp: string; audio: NegotiatedAudio };
    const codecs = trunk.codecs.filter((c) => this.deps.config.calls.codecs.includes(c));
    const delayedOffer = !rq.content;
    try {
      if (delayedOffer) {
        // Delayed offer (INVITE without SDP): our 200 carries the offer, the ACK the answer. Until
        // then the media is a placeholder on hold: nothing is sent, nothing queued.
        if (codecs.length === 0) throw new MediaError('SDP_NO_COMMON_CODEC', 'no codec of the trunk is allowed by calls.codecs');
        // Our delayed-offer SDP is plain RTP (SDES keys in an offer we make are not wired yet).
        if (trunk.srtp === 'required') throw new MediaError('SDP_SRTP_REQUIRED', 'delayed offer (INVITE without SDP) on a trunk with srtp: required is not supported');
        const offerSdp = buildOffer({ localAddress, localPort: rtp.localPort, sessionId: String(Date.now()), sessionVersion: 1, codecs, userAgent: this.deps.config.sip.userAgent });
        negotiated = { answerSdp: offerSdp, audio: placeholderAudio(codecs[0]) };
      } else {
        negotiated = negotiateOffer(rq.content ?? '', {
          localAddress,
          localPort: rtp.localPort,
          sessionId: String(Date.now()),
          sessionVersion: 1,
          codecs,
          userAgent: this.deps.config.sip.userAgent,
          srtp: trunk.srtp,
        });
      }
    } catch (e) {
      rtp.close();
      this.deps.metrics.rtpPortsInUse.set(this.pool.inUse);
      if (e instanceof MediaError && (e.code === 'SDP_NO_COMMON_CODEC' || e.code === 'SDP_ADDRESS_REFUSED' || e.code === 'SDP_SRTP_REQUIRED')) fail(488, 'Not Acceptable Here', e.message, e.code);
      else if (e instanceof MediaError) fail(400, 'Bad Request', `bad SDP: ${e.message}`, e.code);
      else throw e;
      return;
    }
    const call = new Call({ ...this.deps, dialOutbound: this.outboundDialer }, this.log, { inbound: { invite, rtp, localAddress, audio: negotiated.audio, answerSdp: negotiated.answerSdp, ...(worker ? { media: worker } : {}) } });
    if (delayedOffer) call.offerInAnswer(codecs);
    if (negotiated.audio.srtp) call.log.info({ suite: negotiated.audio.srtp.suite, transport: invite.flow.protocol.toUpperCase() }, 'SRTP (SDES) negotiated with the PBX');
    this.calls.set(call.id, call);
    call.on('released', (cause) => this.queueing?.release?.(call, cause));
    this.deps.metrics.callsActive.set(this.calls.size);
    call.once('closed', () => {
      this.calls.delete(call.id);
      this.deps.metrics.callsActive.set(this.calls.size);
      this.deps.metrics.rtpPortsInUse.set(this.pool.inUse);
    });
    const target = route ?? this.deps.config.calls.queue;
    if (forward) {
      call.forwardOnConfirm(forward);
    } else if (ivrOn && this.queueing) {
      call.once('routed', (result) => {
        this.enqueueAfterIvr(call, rq, result).catch((err: unknown) => call.log.error({ err }, 'routing after the IVR failed'));
      });
    } else if (target && this.queueing) {
      const queueing = this.queueing;
      call.once('confirmed', () => queueing.enqueue(call, target));
    }
    call.start();
  }

  /**
   * After the IVR: routing (when intents are configured) with the caller's choice as the IVR
   * step, else calls.queue. A callback choice queues the call (it keeps a place) and asks the
   * desk to call back. No queue at all: the caller keeps hearing the hold tone.
   */
  private async enqueueAfterIvr(call: Call, rq: SipRequest, result: IvrResult | null): Promise<void> {
    const queueing = this.queueing;
    if (!queueing || call.closed) return;
    let target: string | RouteDecision | undefined = this.deps.config.calls.queue;
    if (this.routing?.router.enabled) {
      const speech = result?.kind === 'intent' ? result.speech : undefined;
      const route = await this.routing.router.route(routingCallFromInvite(call.id, rq, call.ivrIntent, call.identity, speech && { text: speech.text, confidence: speech.confidence, how: speech.how }));
      for (const i of route.ignored) call.log.info({ ...i }, 'routing step ignored');
      if (call.closed) return;
      target = route;
    }
    if (target === undefined) return;
    if (!queueing.enqueue(call, target)) return; // queue full: the desk has ended the call
    if (result?.kind === 'callback' && queueing.requestCallback) await queueing.requestCallback(call);
  }

  /** The least loaded running media worker for a new call; none configured or running: undefined, the main thread carries it (logged once per outage). */
  placeMedia(): MediaWorker | undefined {
    if (!this.workers) return undefined;
    try {
      const w = this.workers.place();
      this.warnedNoWorker = false;
      return w;
    } catch (err) {
      if (!this.warnedNoWorker) this.log.error({ err, code: 'MEDIA_WORKER_LOST' }, 'no media worker running: calls use the main thread');
      this.warnedNoWorker = true;
      return undefined;
    }
  }

  /** The routing.forward rule for this INVITE's called number, if forwarding is wired. */
  private forwardTarget(rq: SipRequest): ForwardTarget | undefined {
    const rules = this.deps.config.routing.forward;
    if (rules !== this.forwardRulesOf) {
      // A config push from the cloud replaced the routing section.
      this.forwardRules = new ForwardRules(rules);
      this.forwardRulesOf = rules;
    }
    if (this.forwardRules.size === 0) return undefined;
    const target = this.forwardRules.match(userOf(rq.headers.to));
    if (target && !this.placeOutbound) {
      if (!this.warnedUnwired) this.log.warn({ rule: target.rule }, 'routing.forward matched but outbound calls are not wired: queueing the call instead');
      this.warnedUnwired = true;
      return undefined;
    }
    return target;
  }

  private recordFailed(rq: IncomingInvite['rq'], flow: Flow, trunk: TrunkConfig, status: number, cause: string): void {
    const now = new Date().toISOString();
    const record = { ...inboundRecord(randomUUID(), rq, flow, trunk.name, callerIdentity(rq, trunk.trustIdentity)), state: 'failed' as const, endedAt: now, endCause: cause, sipStatus: status };
    this.deps.store
      .create(record, 'call.rejected', { status, cause })
      .catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'call record write failed'));
    this.deps.metrics.callsTotal.inc({ outcome: `rejected-${status}` });
  }
}
