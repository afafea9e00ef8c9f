/**
 * One participant's audio as the joint sees it (WebRtcLeg, RtpSessionPort): payloads out with the
 * wire timestamp the joint computes, payloads in as events. `sendTelephoneEvent`, where present,
 * receives RFC 4733 packets relayed from an agent (the source's timestamp; the port keeps its own
 * timeline). Listeners get payloads that are only valid during the call: copy to keep.
 */
export interface AudioPort {
  sendAudio(payload: Buffer, marker: boolean, timestamp: number): void;
  on(event: 'audio', listener: (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void): unknown;
  on(event: 'telephoneEvent', listener: (payload: Buffer, marker: boolean, timestamp: number) => void): unknown;
  off(event: 'audio', listener: (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void): unknown;
  off(event: 'telephoneEvent', listener: (payload: Buffer, marker: boolean, timestamp: number) => void): unknown;
  sendTelephoneEvent?(payload: Buffer, marker: boolean, timestamp: number): void;
  /** Set when the port's session lives on a media worker (RemoteRtpSession.port). */
  readonly remote?: RemotePortRef;
}

/**
 * Where a recorder listens: only what is actually heard is recorded (hold and mute are silence).
 * `capturedAt` (this thread's performance.now() ms) is given when packets arrive late in batches
 * (a call on a media worker): when the joint saw the packet; absent means now.
 */
export interface RecordingTap {
  pushCaller(payload: Buffer, timestamp: number, ssrc: number, capturedAt?: number): void;
  pushAgent(payload: Buffer, timestamp: number, ssrc: number, capturedAt?: number): void;
}

/** A port that lives on a media worker (an RTP session or a WebRTC leg): only a joint on that worker can carry it. */
export interface RemotePortRef {
  readonly worker: import('../workers/media-workers').MediaWorker;
  readonly source: import('../workers/protocol').JointSource;
  /** Frames the worker's joint has handed this member (from shared memory). */
  readonly jointSent: number;
}
