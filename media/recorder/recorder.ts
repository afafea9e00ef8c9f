import { performance } from 'node:perf_hooks';
import { alawToLinear, linearToAlaw, linearToUlaw, SILENCE_BYTE, ulawToLinear, type G711Codec } from '../tones/g711';
import { RECORDING_SAMPLE_RATE } from './wav';

/**
 * Where the recorder's interleaved stereo G.711 frames go (the vault's RecordingWriter). `write`
 * must consume or copy `data[offset, offset+length)` before it returns: the recorder reuses it.
 */
export interface RecordingSink {
  write(data: Buffer, offset: number, length: number): void;
}

export type RecorderEvent =
  | { type: 'paused'; reason: string; actor: string; atMs: number }
  | { type: 'resumed'; actor: string; atMs: number; pausedMs: number };

export interface RecorderOptions {
  /** The recording's codec: μ-law → WAV format 7, A-law → WAV format 6 (see wav.ts). */
  codec: G711Codec;
  sink: RecordingSink;
  /** How often buffered audio is handed to the sink (ms). */
  flushMs?: number;
  /** How long audio waits for late/reordered packets before it is written (ms). */
  latencyMs?: number;
  /**
   * How far (ms) a channel's RTP timeline may drift from the wall clock before the channel is
   * re-anchored to the wall clock (after 3 consecutive packets that far off: a timestamp jump,
   * a hold after which the source's timestamps did not advance, or clock drift).
   */
  resyncMs?: number;
  /** Monotonic clock in ms (tests inject a fake one). */
  now?: () => number;
  /** false: no timer; the owner calls flushDue() (tests). Default true. */
  autoFlush?: boolean;
  /** Pause/resume, for the audit trail (called synchronously from pause()/resume()). */
  onEvent?: (ev: RecorderEvent) => void;
}

export interface RecorderStats {
  /** Stereo frames (= samples per channel) handed to the sink. */
  frames: number;
  durationMs: number;
  packets: [caller: number, agent: number];
  /** Packets (or parts) that arrived after their place had been written. */
  late: [caller: number, agent: number];
  /** Packets dropped while a channel's timeline was being re-anchored. */
  dropped: [caller: number, agent: number];
  resyncs: [caller: number, agent: number];
  /** Packets ignored while paused. */
  pausedPackets: number;
  pausedMs: number;
}

const CALLER = 0;
const AGENT = 1;
const RESYNC_AFTER = 3;
const FRAMES_PER_MS = RECORDING_SAMPLE_RATE / 1000;

/** Per-channel RTP → recording-timeline mapping; mutated in place, never reallocated. */
class Channel {
  anchored = false;
  ssrc = -1;
  lastTs = 0;
  /** Recording frame index where the packet with `lastTs` starts. */
  lastPos = 0;
  offCount = 0;
  /** Highest frame index written (exclusive). */
  highWater = 0;
  /** A 256-entry transcoding table when the source's law differs from the recording's. */
  table: Uint8Array | null = null;
}

function transcodeTable(from: G711Codec, to: G711Codec): Uint8Array | null {
  if (from === to) return null;
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) t[i] = from === 'PCMU' ? linearToAlaw(ulawToLinear(i)) : linearToUlaw(alawToLinear(i));
  return t;
}

/**
 * Two-channel call recorder: caller left, agent right, interleaved G.711 at 8 kHz.
 *
 * Timeline: frame 0 is when the recorder was created. A channel's first packet is placed at the
 * wall-clock time it arrived (minus its own length); every later packet at the previous one's
 * position plus its RTP timestamp difference. So each channel follows its RTP clock, and the
 * two channels are aligned by the wall-clock offset between their first packets. Whatever is not
 * written — loss, hold, pause, a leg not connected yet — stays the codec's silence byte, so both
 * channels always have the same number of samples.
 *
 * Memory: one preallocated ring of interleaved frames (latency + resync + flush interval, ~2 s).
 * Per packet: arithmetic and a byte copy into the ring; no allocation, no I/O, no logging. Every
 * `flushMs` the frames older than `latencyMs` go to the sink and their ring space is reset to
 * silence.
 */
export class Recorder {
  private readonly sink: RecordingSink;
  private readonly silence: number;
  private readonly ring: Buffer;
  private readonly ringFrames: number;
  private readonly latencyFrames: number;
  private readonly resyncFrames: number;
  private readonly now: () => number;
  private readonly t0: number;
  private readonly channels: [Channel, Channel] = [new Channel(), new Channel()];
  private readonly onEvent: ((ev: RecorderEvent) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Frames [0, flushed) have been handed to the sink. */
  private flushed = 0;
  private paused = false;
  private pausedAt = 0;
  private resumedAt = -Infinity;
  private stopped = false;
  readonly codec: G711Codec;
  readonly stats: RecorderStats = {
    frames: 0, durationMs: 0, packets: [0, 0], late: [0, 0], dropped: [0, 0], resyncs: [0, 0], pausedPackets: 0, pausedMs: 0,
  };

  constructor(opts: RecorderOptions) {
    const flushMs = opts.flushMs ?? 200;
    const latencyMs = opts.latencyMs ?? 400;
    const resyncMs = opts.resyncMs ?? 250;
    this.codec = opts.codec;
    this.sink = opts.sink;
    this.silence = SILENCE_BYTE[opts.codec];
    this.now = opts.now ?? (() => performance.now());
    this.onEvent = opts.onEvent;
    this.latencyFrames = Math.round(latencyMs * FRAMES_PER_MS);
    this.resyncFrames = Math.round(resyncMs * FRAMES_PER_MS);
    // Room for: what waits for late packets, what may run ahead before a resync, one flush
    // interval of timer lateness, and a generous packet (120 ms).
    this.ringFrames = Math.round((latencyMs + resyncMs + 2 * flushMs + 120) * FRAMES_PER_MS);
    this.ring = Buffer.alloc(this.ringFrames * 2, this.silence);
    this.t0 = this.now();
    if (opts.autoFlush !== false) {
      this.timer = setInterval(() => this.flushDue(), flushMs);
      this.timer.unref();
    }
  }

  /** Tells the recorder a leg's payloads are in another G.711 law (e.g. after a re-INVITE). */
  setSourceCodec(channel: 'caller' | 'agent', codec: G711Codec): void {
    this.channels[channel === 'caller' ? CALLER : AGENT].table = transcodeTable(codec, this.codec);
  }

  /** `capturedAt`: when the packet was captured (performance.now() ms), if it arrives late in a batch. */
  pushCaller(payload: Buffer, timestamp: number, ssrc: number, capturedAt?: number): void {
    this.push(CALLER, payload, timestamp, ssrc, capturedAt);
  }

  pushAgent(payload: Buffer, timestamp: number, ssrc: number, capturedAt?: number): void {
    this.push(AGENT, payload, timestamp, ssrc, capturedAt);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Stops capturing audio (card numbers): the gap is recorded as silence; the pause is audited. */
  pause(reason: string, actor = 'agent'): void {
    if (this.paused || this.stopped) return;
    this.paused = true;
    this.pausedAt = this.now();
    this.onEvent?.({ type: 'paused', reason, actor, atMs: Math.round(this.pausedAt - this.t0) });
  }

  resume(actor = 'agent'): void {
    if (!this.paused || this.stopped) return;
    this.paused = false;
    const t = this.now();
    this.resumedAt = t;
    const pausedMs = Math.round(t - this.pausedAt);
    this.stats.pausedMs += pausedMs;
    this.onEvent?.({ type: 'resumed', actor, atMs: Math.round(t - this.t0), pausedMs });
  }

  /** Hands the sink every frame older than the latency window. Called by the timer. */
  flushDue(): void {
    if (this.stopped) return;
    this.flushTo(this.nowFrames() - this.latencyFrames);
  }

  /**
   * Writes everything up to now (or the last sample received, if later) and stops the timer.
   * The sink is not closed: the owner finalises it (RecordingWriter.finalize()).
   */
  stop(): RecorderStats {
    if (this.stopped) return this.stats;
    if (this.paused) this.resume('system');
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const end = Math.max(this.nowFrames(), this.channels[CALLER].highWater, this.channels[AGENT].highWater);
    this.flushTo(end);
    this.stopped = true;
    return this.stats;
  }

  private nowFrames(): number {
    return Math.floor((this.now() - this.t0) * FRAMES_PER_MS);
  }

  private push(ch: number, payload: Buffer, timestamp: number, ssrc: number, capturedAt?: number): void {
    if (this.stopped) return;
    // A batched packet captured before the resume was spoken during the pause (card digits).
    if (this.paused || (capturedAt !== undefined && capturedAt < this.resumedAt)) {
      this.stats.pausedPackets++;
      return;
    }
    const len = payload.length;
    if (len === 0) return;
    const c = this.channels[ch];
    this.stats.packets[ch]++;
    const nowF = capturedAt === undefined ? this.nowFrames() : Math.floor((capturedAt - this.t0) * FRAMES_PER_MS);
    let pos: number;
    if (!c.anchored || c.ssrc !== ssrc) {
      pos = nowF - len;
      c.anchored = true;
      c.ssrc = ssrc;
      c.offCount = 0;
    } else {
      pos = c.lastPos + ((timestamp - c.lastTs) | 0);
      const dev = pos + len - nowF;
      if (dev > this.resyncFrames || dev < -this.resyncFrames) {
        if (++c.offCount < RESYNC_AFTER) {
          this.stats.dropped[ch]++;
          return;
        }
        pos = nowF - len;
        c.offCount = 0;
        this.stats.resyncs[ch]++;
      } else {
        c.offCount = 0;
      }
    }
    c.lastTs = timestamp >>> 0;
    c.lastPos = pos;
    this.place(ch, c, payload, pos, len);
  }

  private place(ch: number, c: Channel, payload: Buffer, pos: number, len: number): void {
    let skip = 0;
    if (pos < this.flushed) {
      skip = this.flushed - pos;
      this.stats.late[ch]++;
      if (skip >= len) return;
    }
    const end = pos + len;
    if (end > this.flushed + this.ringFrames) this.flushTo(end - this.ringFrames);
    if (end > c.highWater) c.highWater = end;
    const ring = this.ring;
    const table = c.table;
    let idx = ((pos + skip) % this.ringFrames) * 2 + ch;
    const limit = this.ringFrames * 2;
    for (let i = skip; i < len; i++) {
      ring[idx] = table === null ? payload[i] : table[payload[i]];
      idx += 2;
      if (idx >= limit) idx -= limit;
    }
  }

  private flushTo(target: number): void {
    if (target <= this.flushed) return;
    const ring = this.ring;
    const rf = this.ringFrames;
    while (this.flushed < target) {
      const start = this.flushed % rf;
      const frames = Math.min(target - this.flushed, rf - start);
      this.sink.write(ring, start * 2, frames * 2);
      ring.fill(this.silence, start * 2, (start + frames) * 2);
      this.flushed += frames;
    }
    this.stats.frames = this.flushed;
    this.stats.durationMs = Math.round(this.flushed / FRAMES_PER_MS);
  }
}
