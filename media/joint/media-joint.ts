import { EventEmitter } from 'node:events';
import type { RecordingTap } from './audio-port';
import { MediaError } from '../errors';
import { Mixer, type MixerSink, type MixerSlot, type MixerStats, type TickSource, type ParticipantKind, type ParticipantRole } from '../mixer/mixer';
import { TimestampFollower } from '../rtp/timestamp-follower';
import type { G711Codec } from '../tones/g711';
import type { AudioPort } from './audio-port';

export type { ParticipantKind, ParticipantRole } from '../mixer/mixer';
export type { RecordingTap } from './audio-port';

export interface JointParticipant {
  id: string;
  port: AudioPort;
  codec: G711Codec;
  role: ParticipantRole;
  kind: ParticipantKind;
}

export interface JointParticipantState {
  id: string;
  role: ParticipantRole;
  kind: ParticipantKind;
  codec: G711Codec;
  held: boolean;
  muted: boolean;
}

/**
 * idle: nothing to carry (no participant, or one that is not held); relay: exactly two parties,
 * same codec, none held, no monitors — payloads pass untouched; mix: anything else.
 */
export type JointMode = 'idle' | 'relay' | 'mix';

export interface JointStats {
  /** Packets passed through untouched in relay mode. */
  relayed: number;
  /** Packets received into the mixer. */
  mixedIn: number;
  /** Frames the mixer delivered (mixes and hold frames). */
  mixedOut: number;
  modeChanges: number;
  mixer: MixerStats;
}

type JointEvents = {
  /** The joint switched between relay and mixer (the call logs it once, not per packet). */
  mode: [mode: JointMode, previous: JointMode];
};

/** The tap's SSRC for mixed audio: a source of its own, so the recorder re-anchors on a switch. */
const MIX_TAP_SSRC = 0x4d495854;

/** One listener on the joint and the participant whose voice is its left channel. */
class Tap {
  constructor(
    readonly tap: RecordingTap,
    readonly callerId: string,
    /** Resolved from callerId when that participant is in the joint. */
    public caller: Member | null,
  ) {}
}

/** One participant: its port, the mixer's buffers for it, and the RTP timeline of what it is sent. */
class Member implements MixerSink {
  /** The other participant while in relay mode. */
  peer: Member | null = null;
  /**
   * Timing handed to the port, not the wire timestamp: an RTP port re-times it onto its own random
   * timeline (RFC 3550). Starting at 0 keeps it inside V8's small-integer range (2^30, 37 h of
   * 8 kHz audio), so passing it to the port boxes no heap number per frame; a random start put
   * 3 in 4 participants above that range (16 bytes per frame, seen as a flaky allocation test).
   */
  readonly timeline = new TimestampFollower(0);
  slot!: MixerSlot;

  constructor(
    readonly joint: MediaJoint,
    readonly id: string,
    readonly port: AudioPort,
    readonly codec: G711Codec,
    readonly kind: ParticipantKind,
  ) {}

  // Bound once per participant, so subscribing and every packet allocate nothing.
  readonly onAudio = (payload: Buffer, marker: boolean, timestamp: number, ssrc: number): void => {
    this.joint.fromPort(this, payload, marker, timestamp, ssrc);
  };

  readonly onTelephoneEvent = (payload: Buffer, marker: boolean, timestamp: number): void => {
    this.joint.telephoneEventFrom(this, payload, marker, timestamp);
  };

  deliver(payload: Buffer, marker: boolean, hold: boolean): void {
    this.joint.deliverMixed(this, payload, marker, hold);
  }
}

/**
 * Everything a call's participants hear of each other. Two parties on one codec are relayed
 * untouched (each side keeps its own timeline following the source's timing,
 * agent DTMF reaches the caller as RFC 4733); a third participant, a monitor, a hold or mixed
 * laws switch it to the mixer, and back when that ends. Every port keeps one continuous RTP
 * timeline across switches. Taps (left: the caller, right: what the caller hears from the
 * others) follow the joint through both modes, so one call is one recording; several listen at
 * once (the recorder, a media fork, live transcription), each fed the same payloads.
 * Per packet and per tick: no allocation, no logging.
 */
export class MediaJoint extends EventEmitter<JointEvents> {
  private members: Member[] = [];
  private readonly mixer: Mixer;
  private readonly maxParties: number;
  private currentMode: JointMode = 'idle';
  /** Replaced (never mutated) on add/remove, so the packet path iterates a stable array. */
  private taps: Tap[] = [];
  private closed = false;
  private readonly counters = { relayed: 0, mixedIn: 0, mixedOut: 0, modeChanges: 0 };

  constructor(opts: { clock: TickSource; maxParties: number }) {
    super();
    this.mixer = new Mixer(opts.clock);
    this.maxParties = opts.maxParties;
  }

  get mode(): JointMode {
    return this.currentMode;
  }

  get participants(): ReadonlyArray<JointParticipantState> {
    return this.members.map((m) => ({ id: m.id, role: m.slot.role, kind: m.kind, codec: m.codec, held: m.slot.held, muted: m.slot.muted }));
  }

  get stats(): JointStats {
    return { ...this.counters, mixer: { ...this.mixer.stats } };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  has(id: string): boolean {
    return this.members.some((m) => m.id === id);
  }

  add(p: JointParticipant): void {
    if (this.closed) throw new MediaError('JOINT_CLOSED', `joint is closed; cannot add ${p.id}`);
    if (this.has(p.id)) throw new MediaError('JOINT_DUPLICATE_PARTICIPANT', `participant ${p.id} is already in the joint`);
    if (p.role === 'party' && this.partyCount() >= this.maxParties) {
      throw new MediaError('JOINT_FULL', `the call already has ${this.maxParties} parties`);
    }
    const m = new Member(this, p.id, p.port, p.codec, p.kind);
    m.slot = this.mixer.add(p.id, p.codec, p.role, p.kind, m);
    this.members = [...this.members, m];
    for (const t of this.taps) if (t.callerId === p.id) t.caller = m;
    p.port.on('audio', m.onAudio);
    p.port.on('telephoneEvent', m.onTelephoneEvent);
    this.reconsider();
  }

  /** Takes a participant out (its port is no longer sent to or listened to). No-op once closed. */
  remove(id: string): void {
    if (this.closed) return;
    const m = this.member(id);
    this.detach(m);
    this.members = this.members.filter((x) => x !== m);
    this.mixer.remove(m.slot);
    for (const t of this.taps) if (t.caller === m) t.caller = null;
    this.reconsider();
  }

  setRole(id: string, role: ParticipantRole): void {
    const m = this.member(id);
    if (m.slot.role === role) return;
    if (role === 'party' && this.partyCount() >= this.maxParties) {
      throw new MediaError('JOINT_FULL', `the call already has ${this.maxParties} parties`);
    }
    m.slot.role = role;
    this.reconsider();
  }

  /**
   * Held: the participant hears `holdFrames` (G.711 frames in its own codec, looped; [] = silence)
   * and nobody hears it. null: back in the call.
   */
  setHold(id: string, holdFrames: readonly Buffer[] | null): void {
    const m = this.member(id);
    const held = holdFrames !== null;
    m.slot.setHoldFrames(holdFrames);
    if (m.slot.held !== held) {
      m.slot.held = held;
      m.slot.clear();
      m.slot.marker = true;
    }
    this.reconsider();
  }

  /** Muted: nobody hears it; it still hears everyone it would. */
  setMute(id: string, on: boolean): void {
    const m = this.member(id);
    if (m.slot.muted === on) return;
    m.slot.muted = on;
    m.slot.clear();
  }

  isHeld(id: string): boolean {
    return this.member(id).slot.held;
  }

  isMuted(id: string): boolean {
    return this.member(id).slot.muted;
  }

  /**
   * Adds a listener. Left channel: what `callerId` says (while it is heard); right: what it hears
   * from the others (never its hold frames). The caller may join later: the tap starts when it does.
   * Adding a tap already there only changes its caller. No-op once closed.
   */
  addTap(tap: RecordingTap, callerId: string): void {
    if (this.closed) return;
    const caller = this.members.find((m) => m.id === callerId) ?? null;
    this.taps = [...this.taps.filter((t) => t.tap !== tap), new Tap(tap, callerId, caller)];
  }

  /** Idempotent: the tap gets nothing more. */
  removeTap(tap: RecordingTap): void {
    this.taps = this.taps.filter((t) => t.tap !== tap);
  }

  get tapCount(): number {
    return this.taps.length;
  }

  /** Idempotent: stops the mixer and unsubscribes from every port. Ports are the owner's to close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.mixer.stop();
    for (const m of this.members) this.detach(m);
    for (const m of this.members) this.mixer.remove(m.slot);
    this.members = [];
    this.taps = [];
    this.setMode('idle');
    this.removeAllListeners();
  }

  // ---- hot path (called by Member) ----

  /** @internal A packet from a participant's port. */
  fromPort(m: Member, payload: Buffer, marker: boolean, timestamp: number, ssrc: number): void {
    const mode = this.currentMode;
    const slot = m.slot;
    if (mode === 'relay') {
      const peer = m.peer;
      if (peer === null || slot.muted) return;
      const taps = this.taps;
      for (let i = 0; i < taps.length; i++) {
        const t = taps[i];
        if (m === t.caller) t.tap.pushCaller(payload, timestamp, ssrc);
        else if (peer === t.caller) t.tap.pushAgent(payload, timestamp, ssrc);
      }
      const tl = peer.timeline;
      const ts = tl.relay(ssrc, timestamp, payload.length);
      peer.port.sendAudio(payload, marker || tl.jumped, ts);
      this.counters.relayed++;
    } else if (mode === 'mix') {
      if (slot.held || slot.muted || slot.role === 'listener') return;
      const taps = this.taps;
      for (let i = 0; i < taps.length; i++) if (m === taps[i].caller) taps[i].tap.pushCaller(payload, timestamp, ssrc);
      slot.receive(payload);
      this.counters.mixedIn++;
    }
  }

  /** @internal RFC 4733 from a participant (only WebRTC legs emit it): to the SIP side, as today. */
  telephoneEventFrom(m: Member, payload: Buffer, marker: boolean, timestamp: number): void {
    if (this.currentMode === 'relay') {
      const peer = m.peer;
      if (peer !== null && !m.slot.muted) peer.port.sendTelephoneEvent?.(payload, marker, timestamp);
      return;
    }
    if (this.currentMode !== 'mix' || m.slot.held || m.slot.muted || m.slot.role !== 'party') return;
    const members = this.members;
    for (let i = 0; i < members.length; i++) {
      const o = members[i];
      if (o !== m && o.kind !== 'agent' && o.slot.role === 'party' && !o.slot.held) o.port.sendTelephoneEvent?.(payload, marker, timestamp);
    }
  }

  /** @internal One mixer frame for a participant: stamp it on the participant's timeline. */
  deliverMixed(m: Member, payload: Buffer, marker: boolean, hold: boolean): void {
    const ts = m.timeline.own(payload.length);
    m.port.sendAudio(payload, marker, ts);
    this.counters.mixedOut++;
    if (hold) return;
    const taps = this.taps;
    for (let i = 0; i < taps.length; i++) if (m === taps[i].caller) taps[i].tap.pushAgent(payload, ts, MIX_TAP_SSRC);
  }

  // ---- internals ----

  private member(id: string): Member {
    const m = this.members.find((x) => x.id === id);
    if (m === undefined) throw new MediaError('JOINT_UNKNOWN_PARTICIPANT', `no participant ${id} in the joint`);
    return m;
  }

  private partyCount(): number {
    let n = 0;
    for (const m of this.members) if (m.slot.role === 'party') n++;
    return n;
  }

  private detach(m: Member): void {
    m.port.off('audio', m.onAudio);
    m.port.off('telephoneEvent', m.onTelephoneEvent);
    m.peer = null;
  }

  private reconsider(): void {
    const ms = this.members;
    let next: JointMode;
    if (ms.length === 0 || (ms.length === 1 && !ms[0].slot.held)) next = 'idle';
    else if (ms.length === 2 && this.relayable(ms[0], ms[1])) next = 'relay';
    else next = 'mix';
    if (next === 'relay') {
      ms[0].peer = ms[1];
      ms[1].peer = ms[0];
    } else {
      for (const m of ms) m.peer = null;
    }
    this.setMode(next);
  }

  private relayable(a: Member, b: Member): boolean {
    return a.slot.role === 'party' && b.slot.role === 'party' && a.codec === b.codec && !a.slot.held && !b.slot.held;
  }

  private setMode(next: JointMode): void {
    const prev = this.currentMode;
    if (next === prev) return;
    if (prev === 'mix') this.mixer.stop();
    this.currentMode = next;
    if (next === 'mix') this.mixer.start();
    this.counters.modeChanges++;
    this.emit('mode', next, prev);
  }
}
