import { DtmfSender } from '../dtmf/dtmf-sender';
import type { AudioPort } from '../joint/audio-port';
import { RtpSessionPort } from '../joint/rtp-session-port';
import { RtpSession } from '../rtp/rtp-session';
import type { MediaClock } from '../tones/media-clock';
import { PromptPlayer, type PromptPlayback } from '../tones/prompt-player';
import { TonePlayer } from '../tones/tone-player';
import { WebRtcLeg, type G711 } from '../webrtc/webrtc-leg';
import { icePortSlice, type LegLog, type MediaWorker } from './media-workers';
import { RemoteDtmfSender, RemoteRtpSession, RemoteTonePlayer } from './remote-rtp-session';
import { RemoteWebRtcLeg } from './remote-webrtc-leg';

/** A leg's RTP session: on the main thread, or on a media worker. */
export type RtpEndpoint = RtpSession | RemoteRtpSession;

export interface SoundPlayer {
  start(): void;
  stop(): void;
  readonly playing: boolean;
}

export interface DigitSender {
  /** True while digits are being sent (main-thread sessions only; a worker knows its own). */
  readonly active: boolean;
  send(digits: string): boolean;
  stop(): void;
}

/** Loops `frames` into the session, paced by the clock of the thread the session lives on. */
export function soundPlayer(clock: MediaClock, rtp: RtpEndpoint, frames: Buffer[]): SoundPlayer {
  return rtp instanceof RemoteRtpSession ? new RemoteTonePlayer(rtp, frames) : new TonePlayer(clock, rtp, frames);
}

export function digitSender(clock: MediaClock, rtp: RtpEndpoint): DigitSender {
  return rtp instanceof RemoteRtpSession ? new RemoteDtmfSender(rtp) : new DtmfSender(clock, rtp);
}

/** The session as a joint participant, on its own timeline (RtpSessionPort, here or on the worker). */
export function jointPort(rtp: RtpEndpoint, payloadType: number, dtmf?: DigitSender): AudioPort {
  return rtp instanceof RemoteRtpSession ? rtp.port(payloadType) : new RtpSessionPort(rtp, payloadType, dtmf);
}

/** Plays `frames` once into the session (an IVR prompt), paced by its thread's clock, then `onEnd`. */
export function promptPlayer(clock: MediaClock, rtp: RtpEndpoint, frames: readonly Buffer[], onEnd: () => void): PromptPlayback {
  return rtp instanceof RemoteRtpSession ? rtp.playPrompt(frames, onEnd) : new PromptPlayer(clock, rtp, frames, onEnd);
}

/** An agent's or supervisor's WebRTC leg: on the main thread, or on the call's media worker. */
export type WebRtcEndpoint = WebRtcLeg | RemoteWebRtcLeg;

export interface WebRtcEndpointOptions {
  codec: G711;
  interfaces: string[];
  portRange?: { min: number; max: number };
  log?: LegLog;
}

/**
 * A WebRTC leg where the call's media is: on `worker` (the call's), else here. With workers
 * running, the main thread keeps the first slice of the ICE port range (icePortSlice).
 */
export function webrtcLeg(opts: WebRtcEndpointOptions, worker: MediaWorker | undefined, workerCount = 0): WebRtcEndpoint {
  if (worker) return worker.webrtcLeg(opts);
  const portRange = opts.portRange && workerCount > 0 ? icePortSlice(opts.portRange, workerCount + 1, 0) : opts.portRange;
  return WebRtcLeg.create({ ...opts, ...(portRange ? { portRange } : {}) });
}

/** The leg as a joint participant (a worker's leg joins only that worker's joint). */
export function webrtcPort(leg: WebRtcEndpoint): AudioPort {
  return leg instanceof RemoteWebRtcLeg ? leg.port : leg;
}
