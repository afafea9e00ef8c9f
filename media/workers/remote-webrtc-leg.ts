import { EventEmitter } from 'node:events';
import { MediaError } from '../errors';
import type { AudioPort } from '../joint/audio-port';
import type { WebRtcLegState } from '../webrtc/webrtc-leg';
import { STATS_FIELDS, STATS_STRIDE } from './protocol';
import type { MediaWorker } from './media-workers';
import { RemoteAudioPort } from './remote-rtp-session';

type RemoteWebRtcLegEvents = { state: [WebRtcLegState] };

const SENT = STATS_FIELDS.indexOf('packetsSent');
const RECEIVED = STATS_FIELDS.indexOf('packetsReceived');

/**
 * The main thread's handle on an agent's or supervisor's WebRTC leg that lives on a media worker
 * (werift runs there, with the call's joint): the same surface the desk uses on a WebRtcLeg —
 * createOffer, acceptAnswer, state events, stats, close — as requests to the worker. Its audio
 * never comes here: `port` joins it to the call's RemoteJoint on the same worker.
 */
export class RemoteWebRtcLeg extends EventEmitter<RemoteWebRtcLegEvents> {
  readonly port: AudioPort;
  private _state: WebRtcLegState = 'new';
  private closing: Promise<void> | null = null;
  private finalStats: { packetsSent: number; packetsReceived: number } | null = null;
  private finalJointSent: number | null = null;
  private released = false;

  constructor(
    readonly worker: MediaWorker,
    readonly wid: number,
    private readonly slot: number,
    private readonly release: () => void,
  ) {
    super();
    const leg = this;
    this.port = new RemoteAudioPort({
      worker,
      source: { kind: 'webrtc', wid },
      get jointSent() {
        return leg.jointSent;
      },
    });
  }

  get state(): WebRtcLegState {
    return this._state;
  }

  /** From the worker's shared table (at most STATS_REFRESH_MS old; as at close once closed). */
  get stats(): { packetsSent: number; packetsReceived: number } {
    if (this.finalStats) return this.finalStats;
    const base = this.slot * STATS_STRIDE;
    return { packetsSent: this.worker.statsTable[base + SENT], packetsReceived: this.worker.statsTable[base + RECEIVED] };
  }

  get jointSent(): number {
    return this.finalJointSent ?? this.worker.statsTable[this.slot * STATS_STRIDE + STATS_STRIDE - 1];
  }

  async createOffer(): Promise<string> {
    const sdp = await this.worker.request({ op: 'webrtc-offer', wid: this.wid });
    if (sdp === undefined) throw new MediaError('WEBRTC_FAILED', 'the media worker returned no offer');
    return sdp;
  }

  async acceptAnswer(sdp: string): Promise<void> {
    await this.worker.request({ op: 'webrtc-answer', wid: this.wid, sdp });
  }

  /** Idempotent; resolves once werift closed the leg on the worker (or the worker is gone). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = this.worker
      .request({ op: 'webrtc-close', wid: this.wid })
      .catch(() => undefined)
      .then(() => {
        this.setState('closed');
        this.free();
      });
    return this.closing;
  }

  /** @internal A state the worker's leg reported. */
  noteState(state: WebRtcLegState): void {
    if (state === 'closed') this.free();
    this.setState(state);
  }

  /** @internal The worker died: the leg is gone (a live one fails, so its call handles it like a lost browser). */
  lose(): void {
    this.free();
    if (this._state !== 'closed') this.setState('failed');
  }

  private free(): void {
    if (this.released) return;
    this.finalStats = this.stats;
    this.finalJointSent = this.jointSent;
    this.released = true;
    this.release();
  }

  private setState(state: WebRtcLegState): void {
    if (this._state === state || this._state === 'closed') return;
    if (this._state === 'failed' && state !== 'closed') return;
    this._state = state;
    this.emit('state', state);
  }
}
