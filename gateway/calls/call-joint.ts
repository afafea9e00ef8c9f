import { MediaBridge, type AgentAudioLeg, type BridgeStats, type RecordingTap } from '../../media/bridge/media-bridge';
import type { DtmfSender } from '../../media/dtmf/dtmf-sender';
import type { RtpSession } from '../../media/rtp/rtp-session';
import type { CodecName } from '../config/schema';
import type { ParticipantRole } from './contract';
import { CallError } from './errors';

/** The RTP side of a relay (the customer: caller or a callback's outbound leg). */
export interface RtpSide {
  session: RtpSession;
  /** Read when the relay starts: a delayed offer learns its payload type from the ACK. */
  payloadType(): number;
  /** Agent audio pauses while digits are sent to this side. */
  dtmf: DtmfSender;
}

export interface CallJointParticipant {
  id: string;
  kind: 'caller' | 'agent' | 'external';
  role: ParticipantRole;
  codec: CodecName;
  /** Everyone but the customer joins with an audio port (WebRTC leg, RtpAudioLeg). */
  port?: AgentAudioLeg;
  /** The customer joins with its RTP session. */
  rtp?: RtpSide;
}

/**
 * The seam between a Call and the audio joining its legs (media/joint's MediaJoint API, the part a
 * Call uses). Until the mixer lands this is the two-party relay: the existing MediaBridge between
 * the customer's RTP session and one other party, payloads untouched.
 */
export interface CallJoint {
  add(p: CallJointParticipant): void;
  remove(id: string): void;
  setRole(id: string, role: ParticipantRole): void;
  /** Held: nothing is relayed to or from it. */
  setHold(id: string, on: boolean): void;
  /** Muted: nobody hears it; it still hears. */
  setMute(id: string, on: boolean): void;
  isHeld(id: string): boolean;
  isMuted(id: string): boolean;
  has(id: string): boolean;
  /** Left: the customer's voice; right: what the customer hears from the others. */
  setRecordingTap(tap: RecordingTap | null): void;
  /** Audio flows between at least two parties. */
  readonly joined: boolean;
  /** Packets relayed by the current (or last) relay, for the call-ended record. */
  readonly stats: BridgeStats | undefined;
  close(): void;
}

/** Two parties, one MediaBridge: the relay that runs today. */
export class RelayJoint implements CallJoint {
  private rtpSide: CallJointParticipant | undefined;
  private portSide: CallJointParticipant | undefined;
  private bridge: MediaBridge | undefined;
  private lastStats: BridgeStats | undefined;
  private tap: RecordingTap | null = null;
  private held = false;
  private muted = false;
  private closed = false;

  add(p: CallJointParticipant): void {
    if (this.closed) throw new CallError('CALL_CLOSED', 'the call has ended');
    if (p.role !== 'party') throw new CallError('CALL_ROLE_UNSUPPORTED', `role ${p.role} needs the mixer`);
    if (this.has(p.id)) return;
    if (p.rtp && !this.rtpSide) this.rtpSide = p;
    else if (p.port && !this.portSide) this.portSide = p;
    else throw new CallError('CALL_FULL', 'the relay joins two parties');
    this.startIfPaired();
  }

  remove(id: string): void {
    if (this.rtpSide?.id === id) this.rtpSide = undefined;
    else if (this.portSide?.id === id) this.portSide = undefined;
    else return;
    this.stopBridge();
    this.held = false;
    this.muted = false;
  }

  setRole(id: string, role: ParticipantRole): void {
    if (!this.has(id)) throw new CallError('CALL_UNKNOWN_LEG', `no participant ${id}`);
    if (role !== 'party') throw new CallError('CALL_ROLE_UNSUPPORTED', `role ${role} needs the mixer`);
  }

  setHold(id: string, on: boolean): void {
    if (!this.has(id)) return;
    // The relay has one hold: holding either side stops both directions.
    this.held = on;
    this.bridge?.setHold(on);
  }

  setMute(id: string, on: boolean): void {
    // Only the port side (the agent) can be muted; the customer's mute is a hold.
    if (this.portSide?.id !== id) return;
    this.muted = on;
    this.bridge?.setMute(on);
  }

  isHeld(id: string): boolean {
    return this.has(id) && this.held;
  }

  isMuted(id: string): boolean {
    return this.portSide?.id === id && this.muted;
  }

  has(id: string): boolean {
    return this.rtpSide?.id === id || this.portSide?.id === id;
  }

  setRecordingTap(tap: RecordingTap | null): void {
    this.tap = tap;
    this.bridge?.setRecordingTap(tap);
  }

  get joined(): boolean {
    return this.bridge !== undefined;
  }

  get stats(): BridgeStats | undefined {
    return this.bridge?.stats ?? this.lastStats;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopBridge();
    this.rtpSide = undefined;
    this.portSide = undefined;
    this.tap = null;
  }

  private startIfPaired(): void {
    const a = this.rtpSide?.rtp;
    const b = this.portSide?.port;
    if (!a || !b || this.bridge) return;
    const bridge = new MediaBridge(a.session, b, a.payloadType(), a.dtmf);
    bridge.setHold(this.held);
    bridge.setMute(this.muted);
    bridge.setRecordingTap(this.tap);
    bridge.start();
    this.bridge = bridge;
  }

  private stopBridge(): void {
    if (!this.bridge) return;
    this.bridge.stop();
    this.bridge.setRecordingTap(null);
    this.lastStats = this.bridge.stats;
    this.bridge = undefined;
  }
}
