import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import WebSocket, { type RawData } from 'ws';
import type { RecordingTap } from '../../joint/audio-port';
import type { G711Codec } from '../../tones/g711';
import type { TranscriptSink } from '../contract';
import {
  AUDIOHOOK_VERSION,
  OFFERED_MEDIA,
  durationMs,
  isoDuration,
  parseServerMessage,
  type ClientMessage,
  type ClientMessageType,
  type ClientParameters,
  type CloseReason,
  type MediaChannel,
  type Participant,
  type ServerMessage,
  type TranscriptEntity,
} from './protocol';
import { StereoBuffer } from './stereo-buffer';

export interface ForkSessionOptions {
  /** The endpoint's name in speech.fork.endpoints (labels utterances `fork:<name>`). */
  endpointName: string;
  url: string;
  apiKey?: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string };
  organizationId: string;
  /** Above this many bytes queued on the socket, audio is dropped and counted. */
  maxBufferedBytes: number;
  openTimeoutMs: number;
  pingMs: number;
  /** The call's law; PCMA is transcoded to PCMU. */
  codec: G711Codec;
  callId: string;
  participant: Omit<Participant, 'id'>;
  sink: TranscriptSink;
  /** ms from the start of the call's media to the fork's position 0 (utterance times are the call's). */
  mediaOffsetMs?: number;
  /** The connected peer's address must pass this (the URL is a literal address; this catches a redirect or proxy). */
  addressAllowed?: (address: string) => boolean;
  /** How often audio is framed and sent (ms). */
  frameMs?: number;
  /** The close transaction's limit before the socket is dropped. */
  closeTimeoutMs?: number;
  /** Utterances per second passed to the sink; a flood beyond is dropped and counted. */
  maxUtterancesPerS?: number;
  now?: () => number;
}

/** Why a fork ended. Only `end` is the normal case; every other one is the endpoint's doing. */
export type ForkEndReason =
  | 'end'
  | 'refused'
  | 'open-timeout'
  | 'disconnected'
  | 'pong-timeout'
  | 'server-disconnect'
  | 'misbehaving'
  | 'address-refused'
  | 'failed';

/** What went wrong without ending the fork (the owner counts and logs them rate-limited). */
export type ForkProblem = 'bad-message' | 'backpressure' | 'utterance-flood' | 'sink-failed' | 'overrun';

export interface ForkStats {
  /** Audio sent (bytes of binary frames) and samples per channel sent. */
  bytesSent: number;
  samplesSent: number;
  framesSent: number;
  /** Frames and samples per channel dropped because the socket's queue was above the limit. */
  framesDropped: number;
  samplesDropped: number;
  /** Samples lost because framing fell behind the packet path (the event loop stalled). */
  samplesOverwritten: number;
  /** Samples per channel the endpoint asked to pause. */
  samplesPaused: number;
  badMessages: number;
  utterances: number;
  utterancesDropped: number;
  partials: number;
}

type ForkEvents = {
  opened: [channels: readonly MediaChannel[]];
  problem: [kind: ForkProblem, detail: string];
  ended: [reason: ForkEndReason, detail: string, stats: ForkStats];
};

type State = 'idle' | 'connecting' | 'opening' | 'open' | 'closing' | 'closed';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A misbehaving endpoint gets this many bad messages before the fork gives up on it. */
const MAX_BAD_MESSAGES = 50;
/** Three pings without a pong: the endpoint is gone or not reading. */
const MAX_OUTSTANDING_PINGS = 3;

/**
 * One call's AudioHook session (client side): connects, sends `open` offering PCMU 8 kHz stereo
 * (external = the customer, internal = what the customer hears), streams the call's audio from its
 * tap, answers pause/resume, pings, and turns the endpoint's final transcripts into
 * TranscriptUtterances for the sink. Nothing the endpoint does reaches the call: the tap only
 * copies into rings; a slow endpoint costs dropped (counted) frames; garbage is counted; a dead one
 * ends the fork. Never throws after construction.
 */
export class AudioHookSession extends EventEmitter<ForkEvents> {
  readonly id = randomUUID();
  private state: State = 'idle';
  private ws: WebSocket | null = null;
  private readonly buffer: StereoBuffer;
  private channels: readonly MediaChannel[] = ['external', 'internal'];
  private seq = 0;
  private serverseq = 0;
  /** Samples per channel since `open` (sent, dropped or paused): AudioHook's position. */
  private position = 0;
  private paused = false;
  private pausedFrom = 0;
  /** Start of a backpressure gap not yet reported with `discarded`. */
  private gapStart: number | null = null;
  private outstandingPings = 0;
  private lastPingAt = 0;
  private rttMs: number | null = null;
  private frameTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private utteranceTokens: number;
  private utteranceRefill: number;
  private readonly now: () => number;
  private readonly ended: Promise<void>;
  private resolveEnded!: () => void;
  private readonly counters: ForkStats = {
    bytesSent: 0,
    samplesSent: 0,
    framesSent: 0,
    framesDropped: 0,
    samplesDropped: 0,
    samplesOverwritten: 0,
    samplesPaused: 0,
    badMessages: 0,
    utterances: 0,
    utterancesDropped: 0,
    partials: 0,
  };

  /** Where the call's joint pushes audio: copies into rings only (packet path). */
  readonly tap: RecordingTap = {
    pushCaller: (payload) => {
      if (this.state === 'open') this.buffer.pushExternal(payload);
    },
    pushAgent: (payload) => {
      if (this.state === 'open') this.buffer.pushInternal(payload);
    },
  };

  constructor(private readonly opts: ForkSessionOptions) {
    super();
    this.buffer = new StereoBuffer(opts.codec);
    this.now = opts.now ?? Date.now;
    this.utteranceTokens = opts.maxUtterancesPerS ?? 20;
    this.utteranceRefill = this.now();
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  get stats(): ForkStats {
    return { ...this.counters, samplesOverwritten: this.buffer.overwritten };
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Connects; the outcome comes as `opened` or `ended`. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'connecting';
    const o = this.opts;
    const headers: Record<string, string> = {
      'Audiohook-Organization-Id': o.organizationId,
      'Audiohook-Correlation-Id': o.callId,
      'Audiohook-Session-Id': this.id,
    };
    if (o.apiKey !== undefined) headers['X-API-KEY'] = o.apiKey;
    let ws: WebSocket;
    try {
      // ws hands its options to tls.connect: servername checks a literal-address URL's certificate.
      const options: WebSocket.ClientOptions & { servername?: string } = {
        headers,
        handshakeTimeout: o.openTimeoutMs,
        // What an endpoint sends is small JSON; a huge frame is hostile.
        maxPayload: 256 * 1024,
        perMessageDeflate: false,
        followRedirects: false,
        ca: o.tls?.ca,
        cert: o.tls?.cert,
        key: o.tls?.key,
        servername: o.tls?.servername,
      };
      ws = new WebSocket(o.url, options);
    } catch (err) {
      this.end('failed', (err as Error).message);
      return;
    }
    this.ws = ws;
    this.deadline = setTimeout(() => this.end('open-timeout', `no "opened" within ${o.openTimeoutMs} ms`), o.openTimeoutMs);
    ws.on('upgrade', (res) => {
      const addr = res.socket.remoteAddress ?? '';
      if (o.addressAllowed && !o.addressAllowed(addr)) this.end('address-refused', `connected to ${addr}, outside speech.fork.allow`);
    });
    ws.on('unexpected-response', (_req, res) => this.end('refused', `HTTP ${res.statusCode ?? '?'} on upgrade`));
    ws.on('open', () => this.onSocketOpen());
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('error', (err) => this.end(this.state === 'connecting' ? 'refused' : 'failed', err.message));
    ws.on('close', (code) => (this.state === 'closing' ? this.closingDone(`socket closed (${code})`) : this.end('disconnected', `socket closed (${code})`)));
  }

  /**
   * Ends the session the polite way (`close`, wait for `closed`, at most closeTimeoutMs), or at
   * once when it never opened. Resolves when it has ended; idempotent.
   */
  close(reason: CloseReason = 'end'): Promise<void> {
    if (this.state === 'open') {
      this.sendAudio(); // what is framed-ready goes out before `close`
      this.state = 'closing';
      this.stopTimers();
      this.send('close', { reason });
      const ms = this.opts.closeTimeoutMs ?? 2000;
      this.deadline = setTimeout(() => this.closingDone(`no "closed" within ${ms} ms`), ms);
    } else if (this.state !== 'closing' && this.state !== 'closed') {
      this.end('end', 'closed before the endpoint opened');
    }
    return this.ended;
  }

  // ---- socket ---------------------------------------------------------------------------------

  private onSocketOpen(): void {
    if (this.state !== 'connecting') return;
    this.state = 'opening';
    const o = this.opts;
    this.send('open', {
      organizationId: o.organizationId,
      conversationId: UUID_RE.test(o.callId) ? o.callId : randomUUID(),
      participant: { id: randomUUID(), ...o.participant },
      media: OFFERED_MEDIA,
    });
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.state === 'closed') return;
    if (isBinary) {
      this.bad('binary frame from the endpoint');
      return;
    }
    const parsed = parseServerMessage(rawText(data));
    if (!parsed.ok) {
      this.bad(parsed.reason);
      return;
    }
    const m = parsed.message;
    this.serverseq = m.seq;
    this.dispatch(m);
  }

  private dispatch(m: ServerMessage): void {
    switch (m.type) {
      case 'opened':
        return this.onOpened(m.parameters);
      case 'pong':
        if (this.outstandingPings > 0) this.rttMs = this.now() - this.lastPingAt;
        this.outstandingPings = 0;
        return;
      case 'pause':
        if (this.state !== 'open') return this.bad('"pause" before "opened"');
        if (!this.paused) {
          this.paused = true;
          this.pausedFrom = this.position;
          this.send('paused', {});
        }
        return;
      case 'resume':
        if (this.state !== 'open') return this.bad('"resume" before "opened"');
        if (this.paused) {
          this.paused = false;
          this.send('resumed', { start: isoDuration(this.position), discarded: isoDuration(this.position - this.pausedFrom) });
        }
        return;
      case 'updated':
        return;
      case 'event':
        if (this.state !== 'open' && this.state !== 'closing') return this.bad('"event" before "opened"');
        for (const e of m.parameters.entities) {
          if (e.type === 'transcript') this.onTranscript((e as TranscriptEntity).data);
        }
        return;
      case 'disconnect':
      case 'reconnect':
        // The endpoint wants to end: close transaction, then the fork is over (no reconnect: the call goes on).
        if (this.state === 'open') {
          this.endReason = { reason: 'server-disconnect', detail: m.type === 'disconnect' ? `${m.parameters.reason}${m.parameters.info ? `: ${m.parameters.info}` : ''}` : 'reconnect' };
          void this.close(m.type === 'disconnect' ? 'disconnect' : 'reconnect');
        } else if (this.state === 'opening') {
          this.end('refused', `"${m.type}" instead of "opened"`);
        }
        return;
      case 'closed':
        if (this.state === 'closing') {
          this.closingDone('closed');
        } else {
          this.bad('"closed" without "close"');
        }
        return;
    }
  }

  /** Why the close transaction runs when the endpoint started it (disconnect, reconnect). */
  private endReason: { reason: ForkEndReason; detail: string } | null = null;

  /** The close transaction is over (closed, the socket went, or its time ran out). */
  private closingDone(detail: string): void {
    this.end(this.endReason?.reason ?? 'end', this.endReason?.detail ?? detail);
  }

  private onOpened(p: Extract<ServerMessage, { type: 'opened' }>['parameters']): void {
    if (this.state !== 'opening') return this.bad('"opened" twice');
    const media = p.media[0];
    if (media === undefined || media.format !== 'PCMU' || new Set(media.channels).size !== media.channels.length) {
      return this.end('refused', 'the endpoint chose no media this box offers (PCMU 8 kHz)');
    }
    clearTimeout(this.deadline);
    this.channels = media.channels;
    this.state = 'open';
    this.buffer.clear();
    if (p.startPaused === true) {
      this.paused = true;
      this.pausedFrom = 0;
    }
    const frameMs = this.opts.frameMs ?? 100;
    this.frameTimer = setInterval(() => this.sendAudio(), frameMs);
    this.frameTimer.unref();
    this.pingTimer = setInterval(() => this.ping(), this.opts.pingMs);
    this.pingTimer.unref();
    this.emit('opened', this.channels);
  }

  // ---- audio ----------------------------------------------------------------------------------

  private sendAudio(): void {
    const ws = this.ws;
    if (this.state !== 'open' || ws === null) return;
    const congested = ws.bufferedAmount > this.opts.maxBufferedBytes;
    if (this.gapStart !== null && !congested) {
      // The backlog drained: tell the endpoint what it missed before any more audio.
      this.send('discarded', { start: isoDuration(this.gapStart), discarded: isoDuration(this.position - this.gapStart) });
      this.gapStart = null;
    }
    const n = this.buffer.ready();
    if (n === 0) return;
    if (this.paused) {
      this.position += this.buffer.skip(n);
      this.counters.samplesPaused += n;
      return;
    }
    if (congested) {
      if (this.gapStart === null) {
        this.gapStart = this.position;
        this.emit('problem', 'backpressure', `${ws.bufferedAmount} bytes queued to the endpoint: dropping audio`);
      }
      this.position += this.buffer.skip(n);
      this.counters.framesDropped++;
      this.counters.samplesDropped += n;
      return;
    }
    const frame = this.buffer.take(this.channels, n);
    this.position += n;
    ws.send(frame, { binary: true });
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
    this.counters.samplesSent += n;
  }

  private ping(): void {
    if (this.state !== 'open') return;
    if (this.outstandingPings >= MAX_OUTSTANDING_PINGS) {
      this.end('pong-timeout', `${this.outstandingPings} pings unanswered`);
      return;
    }
    this.outstandingPings++;
    this.lastPingAt = this.now();
    this.send('ping', this.rttMs === null ? {} : { rtt: isoDuration(this.rttMs, 1000) });
  }

  // ---- transcripts ----------------------------------------------------------------------------

  private onTranscript(d: TranscriptEntity['data']): void {
    if (!d.isFinal) {
      this.counters.partials++;
      return;
    }
    const alt = d.alternatives[0];
    const interp = alt.interpretations.find((i) => i.type === 'display') ?? alt.interpretations[0];
    const text = interp.transcript.trim().replace(/\s+/g, ' ');
    if (text === '') return;
    if (!this.takeUtteranceToken()) {
      this.counters.utterancesDropped++;
      if (this.counters.utterancesDropped === 1) this.emit('problem', 'utterance-flood', 'the endpoint sends utterances faster than the limit: dropping');
      return;
    }
    const offset = this.opts.mediaOffsetMs ?? 0;
    const startMs = offset + (d.offset !== undefined ? (durationMs(d.offset) ?? 0) : Math.round(this.position / 8));
    const endMs = startMs + (d.duration !== undefined ? (durationMs(d.duration) ?? 0) : 0);
    this.counters.utterances++;
    try {
      this.opts.sink.utterance({
        callId: this.opts.callId,
        speaker: d.channel === 'external' ? 'caller' : 'agent',
        startMs,
        endMs,
        text,
        confidence: alt.confidence,
        source: `fork:${this.opts.endpointName}`,
        ...(d.sentiment !== undefined ? { sentiment: d.sentiment } : {}),
      });
    } catch (err) {
      this.emit('problem', 'sink-failed', (err as Error).message);
    }
  }

  private takeUtteranceToken(): boolean {
    const rate = this.opts.maxUtterancesPerS ?? 20;
    const now = this.now();
    this.utteranceTokens = Math.min(rate * 2, this.utteranceTokens + ((now - this.utteranceRefill) / 1000) * rate);
    this.utteranceRefill = now;
    if (this.utteranceTokens < 1) return false;
    this.utteranceTokens--;
    return true;
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private send<T extends ClientMessageType>(type: T, parameters: ClientParameters[T]): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) return;
    const msg: ClientMessage<T> = {
      version: AUDIOHOOK_VERSION,
      type,
      id: this.id,
      seq: ++this.seq,
      serverseq: this.serverseq,
      position: isoDuration(this.position),
      parameters,
    };
    ws.send(JSON.stringify(msg));
  }

  private bad(reason: string): void {
    this.counters.badMessages++;
    this.emit('problem', 'bad-message', reason);
    if (this.counters.badMessages >= MAX_BAD_MESSAGES) this.end('misbehaving', `${this.counters.badMessages} bad messages`);
  }

  private stopTimers(): void {
    clearInterval(this.frameTimer);
    clearInterval(this.pingTimer);
    this.frameTimer = undefined;
    this.pingTimer = undefined;
  }

  private end(reason: ForkEndReason, detail: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopTimers();
    clearTimeout(this.deadline);
    const ws = this.ws;
    if (ws !== null) {
      ws.removeAllListeners('message');
      // A late socket error after the end must not be unhandled.
      ws.on('error', () => undefined);
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      // A peer that never answers the WebSocket close: drop the socket.
      setTimeout(() => ws.terminate(), 1000).unref();
    }
    this.emit('ended', reason, detail, this.stats);
    this.resolveEnded();
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
