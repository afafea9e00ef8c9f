import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import * as sdpTransform from 'sdp-transform';
import {
  RTCPeerConnection,
  RtpHeader,
  RtpPacket,
  type ConnectionState,
  type RTCDtlsTransport,
  type RTCRtpTransceiver,
} from 'werift';
import { MediaError } from '../errors';
import { G711_PAYLOAD_TYPE, TELEPHONE_EVENT_PAYLOAD_TYPE, g711CodecParameters, type G711 } from './g711-codecs';
import { pinIceToSite, sanitizeRemoteSdp, siteIceConfig } from './site-ice';
import type { Log } from '../../lib/log';

export type { G711 } from './g711-codecs';

export interface WebRtcLegOptions {
  /** Must equal the SIP leg's codec: we never transcode. */
  codec: G711;
  /** IPv4 addresses to gather host candidates on (e.g. ['127.0.0.1'] in tests). */
  interfaces: string[];
  /** UDP ports for ICE. */
  portRange?: { min: number; max: number };
  log?: Pick<Log, 'info' | 'warn'>;
}

export type WebRtcLegState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';

type WebRtcLegEvents = {
  /**
   * One received RTP audio packet (our G.711 PT only). The payload is a view into werift's
   * decrypted packet: listeners that keep it beyond the synchronous call must copy it.
   */
  audio: [payload: Buffer, marker: boolean, timestamp: number, ssrc: number];
  /** One received RFC 4733 packet, only if the answer negotiated telephone-event. */
  telephoneEvent: [payload: Buffer, marker: boolean, timestamp: number];
  state: [WebRtcLegState];
};

/** ICE + DTLS must be up this long after the answer, or the leg fails (werift's own ICE timeout is ~40 s). */
const CONNECT_TIMEOUT_MS = 15_000;
/**
 * werift 0.24 never reports 'disconnected' for a vanished peer: it goes 'failed' only when RFC 7675
 * consent expires, 30 s after the last response. A live browser sends 50 RTP packets/s, RTCP every
 * few seconds and answers our consent checks every 4-6 s, so this long without anything at all on
 * the selected pair means the tab is gone (closed, crashed, network cut).
 */
const PEER_SILENCE_TIMEOUT_MS = 10_000;
const WATCHDOG_INTERVAL_MS = 1_000;
/** How long a werift 'disconnected' may last before we call the leg failed. */
const DISCONNECTED_GRACE_MS = 3_000;
/** Bounds what we feed the SDP parser; an agent page's answer is ~2 kB. */
const MAX_ANSWER_LENGTH = 20_000;

const ignore = (): void => {};

/**
 * werift picks a port from icePortRange by test-binding, closing, then binding for real, and that
 * last bind has no 'error' listener: two legs gathering at once can race for one port and the
 * loser's EADDRINUSE would be an uncaught exception. Gathering is host-only (milliseconds), so
 * legs of this process simply take turns.
 */
let gatherTurn: Promise<unknown> = Promise.resolve();
const GATHER_TIMEOUT_MS = 5_000;
function inTurn(fn: () => Promise<void>): Promise<void> {
  // Bounded, so one wedged gathering cannot hold up every later call's offer.
  const bounded = (): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`ICE gathering took more than ${GATHER_TIMEOUT_MS} ms`)), GATHER_TIMEOUT_MS);
    });
    return Promise.race([fn(), timeout]).finally(() => clearTimeout(timer));
  };
  const run = gatherTurn.then(bounded, bounded);
  gatherTurn = run.catch(ignore);
  return run;
}

/** uv_close completes a loop turn after the 'close' event werift waits for; let it, so the handles are gone. */
function handlesClosed(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/**
 * The agent's WebRTC leg of one call: a werift peer connection that offers exactly the call's
 * G.711 law (+ telephone-event) over DTLS-SRTP with host candidates on the site's interfaces only,
 * and passes payloads through untouched in both directions. The bridge owns the timing: it gives
 * us wire timestamps; we own SSRC and sequence numbers.
 */
export class WebRtcLeg extends EventEmitter<WebRtcLegEvents> {
  readonly stats = { packetsSent: 0, packetsReceived: 0 };

  private _state: WebRtcLegState = 'new';
  private offerCreated = false;
  private answerAccepted = false;
  private closing: Promise<void> | null = null;

  private readonly pt: number;
  /** -1 until an answer negotiates telephone-event. */
  private tePt = -1;
  private dtls: RTCDtlsTransport | null = null;
  private readonly unsubscribers: Array<() => void> = [];

  // Reused for every packet we send: werift encrypts synchronously inside sendRtp, before its first
  // await, so the next send may overwrite them. (werift keeps the last packets for NACK
  // retransmission; audio negotiates no NACK, so that cache is never read.)
  private readonly txHeader = new RtpHeader();
  private readonly txPacket = new RtpPacket(this.txHeader, Buffer.alloc(0));
  private readonly teHeader = new RtpHeader();
  // Random initial value (RFC 3550 §5.1); shared by audio and telephone-event, which use one SSRC.
  private seq = randomInt(0, 0x10000);
  /** Our random initial timestamp (RFC 3550 §5.1): the joint's timeline starts at 0. */
  private readonly tsOffset = randomInt(0, 0x100000000);

  private connectTimer: NodeJS.Timeout | null = null;
  private disconnectTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private lastActivity = -1;
  private lastActivityAt = 0;

  private constructor(
    private readonly pc: RTCPeerConnection,
    private readonly transceiver: RTCRtpTransceiver,
    private readonly codec: G711,
    private readonly interfaces: string[],
    private readonly log?: WebRtcLegOptions['log'],
  ) {
    super();
    this.pt = G711_PAYLOAD_TYPE[codec];
  }

  static create(opts: WebRtcLegOptions): WebRtcLeg {
    if (opts.codec !== 'PCMU' && opts.codec !== 'PCMA') {
      throw new MediaError('WEBRTC_FAILED', `WebRTC leg codec must be PCMU or PCMA, got "${String(opts.codec)}"`);
    }
    const pc = new RTCPeerConnection({
      ...siteIceConfig({ interfaces: opts.interfaces, portRange: opts.portRange }),
      codecs: { audio: g711CodecParameters(opts.codec), video: [] },
      headerExtensions: { audio: [], video: [] },
      bundlePolicy: 'max-bundle',
    });
    const transceiver = pc.addTransceiver('audio', { direction: 'sendrecv' });
    try {
      pinIceToSite(transceiver);
    } catch (err) {
      pc.close().catch(ignore);
      throw err;
    }
    return new WebRtcLeg(pc, transceiver, opts.codec, [...opts.interfaces], opts.log);
  }

  get state(): WebRtcLegState {
    return this._state;
  }

  /**
   * The offer for the browser. Gathering is complete when this resolves (host candidates only, so
   * it takes milliseconds), so the SDP carries every candidate and `a=end-of-candidates`.
   */
  async createOffer(): Promise<string> {
    if (this._state !== 'new' || this.offerCreated) {
      throw new MediaError('WEBRTC_FAILED', `createOffer is allowed once, on a new leg (state ${this._state})`);
    }
    this.offerCreated = true;
    try {
      await inTurn(async () => {
        if (this._state !== 'new') return;
        const offer = await this.pc.createOffer();
        await this.pc.setLocalDescription(offer);
      });
      // werift awaits gathering inside setLocalDescription, so the SDP already has every candidate.
    } catch (err) {
      throw this.wrap('cannot create the WebRTC offer', err);
    }
    if (this._state !== 'new') throw new MediaError('WEBRTC_FAILED', 'leg closed while creating the offer');
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp || !/^a=candidate:/m.test(sdp)) {
      // Every bind failed (addresses not on this box, port range exhausted): werift swallows that.
      throw new MediaError('WEBRTC_FAILED', 'no ICE candidate could be gathered on the configured interfaces/ports');
    }
    return sdp;
  }

  /** Applies the browser's answer; throws WEBRTC_FAILED (leaving the leg as it was) if it is unusable. */
  async acceptAnswer(sdp: string): Promise<void> {
    if (this._state !== 'new' || !this.offerCreated || this.answerAccepted) {
      throw new MediaError('WEBRTC_FAILED', `acceptAnswer needs a new leg with an offer and no answer yet (state ${this._state})`);
    }
    const tePt = this.checkAnswer(sdp);
    const { sdp: cleaned, droppedCandidates } = sanitizeRemoteSdp(sdp, this.pt, this.interfaces);
    if (droppedCandidates > 0) {
      // Typically mDNS (.local) names from a page without microphone permission: resolving them
      // would mean multicast DNS. The browser's checks to us still give werift a peer-reflexive pair.
      this.log?.warn({ droppedCandidates }, 'ignoring remote ICE candidates that are not UDP IP literals or not reachable from our interfaces');
    }
    this.answerAccepted = true;
    this.tePt = tePt;
    // Before werift starts connecting, so 'connecting' always precedes 'connected'/'failed'.
    this.setState('connecting');
    this.subscribe();
    this.connectTimer = setTimeout(() => this.fail('ICE/DTLS did not connect in time'), CONNECT_TIMEOUT_MS);
    this.connectTimer.unref();
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: cleaned });
    } catch (err) {
      const e = this.wrap('the WebRTC answer was refused', err);
      this.fail(e.message);
      throw e;
    }
    const sendCodec = this.transceiver.sender.codec;
    if (sendCodec?.payloadType !== this.pt) {
      const msg = `werift negotiated ${sendCodec?.mimeType ?? 'no codec'} instead of ${this.codec}`;
      this.fail(msg);
      throw new MediaError('WEBRTC_FAILED', msg);
    }
  }

  /**
   * Hot path (50/s): one G.711 frame to the browser. The SSRC and sequence number are ours, the
   * timestamp is used as given. No logging; no allocation of our own (werift allocates the
   * encrypted datagram and some per-packet bookkeeping). Dropped unless connected.
   */
  sendAudio(payload: Buffer, marker: boolean, timestamp: number): void {
    if (this._state !== 'connected') return;
    const h = this.txHeader;
    h.marker = marker;
    h.timestamp = (timestamp + this.tsOffset) >>> 0;
    h.sequenceNumber = this.seq;
    h.payloadType = this.pt;
    this.txPacket.payload = payload;
    this.seq = (this.seq + 1) & 0xffff;
    this.stats.packetsSent++;
    // werift's sender stamps its SSRC and keeps the counters its RTCP sender reports need.
    this.transceiver.sender.sendRtp(this.txPacket).catch(ignore);
  }

  /** RFC 4733 to the browser if the answer negotiated telephone-event, else nothing. */
  sendTelephoneEvent(payload: Buffer, marker: boolean, timestamp: number): void {
    if (this._state !== 'connected' || this.tePt < 0 || this.dtls === null) return;
    const h = this.teHeader;
    h.marker = marker;
    h.timestamp = (timestamp + this.tsOffset) >>> 0;
    h.sequenceNumber = this.seq;
    h.payloadType = this.tePt;
    h.ssrc = this.transceiver.sender.ssrc;
    this.seq = (this.seq + 1) & 0xffff;
    this.stats.packetsSent++;
    // Not through the sender: RTCRtpSender.sendRtp overwrites the PT with the audio codec's.
    this.dtls.sendRtp(payload, h).catch(ignore);
  }

  /** Idempotent: stops timers, closes the peer connection and with it every ICE socket. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.clearTimers();
      this._state = 'closed';
      for (const off of this.unsubscribers.splice(0)) off();
      try {
        await this.pc.close();
      } catch (err) {
        this.log?.warn({ err }, 'error while closing the WebRTC peer connection');
      }
      await handlesClosed();
      this.emit('state', 'closed');
    })();
    return this.closing;
  }

  /** Validates the answer against our offer; returns the telephone-event PT or -1. */
  private checkAnswer(sdp: string): number {
    if (typeof sdp !== 'string' || sdp.length === 0 || sdp.length > MAX_ANSWER_LENGTH) {
      throw new MediaError('WEBRTC_FAILED', 'WebRTC answer is empty or too long');
    }
    let s: sdpTransform.SessionDescription;
    try {
      s = sdpTransform.parse(sdp);
    } catch (err) {
      throw this.wrap('WebRTC answer is not SDP', err);
    }
    if (s.version !== 0 || !Array.isArray(s.media)) throw new MediaError('WEBRTC_FAILED', 'WebRTC answer is not SDP (no v=0)');
    if (s.media.length !== 1) {
      throw new MediaError('WEBRTC_FAILED', `WebRTC answer has ${s.media.length} m-lines, the offer had 1 (audio)`);
    }
    const m = s.media[0];
    if (m.type !== 'audio') throw new MediaError('WEBRTC_FAILED', `WebRTC answer's m-line is ${m.type}, expected audio`);
    if (m.port === 0) throw new MediaError('WEBRTC_FAILED', 'the browser rejected the audio stream (port 0)');
    if (!/^UDP\/TLS\/RTP\/SAVPF$/i.test(m.protocol)) {
      throw new MediaError('WEBRTC_FAILED', `WebRTC answer uses ${m.protocol}, DTLS-SRTP (UDP/TLS/RTP/SAVPF) is required`);
    }
    const pts = String(m.payloads ?? '').trim().split(/\s+/).map(Number);
    if (!pts.includes(this.pt)) {
      throw new MediaError('WEBRTC_FAILED', `WebRTC answer does not accept ${this.codec} (PT ${this.pt}); offered formats: ${m.payloads}`);
    }
    const mapped = m.rtp.find((r) => r.payload === this.pt);
    if (mapped && (mapped.codec.toUpperCase() !== this.codec || mapped.rate !== 8000)) {
      throw new MediaError('WEBRTC_FAILED', `WebRTC answer maps PT ${this.pt} to ${mapped.codec}/${mapped.rate}, expected ${this.codec}/8000`);
    }
    if (!(m.fingerprint ?? s.fingerprint)) throw new MediaError('WEBRTC_FAILED', 'WebRTC answer has no DTLS fingerprint');
    if (!(m.iceUfrag ?? s.iceUfrag) || !(m.icePwd ?? s.icePwd)) {
      throw new MediaError('WEBRTC_FAILED', 'WebRTC answer has no ICE credentials');
    }
    const setup = m.setup ?? s.setup;
    if (setup !== undefined && setup !== 'active' && setup !== 'passive') {
      throw new MediaError('WEBRTC_FAILED', `WebRTC answer has a=setup:${setup}, an answer must be active or passive`);
    }
    const direction = m.direction ?? s.direction ?? 'sendrecv';
    if (direction === 'inactive') throw new MediaError('WEBRTC_FAILED', 'WebRTC answer is inactive');
    if (direction !== 'sendrecv') this.log?.warn({ direction }, 'WebRTC answer is not sendrecv: audio flows one way only');
    const te = m.rtp.find((r) => r.codec.toLowerCase() === 'telephone-event' && r.rate === 8000 && pts.includes(r.payload));
    // We offered 101 only; an answer must not renumber it (RFC 3264 §6.1).
    return te !== undefined && te.payload === TELEPHONE_EVENT_PAYLOAD_TYPE ? te.payload : -1;
  }

  private subscribe(): void {
    const dtls = this.transceiver.sender.dtlsTransport;
    this.dtls = dtls;
    this.unsubscribers.push(
      this.pc.connectionStateChange.subscribe(this.onConnectionState).unSubscribe,
      dtls.onStateChange.subscribe(this.onDtlsState).unSubscribe,
      // Straight from the DTLS transport rather than a receiver track: every SRTP packet that
      // authenticates is from this peer (one bundled audio m-line), and it does not depend on the
      // answer listing a=ssrc lines for werift's SSRC router.
      dtls.onRtp.subscribe(this.onRtp).unSubscribe,
    );
  }

  private readonly onRtp = (rtp: RtpPacket): void => {
    const h = rtp.header;
    if (h.payloadType === this.pt) {
      this.stats.packetsReceived++;
      this.emit('audio', rtp.payload, h.marker, h.timestamp, h.ssrc);
    } else if (h.payloadType === this.tePt) {
      this.stats.packetsReceived++;
      this.emit('telephoneEvent', rtp.payload, h.marker, h.timestamp);
    }
  };

  private readonly onConnectionState = (s: ConnectionState): void => {
    if (this._state === 'closed' || this._state === 'failed') return;
    switch (s) {
      case 'connected':
        if (this.disconnectTimer) {
          clearTimeout(this.disconnectTimer);
          this.disconnectTimer = null;
        }
        if (this._state === 'connecting') {
          if (this.connectTimer) clearTimeout(this.connectTimer);
          this.connectTimer = null;
          this.startWatchdog();
          this.setState('connected');
        }
        break;
      case 'disconnected':
        if (this.disconnectTimer === null) {
          this.disconnectTimer = setTimeout(() => this.fail('peer disconnected'), DISCONNECTED_GRACE_MS);
          this.disconnectTimer.unref();
        }
        break;
      case 'failed':
        this.fail('ICE/DTLS failed');
        break;
      case 'closed':
        // Only our own close() closes werift's peer, and that has already moved us to 'closed'.
        this.fail('peer connection closed underneath the leg');
        break;
      default:
        break;
    }
  };

  private readonly onDtlsState = (s: string): void => {
    // Any DTLS alert from the browser (close_notify when its RTCPeerConnection is closed) ends
    // werift's DTLS session for good, but werift does not propagate it to connectionState.
    if (s === 'closed' || s === 'failed') this.fail(`DTLS ${s} by the peer`);
  };

  private startWatchdog(): void {
    this.lastActivity = -1;
    this.lastActivityAt = Date.now();
    this.watchdog = setInterval(this.checkPeerAlive, WATCHDOG_INTERVAL_MS);
    this.watchdog.unref();
  }

  private readonly checkPeerAlive = (): void => {
    const pair = this.transceiver.sender.dtlsTransport.iceTransport.connection.nominated;
    // Datagrams of any kind (SRTP, SRTCP, DTLS) plus answered consent checks on the selected pair.
    const activity = pair ? pair.packetsReceived + pair.responsesReceived : 0;
    const now = Date.now();
    if (activity !== this.lastActivity) {
      this.lastActivity = activity;
      this.lastActivityAt = now;
    } else if (now - this.lastActivityAt >= PEER_SILENCE_TIMEOUT_MS) {
      this.fail(`nothing received from the browser for ${Math.round((now - this.lastActivityAt) / 1000)} s`);
    }
  };

  private fail(reason: string): void {
    if (this._state === 'failed' || this._state === 'closed') return;
    this.clearTimers();
    this.log?.warn({ reason, from: this._state }, 'WebRTC leg failed');
    this.setState('failed');
  }

  private setState(s: WebRtcLegState): void {
    if (this._state === s) return;
    this._state = s;
    if (s !== 'failed') this.log?.info({ state: s }, 'WebRTC leg state');
    this.emit('state', s);
  }

  private clearTimers(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.disconnectTimer) clearTimeout(this.disconnectTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.connectTimer = this.disconnectTimer = this.watchdog = null;
  }

  private wrap(what: string, err: unknown): MediaError {
    if (err instanceof MediaError) return err;
    return new MediaError('WEBRTC_FAILED', `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
