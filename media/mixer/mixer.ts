import { decodeTable, encodeTable, SILENCE_BYTE, type G711Codec } from '../tones/g711';
import type { MediaClock } from '../tones/media-clock';

/**
 * What a participant hears and who hears it:
 * party: talks to and hears parties and barges (+ coaches when its kind is 'agent');
 * listener: hears parties and barges, heard by nobody; coach: hears parties and barges, heard only
 * by 'agent' parties; barge: hears parties and barges, heard by all.
 */
export type ParticipantRole = 'party' | 'listener' | 'coach' | 'barge';
/** external = an outbound SIP leg (extension, number). */
export type ParticipantKind = 'caller' | 'agent' | 'external';

/** Samples in one clock tick (20 ms at 8 kHz, G.711: one byte per sample). */
export const MIX_FRAME = 160;
/** Receive FIFO size in samples (power of two: index by mask). 256 ms. */
const FIFO_SIZE = 2048;
const FIFO_MASK = FIFO_SIZE - 1;
/** Buffered audio above this (after a tick) is old: drop down to TRIM_TO so latency stays low. */
const TRIM_ABOVE = 5 * MIX_FRAME;
const TRIM_TO = 2 * MIX_FRAME;

/** Where a participant's mixed frames go (the joint stamps them onto the participant's port). */
export interface MixerSink {
  /**
   * One frame for this participant in its codec. `hold`: it is one of its hold frames, not what
   * the others said. The buffer is reused on the next tick: copy it to keep it.
   */
  deliver(payload: Buffer, marker: boolean, hold: boolean): void;
}

export interface MixerStats {
  ticks: number;
  /** Ticks where a talking participant had less than a frame buffered (late packet, DTX, loss). */
  underruns: number;
  /** Samples dropped: the FIFO was full or held more than TRIM_ABOVE after a tick. */
  trimmedSamples: number;
}

/**
 * One participant's state: receive FIFO (decoded to 16-bit), the frame taken from it this tick
 * and the encoded output. Everything is allocated once, when the participant is added.
 */
export class MixerSlot {
  role: ParticipantRole;
  held = false;
  muted = false;
  holdFrames: readonly Buffer[] | null = null;
  private holdIndex = 0;
  /** The next frame delivered carries the marker bit (after start or hold changes). */
  marker = true;

  readonly fifo = new Int16Array(FIFO_SIZE);
  readPos = 0;
  writePos = 0;
  /** Samples in the FIFO (writePos - readPos, never above FIFO_SIZE). */
  level = 0;
  readonly cur = new Int16Array(MIX_FRAME);
  readonly out: Buffer;
  /** This tick: cur holds a frame that others hear in sumAll (1) or in sumCoach (coach). */
  inAll = 0;
  inCoach = 0;
  private readonly decode: Int16Array;
  readonly encode: Uint8Array;

  constructor(
    readonly id: string,
    readonly codec: G711Codec,
    role: ParticipantRole,
    readonly kind: ParticipantKind,
    readonly sink: MixerSink,
    private readonly stats: MixerStats,
  ) {
    this.role = role;
    this.decode = decodeTable(codec);
    this.encode = encodeTable(codec);
    this.out = Buffer.alloc(MIX_FRAME, SILENCE_BYTE[codec]);
  }

  /** One received G.711 payload of any length (hot path: no allocation). */
  receive(payload: Uint8Array): void {
    const n = payload.length;
    const dec = this.decode;
    const fifo = this.fifo;
    let w = this.writePos;
    for (let i = 0; i < n; i++) {
      fifo[w] = dec[payload[i]];
      w = (w + 1) & FIFO_MASK;
    }
    this.writePos = w;
    this.level += n;
    if (this.level > FIFO_SIZE) {
      // Overwrote the oldest samples: a burst bigger than the FIFO. Keep the newest.
      this.stats.trimmedSamples += this.level - FIFO_SIZE;
      this.level = FIFO_SIZE;
      this.readPos = w;
    }
  }

  /** Takes one frame into `cur`; false (and `cur` untouched) while less than a frame is buffered. */
  pull(): boolean {
    if (this.level < MIX_FRAME) return false;
    const fifo = this.fifo;
    const cur = this.cur;
    let r = this.readPos;
    for (let i = 0; i < MIX_FRAME; i++) {
      cur[i] = fifo[r];
      r = (r + 1) & FIFO_MASK;
    }
    this.level -= MIX_FRAME;
    if (this.level > TRIM_ABOVE) {
      // The source runs ahead of our clock (drift, a burst after a stall): catch up.
      const drop = this.level - TRIM_TO;
      this.stats.trimmedSamples += drop;
      r = (r + drop) & FIFO_MASK;
      this.level = TRIM_TO;
    }
    this.readPos = r;
    return true;
  }

  clear(): void {
    this.readPos = this.writePos;
    this.level = 0;
  }

  setHoldFrames(frames: readonly Buffer[] | null): void {
    this.holdFrames = frames;
    this.holdIndex = 0;
  }

  /** The next hold frame (looped), or null when held with no frames. */
  nextHoldFrame(): Buffer | null {
    const frames = this.holdFrames;
    if (frames === null || frames.length === 0) return null;
    if (this.holdIndex >= frames.length) this.holdIndex = 0;
    return frames[this.holdIndex++];
  }
}

/**
 * The conference mixer: on each tick of the shared clock, takes one 20 ms frame from every
 * participant's receive FIFO, sums what each role may be heard by, and gives every participant
 * its own mix without its own voice, encoded in its own G.711 law. Two sums (heard by all;
 * coaches, heard by agent parties only) make a tick O(participants × frame), not O(n²).
 * Per packet and per tick: no allocation, no logging.
 */
/** What the mixer ticks on: the shared MediaClock (tests and the bench may drive it by hand). */
export type TickSource = Pick<MediaClock, 'subscribe'>;

export class Mixer {
  readonly stats: MixerStats = { ticks: 0, underruns: 0, trimmedSamples: 0 };
  private slots: MixerSlot[] = [];
  private readonly sumAll = new Int32Array(MIX_FRAME);
  private readonly sumCoach = new Int32Array(MIX_FRAME);
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly clock: TickSource) {}

  /** Allocates the participant's buffers; the caller feeds it with slot.receive(). */
  add(id: string, codec: G711Codec, role: ParticipantRole, kind: ParticipantKind, sink: MixerSink): MixerSlot {
    const slot = new MixerSlot(id, codec, role, kind, sink, this.stats);
    this.slots = [...this.slots, slot];
    return slot;
  }

  remove(slot: MixerSlot): void {
    this.slots = this.slots.filter((s) => s !== slot);
  }

  get size(): number {
    return this.slots.length;
  }

  get running(): boolean {
    return this.unsubscribe !== null;
  }

  /** Starts ticking with empty FIFOs; every participant's first frame carries the marker bit. */
  start(): void {
    if (this.unsubscribe !== null) return;
    for (const s of this.slots) {
      s.clear();
      s.marker = true;
    }
    this.unsubscribe = this.clock.subscribe(this.tick);
  }

  stop(): void {
    if (this.unsubscribe === null) return;
    this.unsubscribe();
    this.unsubscribe = null;
  }

  /** One mixing round (the clock calls it; tests and the bench may call it directly). */
  readonly tick = (): void => {
    const slots = this.slots;
    const n = slots.length;
    const sumAll = this.sumAll;
    const sumCoach = this.sumCoach;
    sumAll.fill(0);
    let anyCoach = 0;
    let anyAll = 0;
    this.stats.ticks++;

    for (let p = 0; p < n; p++) {
      const s = slots[p];
      s.inAll = 0;
      s.inCoach = 0;
      const got = s.pull();
      if (s.held || s.muted || s.role === 'listener') continue;
      if (!got) {
        this.stats.underruns++;
        continue;
      }
      const cur = s.cur;
      if (s.role === 'coach') {
        if (anyCoach === 0) sumCoach.fill(0);
        for (let i = 0; i < MIX_FRAME; i++) sumCoach[i] += cur[i];
        s.inCoach = 1;
        anyCoach = 1;
      } else {
        for (let i = 0; i < MIX_FRAME; i++) sumAll[i] += cur[i];
        s.inAll = 1;
        anyAll = 1;
      }
    }

    for (let p = 0; p < n; p++) {
      const s = slots[p];
      const marker = s.marker;
      s.marker = false;
      if (s.held) {
        const frame = s.nextHoldFrame();
        if (frame !== null) s.sink.deliver(frame, marker, true);
        continue;
      }
      const hearsCoach = anyCoach === 1 && s.role === 'party' && s.kind === 'agent' ? 1 : 0;
      const out = s.out;
      if (anyAll === 0 && hearsCoach === 0) {
        out.fill(SILENCE_BYTE[s.codec]);
      } else {
        const own = s.inAll;
        const cur = s.cur;
        const enc = s.encode;
        for (let i = 0; i < MIX_FRAME; i++) {
          let v = sumAll[i] - own * cur[i];
          if (hearsCoach === 1) v += sumCoach[i];
          // Saturate rather than wrap: a wrapped sum is a loud click, a clipped one barely audible.
          if (v > 32767) v = 32767;
          else if (v < -32768) v = -32768;
          out[i] = enc[v & 0xffff];
        }
      }
      s.sink.deliver(out, marker, false);
    }
  };
}
