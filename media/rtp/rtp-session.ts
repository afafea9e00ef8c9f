import * as dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { randomInt } from 'node:crypto';
import { MediaError } from '../errors';
import { Rfc4733Detector, type DtmfDigitEvent } from '../dtmf/rfc4733';
import { newRtpParseResult, parseRtpInto, writeRtpHeader, RTP_HEADER_SIZE, type RtpHeader } from './packet';
import type { PortPool } from './port-pool';
import { TimestampFollower } from './timestamp-follower';
import { SRTP_AUTH_TAG_BYTES, SrtpContext } from './srtp';
import type { Log } from '../../lib/log';

export interface RtpSessionStats {
  packetsSent: number;
  octetsSent: number;
  packetsReceived: number;
  octetsReceived: number;
  /** Malformed packets and packets from a source other than the remote. */
  packetsDropped: number;
  /** Of packetsDropped: those from a source other than the negotiated (or latched) one. */
  packetsForeign: number;
  /** Sends skipped because the socket already had QUEUE_MAX datagrams the kernel had not taken. */
  sendOverruns: number;
  /** Date.now() of the last accepted packet; 0 if none yet. */
  lastReceivedAt: number;
  /** Of packetsDropped: SRTP packets whose tag did not verify or that were replays. */
  srtpRejected: number;
}

export interface RtpSessionOptions {
  pool: Pick<PortPool, 'acquire' | 'release'>;
  host: string;
  log?: Pick<Log, 'warn'>;
  /**
   * Symmetric RTP (RFC 4961): whether the session may latch, once, to a source other than the
   * SDP's address and port, and to which addresses (the gateway passes the trunk's allow-list).
   * Unset: media is accepted only from the SDP's address and port.
   */
  latchAllowed?: (address: string) => boolean;
}

type RtpSessionEvents = {
  /**
   * The header object is reused for the next packet and the payload is a view into the datagram:
   * listeners that keep either beyond the synchronous call must copy them.
   */
  packet: [RtpHeader, Buffer];
  dtmf: [DtmfDigitEvent];
  error: [Error];
  /**
   * Emitted once per session, for the first packet from a source that is not accepted; later ones
   * are only counted in stats.packetsForeign (the packet path neither logs nor allocates).
   */
  foreign: [address: string, port: number];
  /** Emitted once when the session latched to a source other than the SDP's (symmetric RTP). */
  latched: [address: string, port: number];
};


const BIND_ATTEMPTS = 5;
/** Datagrams waiting in the socket's send queue beyond which a send is dropped, not queued (stale audio). */
const QUEUE_MAX = 8;
const MAX_DATAGRAM = 1500;

/**
 * One RTP endpoint for one SIP call leg: a udp4 socket on a pooled even port, header writing
 * for what we send, and source validation plus DTMF extraction for what we receive.
 */
export class RtpSession extends EventEmitter<RtpSessionEvents> {
  readonly stats: RtpSessionStats = {
    packetsSent: 0, octetsSent: 0, packetsReceived: 0, octetsReceived: 0,
    packetsDropped: 0, packetsForeign: 0, sendOverruns: 0, lastReceivedAt: 0, srtpRejected: 0,
  };
  /** SRTP contexts when the leg is SDES-keyed (setSrtp); null: plain RTP. */
  private srtpTx: SrtpContext | null = null;
  private srtpRx: SrtpContext | null = null;
  private srtpKeys: { local: Buffer; remote: Buffer } | null = null;

  /** Where we send: the SDP's address and port, or the source latched to. */
  private remoteAddress: string | null = null;
  private remotePort = 0;
  /** The SDP's address and port: always accepted, whatever was latched. */
  private sdpAddress: string | null = null;
  private sdpPort = 0;
  /** True once the first packet was accepted: no latching after that; reset by a new remote. */
  private latched = false;
  /** Latched to a source other than the SDP's. */
  private latchedAway = false;
  private foreignNoticed = false;
  private latchNoticed = false;
  /** c=0.0.0.0 hold: keep the old address for source checks but send nothing. */
  private remoteBlackholed = false;
  private paused = false;
  private closed = false;

  private payloadType = -1;
  private telephoneEventPt = -1;
  private clockRate = 8000;
  private detector = new Rfc4733Detector(8000);

  // Random initial values (RFC 3550 §5.1) make known-plaintext and injection harder.
  private seq = randomInt(0, 0x10000);
  private readonly timeline = new TimestampFollower(randomInt(0, 0x100000000));
  private readonly ssrc = randomInt(0, 0x100000000);

  /** The datagram being written, and a cached view of its length, so steady sends allocate nothing. */
  private readonly sendBuf = Buffer.alloc(MAX_DATAGRAM);
  private sendView = this.sendBuf.subarray(0, 0);
  private readonly rx = newRtpParseResult();

  private constructor(
    private readonly socket: dgram.Socket,
    readonly localPort: number,
    private readonly pool: Pick<PortPool, 'acquire' | 'release'>,
    private readonly log?: RtpSessionOptions['log'],
    private readonly latchAllowed?: RtpSessionOptions['latchAllowed'],
  ) {
    super();
    socket.on('message', this.onMessage);
    socket.on('error', this.onSocketError);
  }

  static async open(opts: RtpSessionOptions): Promise<RtpSession> {
    if (!isIPv4(opts.host)) {
      throw new MediaError('RTP_BIND_FAILED', `RTP host must be an IPv4 literal, got "${opts.host}"`);
    }
    let lastErr: unknown = null;
    for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
      const port = opts.pool.acquire();
      const socket = dgram.createSocket({ type: 'udp4', lookup: literalOnlyLookup });
      try {
        await bind(socket, opts.host, port);
        return new RtpSession(socket, port, opts.pool, opts.log, opts.latchAllowed);
      } catch (err) {
        socket.close();
        opts.pool.release(port);
        lastErr = err;
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
        opts.log?.warn({ port, host: opts.host }, 'RTP port in use by another process, trying the next one');
      }
    }
    const reason = lastErr instanceof Error ? lastErr.message : String(lastErr);
    throw new MediaError('RTP_BIND_FAILED', `cannot bind an RTP socket on ${opts.host}: ${reason}`);
  }

  /**
   * Where we send; also the only source (address and port) we accept packets from, unless
   * latchAllowed lets the session latch once to another. A changed address or port restarts
   * latching; the same one again (a re-INVITE that keeps the media) keeps what was learnt.
   */
  setRemote(address: string, port: number): void {
    if (!isIPv4(address)) throw new Error(`RTP remote must be an IPv4 literal, got "${address}"`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid RTP remote port ${port}`);
    if (address === '0.0.0.0') {
      this.remoteBlackholed = true;
      return;
    }
    this.remoteBlackholed = false;
    if (address === this.sdpAddress && port === this.sdpPort) return;
    this.sdpAddress = address;
    this.sdpPort = port;
    this.remoteAddress = address;
    this.remotePort = port;
    this.latched = false;
    this.latchedAway = false;
  }

  configure(opts: { payloadType: number; telephoneEventPayloadType?: number; clockRate?: number }): void {
    this.payloadType = opts.payloadType & 0x7f;
    this.telephoneEventPt = opts.telephoneEventPayloadType === undefined ? -1 : opts.telephoneEventPayloadType & 0x7f;
    const rate = opts.clockRate ?? 8000;
    // Keep the detector across re-INVITEs: a fresh one would re-report a digit whose end packets
    // are still arriving.
    if (rate !== this.clockRate) {
      this.clockRate = rate;
      this.detector = new Rfc4733Detector(rate);
    }
  }

  /**
   * SDES-SRTP keys (30 bytes key||salt each way), or null for plain RTP. Same keys again (a
   * re-INVITE that keeps them) keep the contexts, so rollover and replay state survive.
   */
  setSrtp(keys: { localKeySalt: Buffer; remoteKeySalt: Buffer } | null): void {
    if (keys === null) {
      this.srtpTx = this.srtpRx = null;
      this.srtpKeys = null;
      return;
    }
    const prev = this.srtpKeys;
    if (!prev || !prev.local.equals(keys.localKeySalt)) this.srtpTx = SrtpContext.fromKeySalt(keys.localKeySalt);
    if (!prev || !prev.remote.equals(keys.remoteKeySalt)) this.srtpRx = SrtpContext.fromKeySalt(keys.remoteKeySalt);
    this.srtpKeys = { local: Buffer.from(keys.localKeySalt), remote: Buffer.from(keys.remoteKeySalt) };
  }

  /** Remote address and (possibly latched) port, or null before setRemote. */
  get remote(): { address: string; port: number } | null {
    return this.remoteAddress === null ? null : { address: this.remoteAddress, port: this.remotePort };
  }

  /**
   * Hot path (50/s per leg): no logging, no allocation besides Node's own send request.
   * Silently does nothing while paused, closed, unconfigured or without a remote.
   */
  sendPayload(payload: Buffer, marker = false): void {
    if (!this.canSend()) return;
    // G.711: one octet is one sample at 8 kHz.
    this.transmit(payload, marker, this.timeline.own(payload.length), this.payloadType);
  }

  /**
   * Relays a frame received on another leg (the bridge): our SSRC and sequence, the source's
   * timing (see TimestampFollower). `payloadType` defaults to the negotiated audio codec; pass
   * the telephone-event type for RFC 4733 packets. Same hot-path rules as sendPayload.
   */
  sendRelayed(payload: Buffer, marker: boolean, sourceSsrc: number, sourceTimestamp: number, payloadType = this.payloadType): void {
    if (!this.canSend() || payloadType < 0) return;
    const samples = payloadType === this.payloadType ? payload.length : 160;
    const ts = this.timeline.relay(sourceSsrc, sourceTimestamp, samples);
    this.transmit(payload, marker || this.timeline.jumped, ts, payloadType);
  }

  /**
   * Sends a frame whose wire timestamp the sender already computed (the far leg of a bridge whose
   * own TimestampFollower did the timing): our SSRC and sequence, the negotiated audio type.
   * Same hot-path rules as sendPayload.
   */
  sendFrame(payload: Buffer, marker: boolean, timestamp: number): void {
    if (!this.canSend()) return;
    this.transmit(payload, marker, timestamp, this.payloadType);
  }

  /** The negotiated telephone-event payload type, or -1 if the remote did not offer RFC 4733. */
  get telephoneEventPayloadType(): number {
    return this.telephoneEventPt;
  }

  private canSend(): boolean {
    return !(this.closed || this.paused || this.remoteBlackholed || this.remoteAddress === null || this.payloadType < 0);
  }

  private transmit(payload: Buffer, marker: boolean, timestamp: number, payloadType: number): void {
    let len = RTP_HEADER_SIZE + payload.length;
    if (len + SRTP_AUTH_TAG_BYTES > MAX_DATAGRAM || this.remoteAddress === null) return;
    // Sent without a callback (no request object, no nextTick per packet). libuv sends at once
    // when the socket's send queue is empty, and the kernel copies the datagram, so sendBuf is
    // free again on return. Only a send libuv had to queue (EAGAIN) still points into its buffer,
    // and then the queue is not empty: until it drains, each send gets a buffer of its own.
    const queued = this.socket.getSendQueueCount();
    let buf = this.sendBuf;
    if (queued > 0) {
      if (queued >= QUEUE_MAX) {
        // The kernel has not taken QUEUE_MAX packets yet: dropping one is better than queueing stale audio.
        this.stats.sendOverruns++;
        return;
      }
      buf = Buffer.allocUnsafe(MAX_DATAGRAM);
    }
    writeRtpHeader(buf, { marker, payloadType, sequenceNumber: this.seq, timestamp, ssrc: this.ssrc });
    payload.copy(buf, RTP_HEADER_SIZE);
    if (this.srtpTx !== null) len = this.srtpTx.protect(buf, len);
    let view: Buffer;
    if (buf === this.sendBuf) {
      if (this.sendView.length !== len) this.sendView = buf.subarray(0, len);
      view = this.sendView;
    } else {
      view = buf.subarray(0, len);
    }
    this.socket.send(view, this.remotePort, this.remoteAddress);
    this.seq = (this.seq + 1) & 0xffff;
    this.stats.packetsSent++;
    this.stats.octetsSent += payload.length;
  }

  /** Stop sending (remote on hold) while keeping the socket, port and receive path. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.removeListener('message', this.onMessage);
    try {
      this.socket.close();
    } catch {
      // Already closed underneath us (e.g. after a socket error); the port is still ours to free.
    }
    this.pool.release(this.localPort);
  }

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const h = this.rx;
    const fromSdp = rinfo.port === this.sdpPort && rinfo.address === this.sdpAddress;
    // A source other than the SDP's is taken only if it is the one latched to, or if nothing was
    // received yet and the trunk allows latching to its address. Anything else could be injection
    // or a hijack (another process on the PBX's host spraying before the PBX's first packet).
    const fromLatched = !fromSdp && this.latchedAway && rinfo.port === this.remotePort && rinfo.address === this.remoteAddress;
    if (!fromSdp && !fromLatched && (this.latched || this.sdpAddress === null || this.latchAllowed === undefined || !this.latchAllowed(rinfo.address))) {
      this.stats.packetsDropped++;
      this.stats.packetsForeign++;
      if (!this.foreignNoticed) {
        this.foreignNoticed = true;
        this.emit('foreign', rinfo.address, rinfo.port);
      }
      return;
    }
    let len = msg.length;
    if (this.srtpRx !== null) {
      // Authenticated and decrypted in place before anything reads the payload.
      len = this.srtpRx.unprotect(msg, len);
      if (len < 0) {
        this.stats.packetsDropped++;
        this.stats.srtpRejected++;
        return;
      }
    }
    if (!parseRtpInto(msg, h, len)) {
      this.stats.packetsDropped++;
      return;
    }
    if (fromSdp) {
      // The SDP's source always wins back the send target from a latched one.
      if (this.latchedAway) {
        this.latchedAway = false;
        this.remoteAddress = this.sdpAddress;
        this.remotePort = this.sdpPort;
      }
    } else if (!fromLatched) {
      // Symmetric RTP (RFC 4961): a NATed or multi-port PBX sends from elsewhere than its SDP.
      this.latchedAway = true;
      this.remoteAddress = rinfo.address;
      this.remotePort = rinfo.port;
      if (!this.latchNoticed) {
        this.latchNoticed = true;
        this.emit('latched', rinfo.address, rinfo.port);
      }
    }
    this.latched = true;
    const payload = msg.subarray(h.payloadStart, h.payloadEnd);
    this.stats.packetsReceived++;
    this.stats.octetsReceived += payload.length;
    this.stats.lastReceivedAt = Date.now();
    if (h.payloadType === this.telephoneEventPt) {
      const digit = this.detector.push(h, payload);
      if (digit !== null) this.emit('dtmf', digit);
      return;
    }
    this.emit('packet', h, payload);
  };

  private readonly onSocketError = (err: Error): void => {
    // An unhandled 'error' event would crash the daemon for one call's socket problem.
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.log?.warn({ err, localPort: this.localPort }, 'RTP socket error');
  };
}

function bind(socket: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.removeListener('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      socket.removeListener('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    socket.bind({ address: host, port, exclusive: true });
  });
}

/**
 * We only ever bind/send to IPv4 literals (validated in open/setRemote), so resolve them
 * synchronously: it skips Node's per-send dns.lookup tick and guarantees no DNS from SDP data.
 */
function literalOnlyLookup(
  hostname: string,
  _options: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  if (isIPv4(hostname)) {
    callback(null, hostname, 4);
    return;
  }
  const err: NodeJS.ErrnoException = new Error(`refusing to resolve "${hostname}": IPv4 literal required`);
  err.code = 'ENOTFOUND';
  callback(err, '', 4);
}
