import { randomInt } from 'node:crypto';
import type { DtmfSender } from '../dtmf/dtmf-sender';
import type { RtpHeader } from '../rtp/packet';
import type { RtpSession } from '../rtp/rtp-session';
import { TimestampFollower } from '../rtp/timestamp-follower';

/** The agent side of a bridge as the bridge needs it (the WebRTC leg implements it). */
export interface AgentAudioLeg {
  sendAudio(payload: Buffer, marker: boolean, timestamp: number): void;
  on(event: 'audio', listener: (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void): unknown;
  on(event: 'telephoneEvent', listener: (payload: Buffer, marker: boolean, timestamp: number) => void): unknown;
  off(event: 'audio', listener: (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void): unknown;
  off(event: 'telephoneEvent', listener: (payload: Buffer, marker: boolean, timestamp: number) => void): unknown;
}

/** Where a recorder listens: only what is actually relayed is recorded (hold and mute are silence). */
export interface RecordingTap {
  pushCaller(payload: Buffer, timestamp: number, ssrc: number): void;
  pushAgent(payload: Buffer, timestamp: number, ssrc: number): void;
}

/** A source id for RFC 4733 packets from the browser, distinct from its audio SSRC timeline. */
const AGENT_DTMF_SOURCE = 0x41475444;

export interface BridgeStats {
  toAgent: number;
  toCaller: number;
  droppedWhileHeld: number;
}

/**
 * Relays G.711 between the caller's RTP leg and the agent's WebRTC leg without transcoding:
 * payloads are passed through, each side gets its own SSRC/sequence and a timeline that follows
 * the source's timing. Hold stops both directions; mute stops the agent's. Per packet: no
 * allocation, no logging.
 */
export class MediaBridge {
  readonly stats: BridgeStats = { toAgent: 0, toCaller: 0, droppedWhileHeld: 0 };
  private readonly toAgentTimeline = new TimestampFollower(randomInt(0, 0x100000000));
  private held = false;
  private muted = false;
  private running = false;
  private tap: RecordingTap | null = null;

  constructor(
    private readonly caller: RtpSession,
    private readonly agent: AgentAudioLeg,
    private readonly callerPayloadType: number,
    private readonly dtmf: DtmfSender,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.caller.on('packet', this.fromCaller);
    this.agent.on('audio', this.fromAgent);
    this.agent.on('telephoneEvent', this.fromAgentDtmf);
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.caller.off('packet', this.fromCaller);
    this.agent.off('audio', this.fromAgent);
    this.agent.off('telephoneEvent', this.fromAgentDtmf);
  }

  setRecordingTap(tap: RecordingTap | null): void {
    this.tap = tap;
  }

  setHold(on: boolean): void {
    this.held = on;
  }

  setMute(on: boolean): void {
    this.muted = on;
  }

  get isHeld(): boolean {
    return this.held;
  }

  get isMuted(): boolean {
    return this.muted;
  }

  private readonly fromCaller = (h: RtpHeader, payload: Buffer): void => {
    if (h.payloadType !== this.callerPayloadType) return; // comfort noise etc. stay on their leg
    if (this.held) {
      this.stats.droppedWhileHeld++;
      return;
    }
    this.tap?.pushCaller(payload, h.timestamp, h.ssrc);
    const ts = this.toAgentTimeline.relay(h.ssrc, h.timestamp, payload.length);
    this.agent.sendAudio(payload, h.marker || this.toAgentTimeline.jumped, ts);
    this.stats.toAgent++;
  };

  private readonly fromAgent = (payload: Buffer, marker: boolean, timestamp: number, ssrc: number): void => {
    if (this.held || this.muted || this.dtmf.active) {
      if (this.held) this.stats.droppedWhileHeld++;
      return;
    }
    this.tap?.pushAgent(payload, timestamp, ssrc);
    this.caller.sendRelayed(payload, marker, ssrc, timestamp);
    this.stats.toCaller++;
  };

  private readonly fromAgentDtmf = (payload: Buffer, marker: boolean, timestamp: number): void => {
    const pt = this.caller.telephoneEventPayloadType;
    if (this.held || pt < 0) return;
    this.caller.sendRelayed(payload, marker, AGENT_DTMF_SOURCE, timestamp, pt);
  };
}
