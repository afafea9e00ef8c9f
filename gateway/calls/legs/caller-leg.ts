import { EventEmitter } from 'node:events';
import type { SipRequest } from 'sip';
import type { DtmfDigitEvent } from '../../../media';
import { MediaError, RemoteRtpSession, digitSender, soundPlayer, type DigitSender, type RtpEndpoint, type SoundPlayer } from '../../../media';
import type { RtpSessionStats } from '../../../media';
import { buildOffer, negotiateOffer, type NegotiatedAudio } from '../../../media';
import type { MediaClock } from '../../../media';
import type { CloudEventData } from '../../../sync/events';
import type { CodecName, Config } from '../../config/schema';
import { parseInfoDtmf } from '../../ivr/sip-info-dtmf';
import type { Logger } from '../../logging';
import type { Metrics } from '../../metrics';
import { callerIdentity, type CallerIdentity } from '../../sip/identity';
import type { IncomingInvite } from '../../sip/sip-server';
import type { UasDialog } from '../../sip/uas-dialog';
import type { CallEventType, CallRecord } from '../../store/call-store';
import type { CallEndCause } from '../contract';

export interface CallerLegDeps {
  config: Config;
  metrics: Metrics;
  clock: MediaClock;
  holdFrames: Record<CodecName, Buffer[]>;
  /** A store write on the call's record (column changes + event); never blocks the leg. */
  write<T extends CallEventType>(type: T, data: CloudEventData<T>, changes?: Partial<CallRecord>): void;
}

export interface CallerLegEvents {
  /** The ACK arrived (with a delayed offer: and its answer applied). */
  confirmed: [];
  /** The leg is over (BYE, CANCEL, no ACK, no RTP, no SDP answer...): the call ends with this cause. */
  ended: [cause: CallEndCause, sipStatus?: number];
  /** The PBX changed the codec (re-INVITE/UPDATE); the hold tone already follows it. */
  codec: [codec: CodecName];
  /** The PBX put the caller on hold (sendonly/inactive); the hold tone is already stopped. */
  held: [];
  /** The PBX took the caller off hold (or changed codec while not on hold). */
  resumed: [];
  /** A digit from the caller: RFC 4733 from the RTP session, or a SIP INFO body. */
  dtmf: [ev: DtmfDigitEvent, origin: 'rtp' | 'info'];
  /** REFER in the dialog (the Call answers it through `dialog`). */
  refer: [rq: SipRequest];
}

/**
 * The inbound SIP UAS leg: the caller's dialog and RTP session, SDP offer/answer (re-INVITE,
 * UPDATE, delayed offer with the answer in the ACK), the RTP timeout watch, the foreign-media
 * report, DTMF (RFC 4733 and SIP INFO) and the caller's hold tone. The Call decides what the
 * events mean for the rest of the call.
 */
export class CallerLeg extends EventEmitter<CallerLegEvents> {
  readonly dialog: UasDialog;
  readonly identity: CallerIdentity;
  readonly dtmfSender: DigitSender;
  private audio: NegotiatedAudio;
  private player: SoundPlayer;
  private sessionVersion = 1;
  private readonly sessionId = String(Date.now());
  private readonly timers: NodeJS.Timeout[] = [];
  /** First foreign RTP source, until its one warn line is written (see onForeignMedia). */
  private foreignPending: string | undefined;
  /** Foreign packets already added to the metric. */
  private foreignCounted = 0;
  /** Delayed offer (INVITE without SDP): the codecs of our offer until the ACK brings the answer. */
  private awaitingAnswer: { codecs: NegotiatedAudio['codec'][]; cseq: number; initial: boolean } | undefined;
  /** Reason header (RFC 3326) of the BYE close() sends, when the cause has one. */
  private byeReason: string | undefined;
  private over = false;

  constructor(
    readonly invite: IncomingInvite,
    readonly rtp: RtpEndpoint,
    private readonly localAddress: string,
    audio: NegotiatedAudio,
    private readonly deps: CallerLegDeps,
    private readonly log: Logger,
  ) {
    super();
    this.dialog = invite.dialog;
    this.audio = audio;
    this.player = soundPlayer(deps.clock, rtp, deps.holdFrames[audio.codec]);
    this.dtmfSender = digitSender(deps.clock, rtp);
    this.identity = callerIdentity(invite.rq, invite.trunk.trustIdentity);
  }

  /** Delayed offer: the 200 carries our offer with these codecs; the ACK must bring the answer. */
  offerInAnswer(codecs: NegotiatedAudio['codec'][]): void {
    this.awaitingAnswer = { codecs, cseq: this.invite.rq.headers.cseq.seq, initial: true };
  }

  get codec(): CodecName {
    return this.audio.codec;
  }

  get payloadType(): number {
    return this.audio.payloadType;
  }

  /** The remote SDP says sendonly/inactive (or a delayed offer's answer is not there yet). */
  get onHold(): boolean {
    return this.audio.onHold;
  }

  get remote(): string {
    return `${this.audio.remoteAddress}:${this.audio.remotePort}`;
  }

  /** Delayed offer: no SDP answer yet (the initial one, or a re-INVITE's). */
  get negotiating(): boolean {
    return this.awaitingAnswer !== undefined;
  }

  get delayedOffer(): boolean {
    return this.awaitingAnswer?.initial === true;
  }

  get stats(): RtpSessionStats {
    return this.rtp.stats;
  }

  get srtpSuite(): string | undefined {
    return this.audio.srtp?.suite;
  }

  /** Wires the dialog and RTP events and applies the negotiated media. */
  start(): void {
    this.dialog.on('confirmed', (ack) => this.onConfirmed(ack));
    this.dialog.on('ack', (ack) => this.onReofferAck(ack));
    this.dialog.on('reinvite', (re) => this.onReinvite(re));
    this.dialog.on('refer', (re) => this.emit('refer', re));
    this.dialog.on('terminated', (reason) => {
      if (reason === 'cancelled') this.end('caller-cancelled', 487);
      else if (reason === 'ack-timeout') this.end('ack-timeout');
      else if (reason === 'remote-bye') this.end('caller-hangup');
      else if (reason === 'session-expired') this.end('session-expired');
      else this.end(reason === 'shutdown' ? 'shutdown' : 'internal-error');
    });
    this.rtp.on('dtmf', (ev) => this.emit('dtmf', ev, 'rtp'));
    if (this.rtp instanceof RemoteRtpSession) {
      const worker = this.rtp.worker.index;
      this.rtp.once('lost', () => {
        this.log.error({ code: 'MEDIA_WORKER_LOST', worker }, "the call's media worker died: ending the call");
        this.byeReason = 'SIP;cause=500;text="media worker lost"';
        this.end('media-failed');
      });
    }
    this.dialog.on('info', (info) => this.onInfo(info));
    this.rtp.on('error', (err) => this.log.warn({ err }, 'RTP socket error'));
    this.rtp.once('foreign', (address, port) => this.onForeignMedia(address, port));
    this.rtp.once('latched', (address, port) => {
      this.deps.metrics.rtpLatched.inc();
      this.log.info({ source: `${address}:${port}`, sdp: this.remote, trunk: this.invite.trunk.name }, 'RTP latched to a source other than the SDP (trunk symmetricRtp)');
    });
    this.applyRemote();
  }

  /** 180 Ringing while the trunk's answer delay runs. */
  ring(): void {
    this.dialog.provisional(180, 'Ringing');
  }

  /** 200 OK with our SDP (the answer, or with a delayed offer our offer). */
  accept(sdp: string): void {
    this.dialog.accept(sdp);
  }

  startHoldTone(): void {
    if (!this.over) this.player.start();
  }

  stopHoldTone(): void {
    this.player.stop();
  }

  /** Digits to the caller as RFC 4733; false if not negotiated. */
  sendDtmf(digits: string): boolean {
    return !this.over && this.dtmfSender.send(digits);
  }

  /**
   * calls.rtpTimeoutS: a confirmed call from which no RTP arrives for that long while the PBX has
   * not put it on hold is dead (the PBX crashed, a NAT forgot us): BYE with Reason, `rtp-timeout`.
   * A timer reads the session's packet counter; the packet path itself is untouched.
   */
  startRtpWatch(): void {
    const limitS = rtpTimeoutS(this.deps.config);
    if (limitS <= 0 || this.over) return;
    const limitMs = limitS * 1000;
    const tickMs = Math.min(5000, Math.max(250, limitMs / 4));
    let seen = this.rtp.stats.packetsReceived;
    let since = Date.now();
    const tick = setInterval(() => {
      if (this.over) return;
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
      this.end('rtp-timeout');
    }, tickMs);
    this.timers.push(tick);
  }

  /**
   * Ends the leg: BYE if it is up (480 if never answered), timers, tones and the RTP port
   * released. Idempotent; the second call returns the first's result.
   */
  close(shutdown: boolean, sipStatus?: number): { hangup: Promise<void>; sipStatus: number | undefined; stats: RtpSessionStats } {
    this.over = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
    this.player.stop();
    this.dtmfSender.stop();
    let hangup: Promise<void> = Promise.resolve();
    if (this.dialog.state !== 'terminated') {
      if (this.dialog.state === 'early') sipStatus ??= 480;
      hangup = this.dialog.bye(shutdown ? 'shutdown' : 'local-bye', this.byeReason).then(() => undefined);
    }
    const stats = this.rtp.stats;
    this.reportForeignMedia();
    this.rtp.close();
    this.removeAllListeners();
    return { hangup, sipStatus, stats };
  }

  private end(cause: CallEndCause, sipStatus?: number): void {
    if (!this.over) this.emit('ended', cause, sipStatus);
  }

  private onConfirmed(ack?: SipRequest): void {
    // Delayed offer: nothing is queued, played or joined before the ACK's answer is applied.
    if (this.awaitingAnswer?.initial && !this.applyAckAnswer(ack, false)) return;
    this.emit('confirmed');
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
      this.player = soundPlayer(this.deps.clock, this.rtp, this.deps.holdFrames[audio.codec]);
      this.emit('codec', audio.codec);
    }
    if (audio.onHold && !wasOnHold) {
      this.player.stop();
      this.deps.write('call.held', { direction: audio.remoteDirection });
      this.log.info({ direction: audio.remoteDirection }, 'call put on hold by the PBX');
      this.emit('held');
    } else if (!audio.onHold && (wasOnHold || codecChanged)) {
      this.deps.write('call.resumed', {});
      this.log.info('call resumed by the PBX');
      this.emit('resumed');
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
      this.deps.write('call.sdp-answer-failed', { reason: why.slice(0, 120) });
      this.end('no-sdp-answer');
      return false;
    }
    if (pending.initial) {
      this.audio = audio;
      this.player.stop();
      this.player = soundPlayer(this.deps.clock, this.rtp, this.deps.holdFrames[audio.codec]);
      this.applyRemote();
      this.deps.write('call.media-answered', { codec: audio.codec }, { codec: audio.codec, rtpRemote: this.remote });
      this.log.info({ codec: audio.codec, remote: this.remote }, 'delayed offer: SDP answer from the ACK applied');
    } else {
      this.adoptAudio(audio);
    }
    return true;
  }

  /** ACKs after the first: one for a re-INVITE whose 200 carried our offer brings the answer. */
  private onReofferAck(ack: SipRequest): void {
    const pending = this.awaitingAnswer;
    if (!pending || pending.initial || ack.headers.cseq.seq !== pending.cseq || this.over) return;
    this.applyAckAnswer(ack, true);
  }

  private applyRemote(): void {
    this.rtp.configure({ payloadType: this.audio.payloadType, telephoneEventPayloadType: this.audio.telephoneEventPayloadType, clockRate: 8000 });
    // SDES-SRTP (trunks[].srtp): encrypted on the wire, G.711 for the joint and the recorder.
    this.rtp.setSrtp(this.audio.srtp ? { localKeySalt: this.audio.srtp.localKeySalt, remoteKeySalt: this.audio.srtp.remoteKeySalt } : null);
    if (this.audio.remoteAddress !== '0.0.0.0') this.rtp.setRemote(this.audio.remoteAddress, this.audio.remotePort);
    if (this.audio.onHold) this.rtp.pause();
    else this.rtp.resume();
  }

  /**
   * RTP from a source other than the negotiated one (an injection or hijack attempt, or a PBX whose
   * media comes from elsewhere than its SDP and whose trunk lacks symmetricRtp). The session only
   * counts such packets; the leg writes ONE warn line, a moment after the first, so the line
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
        expected: this.remote,
        foreignPackets: foreign,
        trunk: this.invite.trunk.name,
        symmetricRtp: this.invite.trunk.symmetricRtp,
      },
      'RTP from an unexpected source dropped',
    );
    this.foreignPending = undefined;
  }

  /** SIP INFO: a DTMF body counts like an RFC 4733 digit; anything else is ignored. */
  private onInfo(rq: SipRequest): void {
    if (this.over) return;
    const digit = parseInfoDtmf(rq.headers['content-type'], rq.content);
    if (digit === null) return;
    this.emit('dtmf', { digit, durationMs: 0, timestamp: 0 }, 'info');
  }
}

/** How long after the first foreign RTP packet the leg's one warn line is written. */
const FOREIGN_MEDIA_REPORT_MS = 2000;

/** calls.rtpTimeoutS, or the old rtp.inactivityTimeoutS it replaces; default 60 s, 0 = off. */
export function rtpTimeoutS(config: Config): number {
  return config.calls.rtpTimeoutS ?? config.rtp.inactivityTimeoutS ?? 60;
}

/** Text safe inside a quoted header value (Warning, Reason). */
export function sanitise(text: string): string {
  return text.replace(/["\\\r\n]/g, ' ').slice(0, 120);
}
