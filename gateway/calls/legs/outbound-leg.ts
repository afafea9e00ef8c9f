import { EventEmitter } from 'node:events';
import type { PortPool } from '../../../media';
import { RemoteRtpSession, RtpSession, type MediaWorker, type RtpEndpoint, type RtpSessionStats } from '../../../media';
import { buildOffer, negotiateOffer } from '../../../media';
import type { CodecName } from '../../config/schema';
import type { Logger } from '../../logging';
import type { UacDialog } from '../../sip/uac-dialog';
import type { OutboundTarget } from '../contract';

/** Places an outbound call on a trunk (the daemon passes SipServer.createOutbound). */
export type OutboundPlacer = (trunk: string, number: string) => { dialog: UacDialog; localAddress: string; remote: string };

export interface OutboundLegEvents {
  /** The far end answered with a usable SDP: the call joins its RTP session (RtpSessionPort). */
  answered: [];
  /** No answer, a final non-2xx, or an SDP answer we cannot relay without transcoding. */
  failed: [status: number, reason: string];
  /** The far end hung up (BYE). */
  ended: [];
}

export interface OutboundLegOptions {
  pool: PortPool;
  host: string;
  place: OutboundPlacer;
  target: OutboundTarget;
  /** The call's codec: the only one offered, so the joint's relay never transcodes. */
  codec: CodecName;
  userAgent: string;
  log: Logger;
  /** The target trunk's symmetricRtp predicate (RtpSessionOptions.latchAllowed). */
  latchAllowed?: (address: string) => boolean;
  /** The call's media worker, when its media lives on one (the leg's session opens there). */
  media?: { worker: MediaWorker; latch: string[] | null };
}

/**
 * THE outbound SIP UAC leg (B2BUA half): its own RTP session and a UAC dialog through a trunk.
 * Forward rules, a REFER from the PBX, callbacks and transfers all dial through it; the Call
 * joins its audio to the others. close(): CANCEL while ringing, BYE once answered.
 */
export class OutboundLeg extends EventEmitter<OutboundLegEvents> {
  private answeredOnce = false;
  private payload = -1;
  private closed = false;
  private rejected = false;
  private dialled = false;

  private constructor(
    readonly rtp: RtpEndpoint,
    private readonly dialog: UacDialog,
    readonly localAddress: string,
    readonly remote: string,
    private readonly opts: OutboundLegOptions,
  ) {
    super();
  }

  /** Binds the RTP socket and creates the dialog; dial() sends the INVITE. */
  static async open(opts: OutboundLegOptions): Promise<OutboundLeg> {
    const rtp: RtpEndpoint = opts.media
      ? await opts.media.worker.openSession({ pool: opts.pool, host: opts.host, latch: opts.media.latch })
      : await RtpSession.open({ pool: opts.pool, host: opts.host, log: opts.log, latchAllowed: opts.latchAllowed });
    try {
      const placed = opts.place(opts.target.trunk, opts.target.number);
      return new OutboundLeg(rtp, placed.dialog, placed.localAddress, placed.remote, opts);
    } catch (e) {
      rtp.close();
      throw e;
    }
  }

  get target(): OutboundTarget {
    return this.opts.target;
  }

  get sipCallId(): string {
    return this.dialog.callId;
  }

  get localPort(): number {
    return this.rtp.localPort;
  }

  get stats(): RtpSessionStats {
    return this.rtp.stats;
  }

  /** The answer's audio payload type (-1 until answered). */
  get payloadType(): number {
    return this.payload;
  }

  get answered(): boolean {
    return this.answeredOnce;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  dial(): void {
    if (this.dialled || this.closed) return;
    this.dialled = true;
    const dialog = this.dialog;
    dialog.on('answered', (sdp) => this.onAnswered(sdp));
    dialog.on('failed', (status, reason) => {
      // The transaction is over: close() must not CANCEL it.
      this.rejected = true;
      if (!this.closed) this.emit('failed', status, reason);
    });
    dialog.on('terminated', (reason) => {
      if (reason === 'remote-bye' && !this.closed) this.emit('ended');
    });
    this.rtp.on('error', (err) => this.opts.log.warn({ err }, 'outbound leg RTP socket error'));
    // Its media worker died: for the call the far leg is gone (the call's own end sends the BYE).
    if (this.rtp instanceof RemoteRtpSession) this.rtp.once('lost', () => { if (!this.closed) this.emit('ended'); });
    dialog.start(
      buildOffer({
        localAddress: this.localAddress,
        localPort: this.rtp.localPort,
        sessionId: String(Date.now()),
        sessionVersion: 1,
        codecs: [this.opts.codec],
        userAgent: this.opts.userAgent,
      }),
    );
  }

  /** CANCEL while ringing, BYE once answered; the RTP port released. Idempotent. */
  close(shutdown = false): void {
    if (this.closed) return;
    this.closed = true;
    // Never dialled: hangup() still terminates the dialog so the SIP server forgets it.
    if (!this.rejected && this.dialog.state !== 'terminated') this.dialog.hangup(shutdown ? 'shutdown' : 'local-bye');
    this.rtp.close();
    this.removeAllListeners();
  }

  private onAnswered(sdp: string): void {
    if (this.closed || this.answeredOnce) return;
    let audio: ReturnType<typeof negotiateOffer>['audio'];
    try {
      // The answer is read with the offer parser: it yields the remote address, port and codec.
      audio = negotiateOffer(sdp, { localAddress: this.localAddress, localPort: this.rtp.localPort, sessionId: '1', sessionVersion: 1, codecs: [this.opts.codec] }).audio;
    } catch (err) {
      this.opts.log.warn({ err }, 'unusable SDP answer on the outbound leg');
      this.emit('failed', 488, 'unusable SDP answer');
      return;
    }
    this.rtp.configure({ payloadType: audio.payloadType, telephoneEventPayloadType: audio.telephoneEventPayloadType, clockRate: 8000 });
    if (audio.remoteAddress !== '0.0.0.0') this.rtp.setRemote(audio.remoteAddress, audio.remotePort);
    this.payload = audio.payloadType;
    this.answeredOnce = true;
    this.emit('answered');
  }
}
