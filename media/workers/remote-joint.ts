import { MediaError } from '../errors';
import type { RecordingTap } from '../joint/audio-port';
import type { Joint } from '../joint/joint';
import type { JointMode, JointParticipant, JointParticipantState, ParticipantRole } from '../joint/media-joint';
import type { MediaWorker } from './media-workers';

/**
 * A MediaJoint on a media worker, driven from the main thread. It keeps the participants' state
 * here too, so questions (has, isHeld, participants) and refusals (JOINT_FULL, unknown or
 * duplicate ids) are answered synchronously, as the local joint answers them.
 */
export class RemoteJoint implements Joint {
  private members: JointParticipantState[] = [];
  private closed = false;
  private readonly taps = new Map<RecordingTap, number>();

  constructor(
    private readonly worker: MediaWorker,
    private readonly jid: number,
    private readonly maxParties: number,
  ) {}

  get participants(): ReadonlyArray<JointParticipantState> {
    return this.members.map((m) => ({ ...m }));
  }

  has(id: string): boolean {
    return this.members.some((m) => m.id === id);
  }

  add(p: JointParticipant): void {
    if (this.closed) throw new MediaError('JOINT_CLOSED', `joint is closed; cannot add ${p.id}`);
    if (this.has(p.id)) throw new MediaError('JOINT_DUPLICATE_PARTICIPANT', `participant ${p.id} is already in the joint`);
    if (p.role === 'party' && this.partyCount() >= this.maxParties) throw new MediaError('JOINT_FULL', `the call already has ${this.maxParties} parties`);
    const ref = p.port.remote;
    if (!ref) throw new MediaError('MEDIA_IN_WORKER', `participant ${p.id} is not on this call's media worker (a WebRTC leg or a main-thread session)`);
    if (ref.worker !== this.worker) throw new MediaError('MEDIA_IN_WORKER', `participant ${p.id} is on another media worker`);
    this.members = [...this.members, { id: p.id, role: p.role, kind: p.kind, codec: p.codec, held: false, muted: false }];
    this.worker.post({ op: 'joint-add', jid: this.jid, id: p.id, source: ref.source, codec: p.codec, role: p.role, kind: p.kind });
  }

  remove(id: string): void {
    if (this.closed) return;
    this.member(id);
    this.members = this.members.filter((m) => m.id !== id);
    this.worker.post({ op: 'joint-remove', jid: this.jid, id });
  }

  setRole(id: string, role: ParticipantRole): void {
    const m = this.member(id);
    if (m.role === role) return;
    if (role === 'party' && this.partyCount() >= this.maxParties) throw new MediaError('JOINT_FULL', `the call already has ${this.maxParties} parties`);
    m.role = role;
    this.worker.post({ op: 'joint-role', jid: this.jid, id, role });
  }

  setHold(id: string, holdFrames: readonly Buffer[] | null): void {
    const m = this.member(id);
    m.held = holdFrames !== null;
    const key = holdFrames === null ? null : holdFrames.length === 0 ? -1 : this.worker.framesKey(holdFrames);
    this.worker.post({ op: 'joint-hold', jid: this.jid, id, key });
  }

  setMute(id: string, on: boolean): void {
    const m = this.member(id);
    if (m.muted === on) return;
    m.muted = on;
    this.worker.post({ op: 'joint-mute', jid: this.jid, id, on });
  }

  isHeld(id: string): boolean {
    return this.member(id).held;
  }

  isMuted(id: string): boolean {
    return this.member(id).muted;
  }

  /** The worker sends what the tap hears in chunks (TAP_CHUNK_MS); packets keep their capture time. */
  addTap(tap: RecordingTap, callerId: string): void {
    if (this.closed || this.taps.has(tap)) return;
    const tid = this.worker.addTap((ch, payload, ts, ssrc, at) => (ch === 0 ? tap.pushCaller(payload, ts, ssrc, at) : tap.pushAgent(payload, ts, ssrc, at)));
    this.taps.set(tap, tid);
    this.worker.post({ op: 'tap-add', jid: this.jid, tid, callerId });
  }

  /**
   * Resolves once the worker has sent what it still held for the tap (under TAP_CHUNK_MS) and the
   * tap has had it: stop a recorder after this, not before, and its last 100 ms are not lost.
   */
  removeTap(tap: RecordingTap): Promise<void> | undefined {
    const tid = this.taps.get(tap);
    if (tid === undefined) return undefined;
    this.taps.delete(tap);
    return this.worker
      .request({ op: 'tap-remove', jid: this.jid, tid })
      .catch(() => undefined)
      .then(() => this.worker.removeTap(tid));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.members = [];
    for (const tid of this.taps.values()) this.worker.removeTap(tid);
    this.taps.clear();
    this.worker.post({ op: 'joint-close', jid: this.jid });
  }

  /** Mode switches happen on the worker and are not reported back (they were only logged). */
  on(_event: 'mode', _listener: (mode: JointMode, previous: JointMode) => void): this {
    return this;
  }

  private member(id: string): JointParticipantState {
    const m = this.members.find((x) => x.id === id);
    if (!m) throw new MediaError('JOINT_UNKNOWN_PARTICIPANT', `no participant ${id} in the joint`);
    return m;
  }

  private partyCount(): number {
    return this.members.filter((m) => m.role === 'party').length;
  }
}
