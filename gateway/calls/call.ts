import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { SipRequest } from 'sip';
import { MediaBridge } from '../../media/bridge/media-bridge';
import { DtmfSender } from '../../media/dtmf/dtmf-sender';
import type { DtmfDigitEvent } from '../../media/dtmf/rfc4733';
import type { WebRtcLeg, WebRtcLegState } from '../../media/webrtc/webrtc-leg';
import type { Recorder } from '../../media/recorder/recorder';
import type { RecordingWriter } from '../../media/vault/vault';
import { CallRecording } from '../recording/call-recording';
import { MediaError } from '../../media/errors';
import type { RtpSession } from '../../media/rtp/rtp-session';
import { buildOffer, negotiateOffer, type NegotiatedAudio } from '../../media/sdp/negotiate';
import type { MediaClock } from '../../media/tones/media-clock';
import { TonePlayer } from '../../media/tones/tone-player';
import type { DeskCall } from '../agents/desk-call';
import type { CodecName, Config } from '../config/schema';
import type { IvrConfig } from '../ivr/config';
import { IvrSession, type IvrResult } from '../ivr/ivr-session';
import type { PromptSource } from '../ivr/prompts';
import { parseInfoDtmf } from '../ivr/sip-info-dtmf';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import type { IncomingInvite } from '../sip/sip-server';
import { uriOf } from '../sip/messages';
import { callerIdentity, uriUser, type CallerIdentity } from '../sip/identity';
import type { UasDialog } from '../sip/uas-dialog';
import type { CallRecord, CallStore } from '../store/call-store';
import type { ForwardLeg } from './forward-leg';
import { inboundRecord } from './inbound-record';

export interface CallDeps {
  config: Config;
  store: CallStore;
  metrics: Metrics;
  clock: MediaClock;
  holdFrames: Record<CodecName, Buffer[]>;
  /** Set when config.ivr is: the IVR runs on every confirmed call before it is queued. */
  ivr?: { config: IvrConfig; prompts: PromptSource };
}

export type CallEndCause =
  | 'caller-hangup'
  | 'caller-cancelled'
  | 'max-duration'
  | 'ack-timeout'
  | 'rtp-timeout'
  | 'shutdown'
  | 'internal-error'
  | 'agent-hangup'
  | 'agent-lost'
  | 'agent-logout'
  | 'media-failed'
  | 'callback-requested'
  | 'callback-failed'
  | 'queue-full'
  /** A live change removed the call's queue and configured nowhere for its callers to go. */
  | 'queue-removed'
  /** Forwarded to a trunk number: the far end did not answer, refused, or could not be dialled. */
  | 'forward-failed'
  /** Forwarded to a trunk number: the far end hung up. */
  | 'forward-hangup'
  /** Delayed offer: the ACK carried no usable SDP answer to the offer in our 200 (or a re-INVITE's). */
  | 'no-sdp-answer'
  /** RFC 4028: the PBX did not refresh the session in time, or refused our refresh. */
  | 'session-expired';

/**
 * One inbound call: owns its SIP dialog, RTP session, tone player and timers, and closes them
 * all in close(). Every state change is written to the store with its event.
 */
export interface CallEvents {
  /** The caller's ACK arrived: the call is up (the desk queues it). */
  confirmed: [];
  /** The agent's WebRTC leg is connected and bridged to the caller. */
  agentConnected: [agentName: string];
  /** A DTMF digit from the caller (RFC 4733 or SIP INFO). */
  dtmf: [digit: string];
  /**
   * The call is ready to be queued: right after `confirmed` without an IVR (null), or when the
   * IVR decided (intent, callback, or abandoned for no-input / max-duration / error). Not
   * emitted when the caller hangs up during the IVR.
   */
  routed: [result: IvrResult | null];
  /**
   * The agent (or queue) no longer has the call, though it goes on: the PBX's REFER moved the
   * caller to another number (`transferred`). The desk treats it like the end of the call.
   */
  released: [cause: 'transferred'];
  closed: [cause: CallEndCause];
  /**
   * The agent's WebRTC leg failed before it ever connected (ICE/DTLS timeout). Only emitted when
   * someone listens (the desk re-queues the caller); without a listener the call ends media-failed.
   */
  agentMediaFailed: [agentName: string];
}

export class Call extends EventEmitter<CallEvents> implements DeskCall {
  readonly id = randomUUID();
  readonly log: Logger;
  private readonly dialog: UasDialog;
  private audio: NegotiatedAudio;
  private player: TonePlayer;
  private sessionVersion = 1;
  private readonly sessionId = String(Date.now());
  private dtmf = '';
  private closedCause: CallEndCause | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** First foreign RTP source, until its one warn line is written (see onForeignMedia). */
  private foreignPending: string | undefined;
  /** Foreign packets already added to the metric. */
  private foreignCounted = 0;
  private readonly dtmfSender: DtmfSender;
  private agentLeg: WebRtcLeg | undefined;
  private agentName: string | undefined;
  private bridge: MediaBridge | undefined;
  private readonly recording = new CallRecording({
    record: (type, data) => this.record(type, data),
    // Written straight to the store: the call may have closed meanwhile.
    stored: (data) => this.deps.store.update(this.id, {}, 'recording.stored', data),
    failed: (err) => this.log.error({ err, code: 'VAULT_WRITE_FAILED' }, 'recording could not be finalised'),
  });
  private ivr: IvrSession | undefined;
  private ivrResultValue: IvrResult | null = null;
  private forwardOpener: (() => Promise<ForwardLeg>) | undefined;
  private forwardLeg: ForwardLeg | undefined;
  /** trunks[].acceptRefer: places the outbound leg to a REFER's target (set by the CallManager). */
  private referOpener: ((number: string) => Promise<ForwardLeg>) | undefined;
  private referring = false;
  private referRefused = false;
  /** Delayed offer (INVITE without SDP): the codecs of our offer until the ACK brings the answer. */
  private awaitingAnswer: { codecs: NegotiatedAudio['codec'][]; cseq: number; initial: boolean } | undefined;
  /** Reason header (RFC 3326) of the BYE close() sends, when the cause has one. */
  private byeReason: string | undefined;
  readonly identity: CallerIdentity;

  constructor(
    private readonly invite: IncomingInvite,
    private readonly rtp: RtpSession,
    private readonly localAddress: string,
    audio: NegotiatedAudio,
    private readonly answerSdp: string,
    private readonly deps: CallDeps,
    log: Logger,
  ) {
    super();
    this.dialog = invite.dialog;
    this.audio = audio;
    this.log = log.child({ callId: this.id, sipCallId: this.dialog.callId });
    this.player = new TonePlayer(deps.clock, rtp, deps.holdFrames[audio.codec]);
    this.dtmfSender = new DtmfSender(deps.clock, rtp);
    this.identity = callerIdentity(invite.rq, invite.trunk.trustIdentity);
  }

  /**
   * Delayed offer (RFC 3261 13.2.1, Cisco CUCM's default): `answerSdp` given to the constructor is
   * our offer (the 200 carries it) and `audio` a placeholder; the call is queued or bridged only
   * once the ACK's answer is known. Call before start().
   */
  offerInAnswer(codecs: NegotiatedAudio['codec'][]): void {
    this.awaitingAnswer = { codecs, cseq: this.invite.rq.headers.cseq.seq, initial: true };
  }

  /** trunks[].acceptRefer: how a REFER's target is dialled. Unset: REFER is declined (603). */
  referWith(open: (number: string) => Promise<ForwardLeg>): void {
    this.referOpener = open;
  }

  get codec(): NegotiatedAudio['codec'] {
    return this.audio.codec;
  }

  /**
   * The caller: number (asserted identity when the trunk trusts it, else From user) and display
   * name, for routing, callbacks and records. `private`: the agent's page shows "Private" instead.
   */
  get caller(): { number: string; name: string | null; private: boolean } {
    return { number: this.identity.number ?? uriOf(this.invite.rq.headers.from), name: this.identity.name, private: this.identity.privacy !== null };
  }

  get agent(): string | undefined {
    return this.agentName;
  }

  /** The number the caller dialled (To user), for the agent's caller context. */
  get called(): string | null {
    return this.identity.called;
  }

  get isHeld(): boolean {
    return this.bridge?.isHeld ?? false;
  }

  get isMuted(): boolean {
    return this.bridge?.isMuted ?? false;
  }

  /** An event in the call's record (queue and agent milestones), with optional column changes. */
  record(type: string, data: Record<string, unknown> = {}, changes: { queue?: string; agent?: string } = {}): void {
    if (this.closed) return;
    this.persist(this.deps.store.update(this.id, changes, type, data));
  }

  /**
   * Gives the call an agent's WebRTC leg. The caller keeps hearing the hold tone until the leg
   * connects; then the bridge relays audio both ways. A failed leg ends the call.
   */
  attachAgent(agentName: string, leg: WebRtcLeg): void {
    if (this.closed) {
      void leg.close();
      return;
    }
    this.agentLeg = leg;
    this.agentName = agentName;
    leg.on('state', (state: WebRtcLegState) => {
      if (state === 'connected') this.onAgentConnected(agentName, leg);
      else if (state === 'failed' && this.agentLeg === leg) {
        // Never bridged: the caller still hears the hold tone and can go back to the queue.
        if (!this.bridge && !this.closed && this.listenerCount('agentMediaFailed') > 0) this.emit('agentMediaFailed', agentName);
        else void this.close('media-failed');
      }
    });
  }

  /**
   * Takes back the agent's leg before it was bridged (its media failed): the leg is closed, the
   * caller keeps hearing the hold tone, and another agent can be attached. False once bridged.
   */
  detachAgent(): boolean {
    if (this.bridge || this.closed) return false;
    const leg = this.agentLeg;
    this.agentLeg = undefined;
    this.agentName = undefined;
    void leg?.close();
    if (!this.audio.onHold) this.player.start();
    return true;
  }

  attachRecording(recorder: Recorder, writer: RecordingWriter): void {
    this.recording.attach(recorder, writer, this.closed ? undefined : this.bridge);
  }

  get recordingState(): { active: boolean; paused: boolean } {
    return this.recording.state;
  }

  setRecordingPaused(on: boolean, actor: string, reason: string): boolean {
    return !this.closed && this.recording.setPaused(on, actor, reason);
  }

  /** Ends the recording (call end, low disk, write failure); the call itself goes on. */
  stopRecording(cause: string): void {
    this.recording.stop(cause);
  }

  /** Agent hold: the caller hears the hold tone, nothing is relayed either way. */
  setHold(on: boolean): void {
    if (!this.bridge || this.closed) return;
    this.bridge.setHold(on);
    if (on) this.player.start();
    else this.player.stop();
    this.record(on ? 'call.agent-hold' : 'call.agent-unhold');
  }

  setMute(on: boolean): void {
    if (!this.bridge || this.closed) return;
    this.bridge.setMute(on);
    this.record(on ? 'call.agent-mute' : 'call.agent-unmute');
  }

  /** Digits from the agent's dial pad, sent to the caller's leg as RFC 4733; false if not negotiated. */
  sendDtmf(digits: string): boolean {
    if (this.closed) return false;
    return this.dtmfSender.send(digits);
  }

  get closed(): boolean {
    return this.closedCause !== undefined;
  }

  /** What the IVR decided (null: no IVR, or not finished yet). */
  get ivrResult(): IvrResult | null {
    return this.ivrResultValue;
  }

  /** The intent the caller chose in the IVR (routingCallFromInvite's ivrIntent). */
  get ivrIntent(): string | undefined {
    return this.ivrResultValue?.kind === 'intent' ? this.ivrResultValue.intent : undefined;
  }

  /**
   * Call before start(): once the caller's ACK arrives, the call is not queued (no IVR either) but
   * forwarded — `open` places the outbound leg, the caller hears the hold tone while it rings, and
   * the two RTP legs are bridged when the far end answers. BYE on either side ends both.
   */
  forwardOnConfirm(open: () => Promise<ForwardLeg>): void {
    this.forwardOpener = open;
  }

  /** Records the call, wires events and answers (after the trunk's ring time, if any). */
  start(): void {
    const rq = this.invite.rq;
    const delayed = this.awaitingAnswer !== undefined;
    const record: CallRecord = {
      ...inboundRecord(this.id, rq, this.invite.flow, this.invite.trunk.name, this.identity),
      codec: delayed ? null : this.audio.codec,
      rtpLocalPort: this.rtp.localPort,
      rtpRemote: delayed ? null : `${this.audio.remoteAddress}:${this.audio.remotePort}`,
    };
    this.persist(this.deps.store.create(record, 'call.offered', { from: record.fromUri, to: record.toUri, trunk: record.trunk, ...identityEventData(this.identity), ...(delayed ? { delayedOffer: true } : {}) }));
    this.log.info({ from: record.fromUri, to: record.toUri, trunk: record.trunk, codec: delayed ? null : this.audio.codec, transport: record.transport, delayedOffer: delayed, callerSource: this.identity.source }, 'call offered');

    this.dialog.on('confirmed', (ack) => this.onConfirmed(ack));
    this.dialog.on('ack', (ack) => this.onReofferAck(ack));
    this.dialog.on('reinvite', (re) => this.onReinvite(re));
    this.dialog.on('refer', (re) => this.onRefer(re));
    this.dialog.on('terminated', (reason) => {
      if (reason === 'cancelled') void this.close('caller-cancelled', 487);
      else if (reason === 'ack-timeout') void this.close('ack-timeout');
      else if (reason === 'remote-bye') void this.close('caller-hangup');
      else if (reason === 'session-expired') void this.close('session-expired');
      else void this.close(reason === 'shutdown' ? 'shutdown' : 'internal-error');
    });
    this.rtp.on('dtmf', (ev) => this.onDtmf(ev));
    this.dialog.on('info', (info) => this.onInfo(info));
    this.rtp.on('error', (err) => this.log.warn({ err }, 'RTP socket error'));
    this.rtp.once('foreign', (address, port) => this.onForeignMedia(address, port));
    this.rtp.once('latched', (address, port) => {
      this.deps.metrics.rtpLatched.inc();
      this.log.info({ source: `${address}:${port}`, sdp: `${this.audio.remoteAddress}:${this.audio.remotePort}`, trunk: this.invite.trunk.name }, 'RTP latched to a source other than the SDP (trunk symmetricRtp)');
    });
    this.applyRemote();

    const delay = this.invite.trunk.answerDelayMs;
    if (delay > 0) {
      this.dialog.provisional(180, 'Ringing');
      this.timers.push(setTimeout(() => this.answer(), delay));
    } else {
      this.answer();
    }
  }

  /** Ends the call: BYE if it is still up, media and timers released, record closed. */
  close(cause: CallEndCause, sipStatus?: number): Promise<void> {
    if (this.closedCause) return Promise.resolve();
    // Before closedCause is set, so that its `call.ivr-done` (abandoned, closed) is still recorded.
    this.ivr?.close();
    this.closedCause = cause;
    for (const t of this.timers) clearTimeout(t);
    this.player.stop();
    this.dtmfSender.stop();
    this.stopRecording('call-ended');
    this.bridge?.stop();
    if (this.agentLeg) void this.agentLeg.close();
    const forwarded = this.forwardLeg?.stats;
    this.forwardLeg?.close(cause === 'shutdown');
    let hangup: Promise<void> = Promise.resolve();
    if (this.dialog.state !== 'terminated') {
      if (this.dialog.state === 'early') sipStatus ??= 480;
      hangup = this.dialog.bye(cause === 'shutdown' ? 'shutdown' : 'local-bye', this.byeReason).then(() => undefined);
    }
    const stats = this.rtp.stats;
    this.reportForeignMedia();
    this.rtp.close();
    this.deps.metrics.rtpPackets.inc({ direction: 'sent' }, stats.packetsSent);
    this.deps.metrics.rtpPackets.inc({ direction: 'received' }, stats.packetsReceived);
    this.deps.metrics.callsTotal.inc({ outcome: cause });
    this.persist(
      this.deps.store.update(
        this.id,
        {
          state: 'ended',
          endedAt: new Date().toISOString(),
          endCause: cause,
          sipStatus,
          rtpPacketsSent: stats.packetsSent,
          rtpPacketsReceived: stats.packetsReceived,
          rtpPacketsDropped: stats.packetsDropped,
        },
        'call.ended',
        {
          cause,
          packetsSent: stats.packetsSent,
          packetsReceived: stats.packetsReceived,
          ...(this.bridge ? { bridgedToAgent: this.bridge.stats.toAgent, bridgedToCaller: this.bridge.stats.toCaller } : {}),
          ...(forwarded ? { forwardPacketsSent: forwarded.packetsSent, forwardPacketsReceived: forwarded.packetsReceived } : {}),
        },
      ),
    );
    this.log.info({ cause, rtp: stats }, 'call ended');
    this.emit('closed', cause);
    this.removeAllListeners();
    return hangup;
  }

  private answer(): void {
    if (this.closed) return;
    this.dialog.accept(this.answerSdp);
    const maxMs = this.deps.config.calls.maxDurationS * 1000;
    this.timers.push(setTimeout(() => void this.close('max-duration'), maxMs));
    this.persist(this.deps.store.update(this.id, { state: 'answered', answeredAt: new Date().toISOString(), sipStatus: 200 }, 'call.answered'));
    this.log.info('call answered');
  }

  private onConfirmed(ack?: SipRequest): void {
    if (this.awaitingAnswer?.initial) {
      // Delayed offer: nothing is queued, played or bridged before the ACK's answer is applied.
      if (!this.applyAckAnswer(ack, false)) return;
    }
    this.persist(this.deps.store.update(this.id, {}, 'call.confirmed'));
    this.startRtpWatch();
    const forward = this.forwardOpener;
    if (forward) {
      if (!this.audio.onHold) this.player.start();
      this.emit('confirmed');
      if (!this.closed) void this.startForward(forward);
      return;
    }
    if (this.deps.ivr) {
      this.emit('confirmed');
      if (!this.closed) this.startIvr(this.deps.ivr);
      return;
    }
    // The caller hears the hold tone until an agent is bridged in.
    if (!this.audio.onHold) this.player.start();
    this.emit('confirmed');
    if (!this.closed) this.emit('routed', null);
  }

  /** The IVR talks to the caller (prompts on our RTP session) instead of the hold tone. */
  private startIvr(ivr: NonNullable<CallDeps['ivr']>): void {
    const session = new IvrSession({ config: ivr.config, prompts: ivr.prompts, clock: this.deps.clock, rtp: this.rtp, codec: this.audio.codec, log: this.log });
    this.ivr = session;
    session.once('done', (result) => this.onIvrDone(result));
    this.record('call.ivr-started', { menu: ivr.config.entry });
    void session.start();
  }

  private onIvrDone(result: IvrResult): void {
    this.ivr = undefined;
    this.ivrResultValue = result;
    this.record('call.ivr-done', ivrEventData(result));
    if (this.closed || (result.kind === 'abandoned' && result.reason === 'closed')) return;
    if (!this.audio.onHold && !this.bridge) this.player.start();
    this.emit('routed', result);
  }

  private onAgentConnected(agentName: string, leg: WebRtcLeg): void {
    if (this.closed || this.bridge) return;
    this.player.stop();
    this.bridge = new MediaBridge(this.rtp, leg, this.audio.payloadType, this.dtmfSender);
    this.bridge.start();
    this.record('call.agent-connected', { agent: agentName }, { agent: agentName });
    this.log.info({ agent: agentName }, 'agent connected: caller and agent bridged');
    this.emit('agentConnected', agentName);
  }

  private async startForward(open: () => Promise<ForwardLeg>): Promise<void> {
    let leg: ForwardLeg;
    try {
      leg = await open();
    } catch (err) {
      this.log.warn({ err, code: (err as { code?: string }).code }, 'forward leg could not be placed');
      void this.close('forward-failed');
      return;
    }
    if (this.closed) {
      leg.close();
      return;
    }
    this.forwardLeg = leg;
    leg.on('answered', (far) => {
      if (this.closed || this.bridge) return;
      this.player.stop();
      this.bridge = new MediaBridge(this.rtp, far, this.audio.payloadType, this.dtmfSender);
      this.bridge.start();
      this.record('call.forward-connected', { sipCallId: leg.sipCallId });
      this.log.info({ remote: leg.remote }, 'forwarded call answered: RTP legs bridged');
    });
    leg.on('failed', (status, reason) => {
      this.record('call.forward-failed', { status, reason });
      this.log.info({ status, reason }, 'forwarded call not answered');
      void this.close('forward-failed');
    });
    leg.on('ended', () => void this.close('forward-hangup'));
    this.record('call.forward-dialing', { trunk: leg.target.trunk, number: leg.target.number, rule: leg.target.rule, sipCallId: leg.sipCallId, remote: leg.remote, rtpLocalPort: leg.localPort });
    leg.dial();
  }

  private onReinvite(rq: SipRequest): void {
    if (!rq.content) {
      // No offer in the re-INVITE: our 200 carries a new offer, the answer comes in the ACK.
      const codecs = [this.audio.codec, ...this.invite.trunk.codecs.filter((c) => c !== this.audio.codec && this.deps.config.calls.codecs.includes(c))];
      const offer = buildOffer({
        localAddress: this.localAddress,
        localPort: this.rtp.localPort,
        sessionId: this.sessionId,
        sessionVersion: ++this.sessionVersion,
        codecs,
        userAgent: this.deps.config.sip.userAgent,
      });
      this.awaitingAnswer = { codecs, cseq: rq.headers.cseq.seq, initial: false };
      this.dialog.answerReinvite(rq, { sdp: offer });
      return;
    }
    try {
      const { answerSdp, audio } = negotiateOffer(rq.content, {
        localAddress: this.localAddress,
        localPort: this.rtp.localPort,
        sessionId: this.sessionId,
        sessionVersion: ++this.sessionVersion,
        codecs: this.invite.trunk.codecs,
        userAgent: this.deps.config.sip.userAgent,
        reoffer: true,
        srtp: this.invite.trunk.srtp,
        // Our SRTP key stays for the whole call; only the PBX may re-key in a re-offer.
        localKeySalt: this.audio.srtp?.localKeySalt,
      });
      this.dialog.answerReinvite(rq, { sdp: answerSdp });
      this.adoptAudio(audio);
    } catch (e) {
      const status = e instanceof MediaError && (e.code === 'SDP_NO_COMMON_CODEC' || e.code === 'SDP_ADDRESS_REFUSED' || e.code === 'SDP_SRTP_REQUIRED') ? 488 : 400;
      this.log.warn({ err: e, code: e instanceof MediaError ? e.code : 'SIP_BAD_REQUEST' }, `${rq.method === 'UPDATE' ? 'UPDATE' : 're-INVITE'} offer rejected`);
      this.sessionVersion--;
      this.dialog.answerReinvite(rq, {
        status,
        reason: status === 488 ? 'Not Acceptable Here' : 'Bad Request',
        headers: { warning: `399 ccedge "${sanitise((e as Error).message)}"` },
      });
    }
  }

  /** New media from a re-offer or an answer: address, codec, hold and resume. */
  private adoptAudio(audio: NegotiatedAudio): void {
    const wasOnHold = this.audio.onHold;
    const codecChanged = audio.codec !== this.audio.codec;
    this.audio = audio;
    this.applyRemote();
    if (codecChanged) {
      this.player.stop();
      this.player = new TonePlayer(this.deps.clock, this.rtp, this.deps.holdFrames[audio.codec]);
      this.ivr?.setCodec(audio.codec);
    }
    if (audio.onHold && !wasOnHold) {
      this.player.stop();
      this.bridge?.setHold(true);
      this.persist(this.deps.store.update(this.id, {}, 'call.held', { direction: audio.remoteDirection }));
      this.log.info({ direction: audio.remoteDirection }, 'call put on hold by the PBX');
    } else if (!audio.onHold && (wasOnHold || codecChanged)) {
      if (this.bridge) this.bridge.setHold(false);
      else if (this.dialog.state === 'confirmed' && !this.ivr) this.player.start();
      this.persist(this.deps.store.update(this.id, {}, 'call.resumed'));
      this.log.info('call resumed by the PBX');
    }
  }

  /**
   * The answer to an offer we put in a 200 (delayed offer, or a re-INVITE without SDP), from the
   * ACK. No usable answer: BYE with a Reason header and `no-sdp-answer`. Returns whether it applied.
   */
  private applyAckAnswer(ack: SipRequest | undefined, reoffer: boolean): boolean {
    const pending = this.awaitingAnswer;
    this.awaitingAnswer = undefined;
    if (!pending) return true;
    let audio: NegotiatedAudio;
    try {
      const type = String(ack?.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (!ack?.content) throw new MediaError('SDP_INVALID', 'the ACK carries no SDP answer');
      if (type !== 'application/sdp') throw new MediaError('SDP_INVALID', `the ACK's body is ${type.slice(0, 40) || 'untyped'}, not application/sdp`);
      // The answer is read with the offer parser: it yields the address, port and codec chosen.
      audio = negotiateOffer(ack.content, { localAddress: this.localAddress, localPort: this.rtp.localPort, sessionId: this.sessionId, sessionVersion: this.sessionVersion, codecs: pending.codecs, reoffer }).audio;
    } catch (e) {
      const why = e instanceof MediaError ? e.message : 'unparseable SDP answer';
      this.log.warn({ code: e instanceof MediaError ? e.code : 'SDP_INVALID', detail: why, initial: pending.initial }, 'no usable SDP answer in the ACK: ending the call');
      this.deps.metrics.sipRejections.inc({ status: '488', code: 'SDP_ANSWER_MISSING' });
      this.byeReason = `SIP;cause=488;text="no usable SDP answer in ACK: ${sanitise(why).slice(0, 80)}"`;
      this.record('call.sdp-answer-failed', { reason: why.slice(0, 120) });
      void this.close('no-sdp-answer');
      return false;
    }
    if (pending.initial) {
      this.audio = audio;
      this.player.stop();
      this.player = new TonePlayer(this.deps.clock, this.rtp, this.deps.holdFrames[audio.codec]);
      this.applyRemote();
      this.persist(this.deps.store.update(this.id, { codec: audio.codec, rtpRemote: `${audio.remoteAddress}:${audio.remotePort}` }, 'call.media-answered', { codec: audio.codec }));
      this.log.info({ codec: audio.codec, remote: `${audio.remoteAddress}:${audio.remotePort}` }, 'delayed offer: SDP answer from the ACK applied');
    } else {
      this.adoptAudio(audio);
    }
    return true;
  }

  /** ACKs after the first: one for a re-INVITE whose 200 carried our offer brings the answer. */
  private onReofferAck(ack: SipRequest): void {
    const pending = this.awaitingAnswer;
    if (!pending || pending.initial || ack.headers.cseq.seq !== pending.cseq || this.closed) return;
    this.applyAckAnswer(ack, true);
  }

  /**
   * calls.rtpTimeoutS: a confirmed call from which no RTP arrives for that long while the PBX has
   * not put it on hold is dead (the PBX crashed, a NAT forgot us): BYE with Reason, `rtp-timeout`.
   * A timer reads the session's packet counter; the packet path itself is untouched.
   */
  private startRtpWatch(): void {
    const limitS = rtpTimeoutS(this.deps.config);
    if (limitS <= 0 || this.closed) return;
    const limitMs = limitS * 1000;
    const tickMs = Math.min(5000, Math.max(250, limitMs / 4));
    let seen = this.rtp.stats.packetsReceived;
    let since = Date.now();
    const tick = setInterval(() => {
      if (this.closed) return;
      const now = Date.now();
      const count = this.rtp.stats.packetsReceived;
      if (count !== seen || this.audio.onHold || this.awaitingAnswer?.initial) {
        seen = count;
        since = now;
        return;
      }
      if (now - since < limitMs) return;
      this.log.warn({ code: 'RTP_TIMEOUT', silentS: Math.round((now - since) / 1000), limitS }, 'no RTP from the PBX: ending the call');
      this.byeReason = `SIP;cause=408;text="RTP timeout: no media for ${limitS} s"`;
      void this.close('rtp-timeout');
    }, tickMs);
    this.timers.push(tick);
  }

  /**
   * REFER from the PBX (RFC 3515), trunks[].acceptRefer: 202, then ccedge dials the Refer-To
   * number through the trunk's outbound address (the forward leg code), bridges the caller's RTP
   * to it when answered and releases the agent; NOTIFYs carry the progress as message/sipfrag.
   * Not accepted: 603 Decline.
   */
  private onRefer(rq: SipRequest): void {
    if (this.closed) {
      this.dialog.answer(rq, 481, 'Call/Transaction Does Not Exist');
      return;
    }
    const open = this.referOpener;
    if (!open || !this.invite.trunk.acceptRefer) {
      this.deps.metrics.sipRejections.inc({ status: '603', code: 'SIP_REFER_DECLINED' });
      // One record event per call: a PBX repeating REFER must not write a row each time.
      if (!this.referRefused) this.record('call.refer-refused', { reason: 'trunk does not accept REFER' });
      this.referRefused = true;
      this.dialog.answer(rq, 603, 'Decline', { warning: '399 ccedge "REFER not accepted on this trunk (trunks[].acceptRefer)"' });
      return;
    }
    const referTo = rq.headers['refer-to'];
    const uri = typeof referTo === 'string' ? referTo : referTo && typeof referTo === 'object' && 'uri' in referTo ? uriOf(referTo as Parameters<typeof uriOf>[0]) : '';
    const number = referTargetNumber(uri);
    if (number === null) {
      this.deps.metrics.sipRejections.inc({ status: '400', code: 'SIP_BAD_REFER_TO' });
      this.dialog.answer(rq, 400, 'Bad Refer-To', { warning: '399 ccedge "Refer-To must be a sip:, sips: or tel: URI with a number"' });
      return;
    }
    if (this.referring || this.forwardLeg || this.awaitingAnswer) {
      this.dialog.answer(rq, 491, 'Request Pending');
      return;
    }
    this.referring = true;
    const referCseq = rq.headers.cseq.seq;
    this.dialog.answer(rq, 202, 'Accepted');
    this.dialog.notifyRefer(referCseq, 'SIP/2.0 100 Trying', false);
    this.record('call.refer-accepted', { number });
    this.log.info({ number }, 'REFER accepted: dialling the target');
    void (async () => {
      let leg: ForwardLeg;
      try {
        leg = await open(number);
      } catch (err) {
        this.referring = false;
        this.log.warn({ err }, 'REFER target could not be dialled');
        this.record('call.refer-failed', { status: 503 });
        this.dialog.notifyRefer(referCseq, 'SIP/2.0 503 Service Unavailable', true);
        return;
      }
      if (this.closed) {
        leg.close();
        return;
      }
      this.forwardLeg = leg;
      leg.on('answered', (far) => {
        if (this.closed) return;
        this.referring = false;
        // The agent (or the queue) lets go; the caller now talks to the REFER's target.
        this.ivr?.close();
        this.ivr = undefined;
        this.stopRecording('transferred');
        this.bridge?.stop();
        this.bridge = undefined;
        if (this.agentLeg) void this.agentLeg.close();
        this.agentLeg = undefined;
        this.player.stop();
        this.emit('released', 'transferred');
        this.bridge = new MediaBridge(this.rtp, far, this.audio.payloadType, this.dtmfSender);
        this.bridge.start();
        this.record('call.referred', { number, sipCallId: leg.sipCallId });
        this.log.info({ number, remote: leg.remote }, 'REFER target answered: caller bridged to it');
        this.dialog.notifyRefer(referCseq, 'SIP/2.0 200 OK', true);
      });
      leg.on('failed', (status, reason) => {
        this.referring = false;
        if (this.forwardLeg === leg) this.forwardLeg = undefined;
        leg.close();
        this.record('call.refer-failed', { status, reason });
        this.log.info({ status, reason }, 'REFER target not reached: the call stays as it was');
        this.dialog.notifyRefer(referCseq, `SIP/2.0 ${status} ${sanitise(reason).slice(0, 60) || 'Failed'}`, true);
      });
      leg.on('ended', () => void this.close('forward-hangup'));
      this.record('call.refer-dialing', { trunk: leg.target.trunk, number, sipCallId: leg.sipCallId, remote: leg.remote });
      leg.dial();
    })();
  }

  private applyRemote(): void {
    this.rtp.configure({ payloadType: this.audio.payloadType, telephoneEventPayloadType: this.audio.telephoneEventPayloadType, clockRate: 8000 });
    // SDES-SRTP (trunks[].srtp): encrypted on the wire, G.711 for the bridge and the recorder.
    this.rtp.setSrtp(this.audio.srtp ? { localKeySalt: this.audio.srtp.localKeySalt, remoteKeySalt: this.audio.srtp.remoteKeySalt } : null);
    if (this.audio.remoteAddress !== '0.0.0.0') this.rtp.setRemote(this.audio.remoteAddress, this.audio.remotePort);
    if (this.audio.onHold) this.rtp.pause();
    else this.rtp.resume();
  }

  /**
   * RTP from a source other than the negotiated one (an injection or hijack attempt, or a PBX whose
   * media comes from elsewhere than its SDP and whose trunk lacks symmetricRtp). The session only
   * counts such packets; the call writes ONE warn line, a moment after the first, so the line
   * carries how many came (the rest show in the call-ended line and the metric).
   */
  private onForeignMedia(address: string, port: number): void {
    this.deps.metrics.rtpForeignCalls.inc();
    this.foreignPending = `${address}:${port}`;
    this.timers.push(setTimeout(() => this.reportForeignMedia(), FOREIGN_MEDIA_REPORT_MS));
  }

  private reportForeignMedia(): void {
    const foreign = this.rtp.stats.packetsForeign;
    this.deps.metrics.rtpForeignPackets.inc(foreign - this.foreignCounted);
    this.foreignCounted = foreign;
    if (this.foreignPending === undefined) return;
    this.log.warn(
      {
        code: 'RTP_FOREIGN_SOURCE',
        firstSource: this.foreignPending,
        expected: `${this.audio.remoteAddress}:${this.audio.remotePort}`,
        foreignPackets: foreign,
        trunk: this.invite.trunk.name,
        symmetricRtp: this.invite.trunk.symmetricRtp,
      },
      'RTP from an unexpected source dropped',
    );
    this.foreignPending = undefined;
  }

  private onDtmf(ev: DtmfDigitEvent): void {
    this.dtmf += ev.digit;
    this.deps.metrics.dtmfDigits.inc();
    this.persist(this.deps.store.update(this.id, { dtmf: this.dtmf }, 'call.dtmf', { digit: ev.digit, durationMs: ev.durationMs }));
    this.log.info({ digit: ev.digit, durationMs: ev.durationMs }, 'DTMF');
    this.emit('dtmf', ev.digit);
  }

  /** SIP INFO: a DTMF body counts like an RFC 4733 digit (and feeds the IVR); anything else is ignored. */
  private onInfo(rq: SipRequest): void {
    if (this.closed) return;
    const digit = parseInfoDtmf(rq.headers['content-type'], rq.content);
    if (digit === null) return;
    this.onDtmf({ digit, durationMs: 0, timestamp: 0 });
    this.ivr?.pushDigit(digit, 'info');
  }

  /** Store writes never block or break the call; a failure is logged with the call's id. */
  private persist(write: Promise<void>): void {
    write.catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'call record write failed'));
  }
}

/** The data of `call.ivr-done`: a flat, stable shape for the record (and later the cloud). */
function ivrEventData(r: IvrResult): Record<string, unknown> {
  if (r.kind === 'intent') return { result: 'intent', intent: r.intent, path: r.path, menu: r.menu, fallback: r.fallback };
  if (r.kind === 'callback') return { result: 'callback', path: r.path, menu: r.menu, fallback: r.fallback };
  return { result: 'abandoned', reason: r.reason, path: r.path };
}

/** How long after the first foreign RTP packet the call's one warn line is written. */
const FOREIGN_MEDIA_REPORT_MS = 2000;

/** The number a REFER's Refer-To names (sip:/sips:/tel: user), or null for anything else. */
export function referTargetNumber(uri: string): string | null {
  const user = uriUser(uri);
  return user !== null && /^[A-Za-z0-9+*#._-]{1,64}$/.test(user) ? user : null;
}

/** calls.rtpTimeoutS, or the old rtp.inactivityTimeoutS it replaces; default 60 s, 0 = off. */
export function rtpTimeoutS(config: Config): number {
  return config.calls.rtpTimeoutS ?? config.rtp.inactivityTimeoutS ?? 60;
}

/**
 * Identity fields of `call.offered`. With privacy asked for, the asserted number stays on site
 * (the record has it for compliance); otherwise the residency policy masks or hashes it.
 */
function identityEventData(id: CallerIdentity): Record<string, unknown> {
  return {
    callerSource: id.source,
    ...(id.privacy ? { privacy: id.privacy } : id.asserted ? { asserted: id.asserted } : {}),
    ...(id.originalCalled ? { originalCalled: id.originalCalled } : {}),
  };
}

export function sanitise(text: string): string {
  return text.replace(/["\\\r\n]/g, ' ').slice(0, 120);
}
