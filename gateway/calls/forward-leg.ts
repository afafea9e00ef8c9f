import { EventEmitter } from 'node:events';
import { RtpAudioLeg } from '../../media/bridge/rtp-audio-leg';
import type { PortPool } from '../../media/rtp/port-pool';
import { RtpSession, type RtpSessionStats } from '../../media/rtp/rtp-session';
import { buildOffer, negotiateOffer } from '../../media/sdp/negotiate';
import type { CodecName } from '../config/schema';
import type { Logger } from '../logging';
import type { ForwardTarget } from '../routing/forward';
import type { UacDialog } from '../sip/uac-dialog';

/** Places an outbound call on a trunk (the daemon passes SipServer.createOutbound). */
export type OutboundPlacer = (trunk: string, number: string) => { dialog: UacDialog; localAddress: string; remote: string };

export interface ForwardLegEvents {
  /** The far end answered with a usable SDP: relay audio to/from this leg. */
  answered: [leg: RtpAudioLeg];
  /** No answer, a final non-2xx, or an SDP answer we cannot relay without transcoding. */
  failed: [status: number, reason: string];
  /** The far end hung up (BYE). */
  ended: [];
}

export interface ForwardLegOptions {
  pool: PortPool;
  host: string;
  place: OutboundPlacer;
  target: ForwardTarget;
  /** The caller's negotiated codec: the only one offered, so the relay never transcodes. */
  codec: CodecName;
  userAgent: string;
  log: Logger;
  /** The target trunk's symmetricRtp predicate (RtpSessionOptions.latchAllowed). */
  latchAllowed?: (address: string) => boolean;
}

/**
 * The outbound half of a forwarded call (B2BUA): its own RTP session and a UAC dialog through the
 * trunk. The Call bridges its caller's RTP to this leg's RTP with the ordinary MediaBridge.
 */
export class ForwardLeg extends EventEmitter<ForwardLegEvents> {
  private audio: RtpAudioLeg | undefined;
  private closed = false;
  private rejected = false;

  private constructor(
    private readonly rtp: RtpSession,
    private readonly dialog: UacDialog,
    private readonly localAddress: string,
    readonly remote: string,
    private readonly opts: ForwardLegOptions,
  ) {
    super();
  }

  /** Binds the RTP socket and creates the dialog; dial() sends the INVITE. */
  static async open(opts: ForwardLegOptions): Promise<ForwardLeg> {
    const rtp = await RtpSession.open({ pool: opts.pool, host: opts.host, log: opts.log, latchAllowed: opts.latchAllowed });
    try {
      const placed = opts.place(opts.target.trunk, opts.target.number);
      return new ForwardLeg(rtp, placed.dialog, placed.localAddress, placed.remote, opts);
    } catch (e) {
      rtp.close();
      throw e;
    }
  }

  get target(): ForwardTarget {
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

  dial(): void {
    const dialog = this.dialog;
    dialog.on('answered', (sdp) => this.onAnswered(sdp));
    dialog.on('failed', (status, reason) => {
      // The transaction is over: close() must not CANCEL it.
      this.rejected = true;
      this.emit('failed', status, reason);
    });
    dialog.on('terminated', (reason) => {
      if (reason === 'remote-bye' && !this.closed) this.emit('ended');
    });
    this.rtp.on('error', (err) => this.opts.log.warn({ err }, 'forward leg RTP socket error'));
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

  /** BYE (or CANCEL while ringing) and the RTP port released. */
  close(shutdown = false): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.rejected && this.dialog.state !== 'terminated') this.dialog.hangup(shutdown ? 'shutdown' : 'local-bye');
    this.rtp.close();
    this.removeAllListeners();
  }

  private onAnswered(sdp: string): void {
    if (this.closed || this.audio) return;
    let audio: ReturnType<typeof negotiateOffer>['audio'];
    try {
      // The answer is read with the offer parser: it yields the remote address, port and codec.
      audio = negotiateOffer(sdp, { localAddress: this.localAddress, localPort: this.rtp.localPort, sessionId: '1', sessionVersion: 1, codecs: [this.opts.codec] }).audio;
    } catch (err) {
      this.opts.log.warn({ err }, 'unusable SDP answer on the forward leg');
      this.emit('failed', 488, 'unusable SDP answer');
      return;
    }
    this.rtp.configure({ payloadType: audio.payloadType, telephoneEventPayloadType: audio.telephoneEventPayloadType, clockRate: 8000 });
    if (audio.remoteAddress !== '0.0.0.0') this.rtp.setRemote(audio.remoteAddress, audio.remotePort);
    this.audio = new RtpAudioLeg(this.rtp, audio.payloadType);
    this.emit('answered', this.audio);
  }
}
