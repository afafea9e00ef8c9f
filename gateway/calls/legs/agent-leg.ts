import { EventEmitter } from 'node:events';
import type { WebRtcEndpoint, WebRtcLegState } from '../../../media';
import type { ParticipantRole } from '../contract';

export interface AgentLegEvents {
  /** ICE and DTLS are up: the leg can join the call's joint. */
  connected: [];
  /** ICE/DTLS failed or the peer went away. */
  failed: [];
}

/**
 * An agent's or supervisor's WebRTC leg on a call: the person's name, the role it has in the
 * joint, and the leg's connection state as two events. close() ends the WebRTC leg.
 */
export class AgentLeg extends EventEmitter<AgentLegEvents> {
  private closed = false;
  private connectedValue = false;

  constructor(
    readonly name: string,
    readonly webrtc: WebRtcEndpoint,
    public role: ParticipantRole = 'party',
  ) {
    super();
    webrtc.on('state', this.onState);
  }

  get connected(): boolean {
    return this.connectedValue;
  }

  /** Idempotent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.webrtc.off('state', this.onState);
    this.removeAllListeners();
    return this.webrtc.close();
  }

  private readonly onState = (state: WebRtcLegState): void => {
    if (this.closed) return;
    if (state === 'connected' && !this.connectedValue) {
      this.connectedValue = true;
      this.emit('connected');
    } else if (state === 'failed') {
      this.emit('failed');
    }
  };
}
