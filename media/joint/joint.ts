import type { RecordingTap } from './audio-port';
import type { JointMode, JointParticipant, JointParticipantState, ParticipantRole } from './media-joint';

/**
 * What a call does with its joint: MediaJoint on the main thread, or RemoteJoint for a call whose
 * media lives on a media worker (which takes only that worker's sessions and no taps).
 */
export interface Joint {
  readonly participants: ReadonlyArray<JointParticipantState>;
  has(id: string): boolean;
  add(p: JointParticipant): void;
  remove(id: string): void;
  setRole(id: string, role: ParticipantRole): void;
  setHold(id: string, holdFrames: readonly Buffer[] | null): void;
  setMute(id: string, on: boolean): void;
  isHeld(id: string): boolean;
  isMuted(id: string): boolean;
  addTap(tap: RecordingTap, callerId: string): void;
  /** A joint on a media worker resolves once the tap has had its last packets. */
  removeTap(tap: RecordingTap): void | Promise<void>;
  close(): void;
  on(event: 'mode', listener: (mode: JointMode, previous: JointMode) => void): unknown;
}
