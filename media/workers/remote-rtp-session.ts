import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import type { DtmfDigitEvent } from '../dtmf/rfc4733';
import { MediaError } from '../errors';
import type { AudioPort, RemotePortRef } from '../joint/audio-port';
import type { RtpHeader } from '../rtp/packet';
import type { RtpSessionStats } from '../rtp/rtp-session';
import type { PromptPlayback } from '../tones/prompt-player';
import { STATS_FIELDS, STATS_STRIDE } from './protocol';
import type { MediaWorker } from './media-workers';

type RemoteRtpSessionEvents = {
  /**
   * A received packet, while someone listens (IVR speech capture): the worker sends them in
   * chunks (TAP_CHUNK_MS), so they come in bursts. The header is reused: copy what you keep.
   */
  packet: [RtpHeader, Buffer];
  dtmf: [DtmfDigitEvent];
  error: [Error];
  foreign: [address: string, port: number];
  latched: [address: string, port: number];
  /** The worker holding this session died: the session is gone, its call must end. */
  lost: [];
};

/**
 * The main thread's handle on an RTP session that lives on a media worker: the same control
 * surface as RtpSession (configure, setRemote, setSrtp, pause/resume, close, stats, events) as
 * messages, with counters read from the worker's shared stats table. Packets never come here:
 * what plays into the session (tones, digits) and where its audio goes (the joint) run on the worker.
 */
export class RemoteRtpSession extends EventEmitter<RemoteRtpSessionEvents> {
  private remoteAddress: string | null = null;
  private remotePort = 0;
  private telephoneEventPt = -1;
  private paused = false;
  private closed = false;
  /** The counters as they were at close (the slot then goes to another session). */
  private finalStats: RtpSessionStats | null = null;
  private finalJointSent: number | null = null;
  private captureTid: number | null = null;
  private readonly captureHeader: RtpHeader = { version: 2, padding: false, extension: false, csrcCount: 0, marker: false, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0 };
  private prompt: { pid: number; onEnd: () => void } | null = null;
  private nextPrompt = 1;

  constructor(
    readonly worker: MediaWorker,
    readonly sid: number,
    readonly slot: number,
    readonly localPort: number,
    private readonly releasePort: (port: number) => void,
  ) {
    super();
    // Received packets cross to this thread only while someone listens for them.
    const events = this as EventEmitter;
    events.on('newListener', (event: string | symbol) => {
      if (event === 'packet' && this.captureTid === null && !this.closed) this.startCapture();
    });
    events.on('removeListener', (event: string | symbol) => {
      if (event === 'packet' && this.listenerCount('packet') === 0) this.stopCapture();
    });
  }

  /** A copy of the worker's counters, at most STATS_REFRESH_MS old (after close: as at close). */
  get stats(): RtpSessionStats {
    return this.finalStats ?? readStats(this.worker.statsTable, this.slot);
  }

  /** Frames the session's joint port was handed (as at close, once closed). */
  get jointSent(): number {
    return this.finalJointSent ?? this.worker.statsTable[this.slot * STATS_STRIDE + STATS_STRIDE - 1];
  }

  get isClosed(): boolean {
    return this.closed;
  }

  setRemote(address: string, port: number): void {
    // Checked here too, so a bad SDP fails in the caller's stack like the local session's does.
    if (!isIPv4(address)) throw new Error(`RTP remote must be an IPv4 literal, got "${address}"`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid RTP remote port ${port}`);
    if (address !== '0.0.0.0') {
      this.remoteAddress = address;
      this.remotePort = port;
    }
    this.send({ op: 'remote', sid: this.sid, address, port });
  }

  configure(opts: { payloadType: number; telephoneEventPayloadType?: number; clockRate?: number }): void {
    this.telephoneEventPt = opts.telephoneEventPayloadType === undefined ? -1 : opts.telephoneEventPayloadType & 0x7f;
    this.send({ op: 'configure', sid: this.sid, ...opts });
  }

  setSrtp(keys: { localKeySalt: Buffer; remoteKeySalt: Buffer } | null): void {
    this.send({ op: 'srtp', sid: this.sid, keys: keys && { local: new Uint8Array(keys.localKeySalt), remote: new Uint8Array(keys.remoteKeySalt) } });
  }

  /** Where the session sends: the SDP's address, or the source it latched to. */
  get remote(): { address: string; port: number } | null {
    return this.remoteAddress === null ? null : { address: this.remoteAddress, port: this.remotePort };
  }

  /** @internal The worker's session latched to another source (symmetric RTP): it sends there now. */
  noteLatched(address: string, port: number): void {
    this.remoteAddress = address;
    this.remotePort = port;
  }

  get telephoneEventPayloadType(): number {
    return this.telephoneEventPt;
  }

  pause(): void {
    this.paused = true;
    this.send({ op: 'pause', sid: this.sid });
  }

  resume(): void {
    this.paused = false;
    this.send({ op: 'resume', sid: this.sid });
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** The session as a joint participant (the joint must be on the same worker). */
  port(payloadType: number): AudioPort {
    const session = this;
    return new RemoteAudioPort({
      worker: this.worker,
      source: { kind: 'rtp', sid: this.sid, payloadType },
      get jointSent() {
        return session.jointSent;
      },
    });
  }

  /**
   * Plays `frames` once on the worker (the IVR's prompts), then `onEnd`; a new prompt or stop()
   * replaces it without onEnd.
   */
  playPrompt(frames: readonly Buffer[], onEnd: () => void): PromptPlayback {
    return new RemotePromptPlayer(this, frames, onEnd);
  }

  /** @internal */
  startPrompt(frames: readonly Buffer[], onEnd: () => void): number {
    const pid = this.nextPrompt++;
    this.prompt = { pid, onEnd };
    this.send({ op: 'prompt', sid: this.sid, key: this.worker.framesKey(frames), pid });
    return pid;
  }

  /** @internal */
  stopPrompt(pid: number): void {
    if (this.prompt?.pid !== pid) return;
    this.prompt = null;
    this.send({ op: 'prompt-stop', sid: this.sid });
  }

  /** @internal */
  notePromptEnd(pid: number): void {
    const p = this.prompt;
    if (p?.pid !== pid) return;
    this.prompt = null;
    p.onEnd();
  }

  close(): void {
    if (this.closed) return;
    this.stopCapture();
    this.prompt = null;
    this.finalStats = this.stats;
    this.finalJointSent = this.jointSent;
    this.closed = true;
    this.worker.post({ op: 'close', sid: this.sid });
    this.worker.forget(this);
    this.releasePort(this.localPort);
  }

  /** @internal The worker died: nothing to close there any more. */
  lose(): void {
    if (this.closed) return;
    this.finalStats = this.stats;
    this.closed = true;
    this.releasePort(this.localPort);
    this.emit('lost');
  }

  private send(m: Parameters<MediaWorker['post']>[0]): void {
    if (!this.closed) this.worker.post(m);
  }

  private startCapture(): void {
    const h = this.captureHeader;
    const tid = this.worker.addTap((pt, payload, ts, ssrc) => {
      h.payloadType = pt;
      h.timestamp = ts;
      h.ssrc = ssrc;
      this.emit('packet', h, payload);
    });
    this.captureTid = tid;
    this.send({ op: 'capture', sid: this.sid, tid });
  }

  private stopCapture(): void {
    if (this.captureTid === null) return;
    this.worker.removeTap(this.captureTid);
    this.captureTid = null;
    this.send({ op: 'capture-stop', sid: this.sid });
  }
}

/** One prompt on a remote session: the worker's clock paces it; its end comes back as a message. */
class RemotePromptPlayer implements PromptPlayback {
  private pid: number | null = null;
  private finished = false;
  constructor(
    private readonly session: RemoteRtpSession,
    private readonly frames: readonly Buffer[],
    private readonly onEnd: () => void,
  ) {}
  start(): void {
    if (this.pid !== null || this.finished) return;
    if (this.frames.length === 0 || this.session.isClosed) {
      this.finished = true;
      if (this.frames.length === 0) this.onEnd();
      return;
    }
    this.pid = this.session.startPrompt(this.frames, () => {
      this.finished = true;
      this.pid = null;
      this.onEnd();
    });
  }
  stop(): void {
    this.finished = true;
    if (this.pid !== null) this.session.stopPrompt(this.pid);
    this.pid = null;
  }
  get playing(): boolean {
    return this.pid !== null;
  }
}

/** Plays a looped sound into a remote session; the worker's clock paces it. */
export class RemoteTonePlayer {
  private on = false;
  constructor(
    private readonly session: RemoteRtpSession,
    private readonly frames: readonly Buffer[],
  ) {
    if (frames.length === 0) throw new Error('TonePlayer needs at least one frame');
  }
  start(): void {
    if (this.on) return;
    this.on = true;
    this.session.worker.post({ op: 'tone', sid: this.session.sid, key: this.session.worker.framesKey(this.frames) });
  }
  stop(): void {
    if (!this.on) return;
    this.on = false;
    if (!this.session.isClosed) this.session.worker.post({ op: 'tone', sid: this.session.sid, key: null });
  }
  get playing(): boolean {
    return this.on;
  }
}

/** Sends RFC 4733 digits on a remote session (the worker's DtmfSender). */
export class RemoteDtmfSender {
  constructor(private readonly session: RemoteRtpSession) {}
  /** Not known on this side: the worker holds the session's joint audio back while it sends. */
  get active(): boolean {
    return false;
  }
  send(digits: string): boolean {
    if (this.session.telephoneEventPayloadType < 0) return false;
    this.session.worker.post({ op: 'digits', sid: this.session.sid, digits });
    return true;
  }
  stop(): void {
    if (!this.session.isClosed) this.session.worker.post({ op: 'digits-stop', sid: this.session.sid });
  }
}

/** A remote session or WebRTC leg as a joint participant: only a RemoteJoint on the same worker can take it. */
export class RemoteAudioPort implements AudioPort {
  constructor(readonly remote: RemotePortRef) {}
  sendAudio(): void {
    throw new MediaError('MEDIA_IN_WORKER', 'this port lives on a media worker: join it to a joint on that worker');
  }
  on(): this {
    throw new MediaError('MEDIA_IN_WORKER', 'this port lives on a media worker: its audio does not come to the main thread');
  }
  off(): this {
    return this;
  }
}

function readStats(table: Float64Array, slot: number): RtpSessionStats {
  const at = (name: (typeof STATS_FIELDS)[number]): number => table[slot * STATS_STRIDE + STATS_FIELDS.indexOf(name)];
  return {
    packetsSent: at('packetsSent'),
    octetsSent: at('octetsSent'),
    packetsReceived: at('packetsReceived'),
    octetsReceived: at('octetsReceived'),
    packetsDropped: at('packetsDropped'),
    packetsForeign: at('packetsForeign'),
    sendOverruns: at('sendOverruns'),
    lastReceivedAt: at('lastReceivedAt'),
    srtpRejected: at('srtpRejected'),
  };
}
