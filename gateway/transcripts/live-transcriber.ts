import type { RecordingTap } from '../../media';
import type { Recognition, SpeechEngine, SpeechHypothesis, Speaker, TranscriptSink } from '../../media';
import { isSpeechError } from '../../media';
import { decodeTable, type G711Codec } from '../../media';
import { lineNoise } from '../../media';
import type { Log } from '../../lib/log';

/** Audio is handed to the engine in batches, off the packet path. */
const FEED_MS = 200;
/** 8 kHz samples a side may queue between feeds (4 s); older ones are overwritten and counted. */
const RING_SAMPLES = 32_000;
/** A side more than this behind the wall clock (nothing sent: hold, DTX) is padded with silence so both sides keep one timeline. */
const PAD_AFTER_SAMPLES = 1600;
/**
 * What a side that sent nothing is padded with: quiet noise (about -66 dBFS), never digital zeros,
 * on which the engine's live cepstral mean drifts away from speech and the next words decode badly.
 */
const COMFORT_NOISE = lineNoise(8000);
/** After a failed recognition, a side tries again this much later. */
const RETRY_MS = 5000;
/** After a refused one (SPEECH_BUSY: e.g. a rotated recognition still flushing), sooner; its audio waits. */
const BUSY_RETRY_MS = 1000;
/** Audio a side keeps while no recognition takes it (10 s); older is dropped and counted. */
const MAX_PENDING_SAMPLES = 80_000;

export interface LiveTranscriberOptions {
  callId: string;
  codec: G711Codec;
  engine: SpeechEngine;
  sink: TranscriptSink;
  speakers: readonly Speaker[];
  /** Audio per recognition before it is rotated at an utterance boundary (s). */
  segmentS: number;
  log: Pick<Log, 'info' | 'warn'>;
  now?: () => number;
}

/** One side's decoded audio and its current recognition. */
class Side {
  readonly ring = new Int16Array(RING_SAMPLES);
  head = 0;
  size = 0;
  overwritten = 0;
  /** Samples taken off the ring since the transcriber started (this side's timeline). */
  fed = 0;
  /** Taken, not yet given to a recognition (none runs: refused, rotating). */
  pending: Int16Array[] = [];
  pendingSamples = 0;
  /** Samples no recognition ever got (refused for longer than MAX_PENDING_SAMPLES). */
  lost = 0;
  rec: Recognition | null = null;
  /** `fed` when the current recognition started: its times are relative to this. */
  recBase = 0;
  retryAt = 0;
  /** A final arrived since the last feed: a good moment to rotate. */
  boundary = false;
  failures = 0;

  constructor(readonly speaker: Speaker) {}

  /** On the packet path: decode into the ring, nothing allocated. */
  push(payload: Buffer, table: Int16Array): void {
    const ring = this.ring;
    const cap = ring.length;
    for (let i = 0; i < payload.length; i++) {
      ring[(this.head + this.size) % cap] = table[payload[i]];
      if (this.size === cap) {
        this.head = (this.head + 1) % cap;
        this.overwritten++;
      } else this.size++;
    }
  }

  /** Off the packet path: what waits, plus silence up to `padTo` samples on this side's timeline. */
  drain(padTo: number): Int16Array | null {
    const pad = Math.max(0, padTo - (this.fed + this.size));
    const n = this.size + pad;
    if (n === 0) return null;
    const out = new Int16Array(n);
    const cap = this.ring.length;
    for (let i = 0; i < this.size; i++) out[i] = this.ring[(this.head + i) % cap];
    for (let i = this.size; i < n; i++) out[i] = COMFORT_NOISE[i % COMFORT_NOISE.length];
    this.head = (this.head + this.size) % cap;
    this.size = 0;
    return out;
  }
}

/**
 * The built-in live transcript of one bridged call: taps the call's media (left: the customer,
 * right: what the customer hears, i.e. the agent), decodes G.711 into per-side rings on the packet
 * path (no allocation there), and every 200 ms feeds each side to its own dictation recognition.
 * Final hypotheses become utterances in the call's TranscriptSink, timed from the start of the
 * transcript. A recognition is rotated after `segmentS` of audio at an utterance boundary; one
 * that fails or is refused (SPEECH_BUSY) is retried later. The call never waits on the engine.
 */
export class LiveTranscriber implements RecordingTap {
  private readonly table: Int16Array;
  private readonly sides: Side[];
  private readonly bySpeaker: { caller: Side | null; agent: Side | null };
  private readonly startedAt: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Rotated recognitions still flushing their last words (stop() waits for them too). */
  private readonly ending = new Set<Promise<void>>();
  /** Hypotheses already given to the sink (end() resolves with the last `final` again). */
  private readonly seen = new WeakSet<SpeechHypothesis>();

  constructor(private readonly opts: LiveTranscriberOptions) {
    this.table = decodeTable(opts.codec);
    this.sides = [...new Set(opts.speakers)].map((s) => new Side(s));
    this.bySpeaker = { caller: this.sides.find((s) => s.speaker === 'caller') ?? null, agent: this.sides.find((s) => s.speaker === 'agent') ?? null };
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.timer = setInterval(() => this.feed(), FEED_MS);
    this.timer.unref();
  }

  pushCaller(payload: Buffer): void {
    this.bySpeaker.caller?.push(payload, this.table);
  }

  pushAgent(payload: Buffer): void {
    this.bySpeaker.agent?.push(payload, this.table);
  }

  /** Samples lost because the feed fell behind (both sides). */
  get overwritten(): number {
    return this.sides.reduce((n, s) => n + s.overwritten, 0);
  }

  /** Samples never transcribed because no recognition took them in time (both sides). */
  get untranscribed(): number {
    return this.sides.reduce((n, s) => n + s.lost, 0);
  }

  /** Ends feeding; each recognition is flushed so the last words still reach the sink. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.feed();
    this.stopped = true;
    for (const side of this.sides) side.lost += side.pendingSamples;
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.sides.map((s) => this.endRecognition(s)), ...this.ending]);
  }

  private feed(): void {
    if (this.stopped) return;
    const padTo = Math.max(0, Math.floor((this.now() - this.startedAt) * 8) - PAD_AFTER_SAMPLES);
    for (const side of this.sides) {
      const samples = side.drain(padTo);
      if (samples) {
        side.pending.push(samples);
        side.pendingSamples += samples.length;
        side.fed += samples.length;
      }
      if (!side.rec && this.now() >= side.retryAt) this.startRecognition(side);
      if (side.rec) {
        for (const p of side.pending) side.rec.write(p);
        side.pending = [];
        side.pendingSamples = 0;
      } else {
        while (side.pendingSamples > MAX_PENDING_SAMPLES) {
          const old = side.pending.shift() as Int16Array;
          side.pendingSamples -= old.length;
          side.lost += old.length;
        }
      }
      if (side.rec && side.boundary && side.fed - side.recBase >= this.opts.segmentS * 8000) {
        const ending = this.endRecognition(side);
        this.ending.add(ending);
        void ending.finally(() => this.ending.delete(ending));
      }
      side.boundary = false;
    }
  }

  private startRecognition(side: Side): void {
    let rec: Recognition;
    try {
      rec = this.opts.engine.recognize({ mode: 'dictation', tag: `${this.opts.callId}:${side.speaker}` });
    } catch (err) {
      const busy = isSpeechError(err, 'SPEECH_BUSY');
      side.retryAt = this.now() + (busy ? BUSY_RETRY_MS : RETRY_MS);
      if (side.failures++ === 0) this.opts.log.warn({ err, speaker: side.speaker, code: isSpeechError(err) ? err.code : undefined }, 'live transcript: the engine refused a recognition; retrying, the call goes on');
      return;
    }
    side.rec = rec;
    // Its first sample is the oldest one waiting.
    side.recBase = side.fed - side.pendingSamples;
    const base = side.recBase;
    rec.on('final', (h) => {
      side.boundary = true;
      this.emit(side.speaker, base, h);
    });
    rec.on('error', (err) => {
      if (side.rec === rec) side.rec = null;
      side.retryAt = this.now() + RETRY_MS;
      if (side.failures++ < 3) this.opts.log.warn({ err, speaker: side.speaker }, 'live transcript: recognition failed; retrying, the call goes on');
    });
  }

  private async endRecognition(side: Side): Promise<void> {
    const rec = side.rec;
    if (!rec) return;
    side.rec = null;
    const base = side.recBase;
    try {
      const last = await rec.end();
      // end() resolves with the last utterance; it is also emitted as `final`, unless the engine only returns it.
      if (last && !this.seen.has(last)) this.emit(side.speaker, base, last);
    } catch (err) {
      this.opts.log.warn({ err, speaker: side.speaker }, 'live transcript: the last words of a recognition were lost');
      rec.close();
    }
  }

  private emit(speaker: Speaker, baseSamples: number, h: SpeechHypothesis): void {
    if (this.seen.has(h)) return;
    this.seen.add(h);
    if (!h.text.trim()) return;
    const baseMs = baseSamples / 8;
    this.opts.sink.utterance({
      callId: this.opts.callId,
      speaker,
      startMs: baseMs + h.startMs,
      endMs: baseMs + h.endMs,
      text: h.text,
      confidence: h.confidence,
      source: `builtin:${this.opts.engine.name}`,
    });
  }
}

