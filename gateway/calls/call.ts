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
import { negotiateOffer, type NegotiatedAudio } from '../../media/sdp/negotiate';
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
import { displayNameOf, uriOf, userOf } from '../sip/messages';
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
  /** Forwarded to a trunk number: the far end did not answer, refused, or could not be dialled. */
  | 'forward-failed'
  /** Forwarded to a trunk number: the far end hung up. */
  | 'forward-hangup';

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
  }

  get codec(): NegotiatedAudio['codec'] {
    return this.audio.codec;
  }

  /** The caller as agents see it: number (From user) and display name. */
  get caller(): { number: string; name: string | null } {
    const from = this.invite.rq.headers.from;
    return { number: userOf(from) ?? uriOf(from), name: displayNameOf(from) };
  }

  get agent(): string | undefined {
    return this.agentName;
  }

  /** The number the caller dialled (To user), for the agent's caller context. */
  get called(): string | null {
    return userOf(this.invite.rq.headers.to) ?? null;
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
    const record: CallRecord = {
      ...inboundRecord(this.id, rq, this.invite.flow, this.invite.trunk.name),
      codec: this.audio.codec,
      rtpLocalPort: this.rtp.localPort,
      rtpRemote: `${this.audio.remoteAddress}:${this.audio.remotePort}`,
    };
    this.persist(this.deps.store.create(record, 'call.offered', { from: record.fromUri, to: record.toUri, trunk: record.trunk }));
    this.log.info({ from: record.fromUri, to: record.toUri, trunk: record.trunk, codec: this.audio.codec, transport: record.transport }, 'call offered');

    this.dialog.on('confirmed', () => this.onConfirmed());
    this.dialog.on('reinvite', (re) => this.onReinvite(re));
    this.dialog.on('terminated', (reason) => {
      if (reason === 'cancelled') void this.close('caller-cancelled', 487);
      else if (reason === 'ack-timeout') void this.close('ack-timeout');
      else if (reason === 'remote-bye') void this.close('caller-hangup');
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
      hangup = this.dialog.bye(cause === 'shutdown' ? 'shutdown' : 'local-bye').then(() => undefined);
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

  private onConfirmed(): void {
    this.persist(this.deps.store.update(this.id, {}, 'call.confirmed'));
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
      // No offer in the re-INVITE: our 200 carries the current session as the offer.
      this.dialog.answerReinvite(rq, { sdp: this.answerSdp });
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
      });
      const wasOnHold = this.audio.onHold;
      const codecChanged = audio.codec !== this.audio.codec;
      this.audio = audio;
      this.applyRemote();
      if (codecChanged) {
        this.player.stop();
        this.player = new TonePlayer(this.deps.clock, this.rtp, this.deps.holdFrames[audio.codec]);
        this.ivr?.setCodec(audio.codec);
      }
      this.dialog.answerReinvite(rq, { sdp: answerSdp });
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
    } catch (e) {
      const status = e instanceof MediaError && (e.code === 'SDP_NO_COMMON_CODEC' || e.code === 'SDP_ADDRESS_REFUSED') ? 488 : 400;
      this.log.warn({ err: e, code: e instanceof MediaError ? e.code : 'SIP_BAD_REQUEST' }, 're-INVITE offer rejected');
      this.sessionVersion--;
      this.dialog.answerReinvite(rq, {
        status,
        reason: status === 488 ? 'Not Acceptable Here' : 'Bad Request',
        headers: { warning: `399 ccedge "${sanitise((e as Error).message)}"` },
      });
    }
  }

  private applyRemote(): void {
    this.rtp.configure({ payloadType: this.audio.payloadType, telephoneEventPayloadType: this.audio.telephoneEventPayloadType, clockRate: 8000 });
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

export function sanitise(text: string): string {
  return text.replace(/["\\\r\n]/g, ' ').slice(0, 120);
}
