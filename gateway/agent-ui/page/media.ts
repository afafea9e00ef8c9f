/**
 * The agent's audio leg: one RTCPeerConnection per answered call, offered by the server.
 * No STUN/TURN (iceServers: []), no trickle: the answer is sent once ICE gathering completes.
 */

export class MediaCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

/** Longest we wait for ICE gathering before sending the candidates we have. */
const GATHER_LIMIT_MS = 5000;

export class CallMedia {
  private pcCurrent: RTCPeerConnection | null = null;
  private local: MediaStream | null = null;
  private mic: Promise<MediaStream> | null = null;
  private muted = false;
  /** Bumped by close(): async work started for an older generation gives up. */
  private generation = 0;

  constructor(
    private readonly audio: HTMLAudioElement,
    private readonly failed: (message: string) => void,
  ) {}

  get pc(): RTCPeerConnection | null {
    return this.pcCurrent;
  }

  static micSupported(): boolean {
    return !!(navigator.mediaDevices && typeof navigator.mediaDevices.getUserMedia === 'function');
  }

  /** Ask for the microphone early (on the Answer click, a user gesture), so the prompt shows at once. */
  prepareMic(): void {
    if (this.mic || !CallMedia.micSupported()) return;
    this.mic = navigator.mediaDevices.getUserMedia({ audio: true });
    this.mic.catch(() => undefined);
  }

  /**
   * Answers the server's offer; resolves with the complete local SDP (all candidates included).
   * Rejects with MediaCancelled if close() was called meanwhile.
   */
  async answer(offerSdp: string): Promise<string> {
    this.closePeer();
    const gen = this.generation;
    const check = () => {
      if (gen !== this.generation) throw new MediaCancelled();
    };

    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pcCurrent = pc;
    pc.ontrack = (ev) => {
      const stream = ev.streams[0] ?? new MediaStream([ev.track]);
      if (this.audio.srcObject !== stream) this.audio.srcObject = stream;
      this.audio.play().catch(() => undefined);
    };
    pc.onconnectionstatechange = () => {
      if (this.pcCurrent === pc && pc.connectionState === 'failed') {
        this.failed('The audio connection to the appliance failed.');
      }
    };

    let stream: MediaStream | null = null;
    try {
      this.prepareMic();
      if (!this.mic) throw new Error('this page is not a secure context (HTTPS), so the browser offers no microphone');
      stream = await this.mic;
    } catch (err) {
      this.mic = null;
      check();
      this.failed(`Microphone not available (${errorText(err)}). The caller cannot hear you.`);
    }
    check();
    if (stream) {
      this.local = stream;
      for (const track of stream.getAudioTracks()) {
        track.enabled = !this.muted;
        pc.addTrack(track, stream);
      }
    }

    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    check();
    const answer = await pc.createAnswer();
    check();
    await pc.setLocalDescription(answer);
    check();
    await gatheringComplete(pc);
    check();
    const sdp = pc.localDescription?.sdp;
    if (!sdp) throw new Error('no local description');
    return sdp;
  }

  setMuted(on: boolean): void {
    this.muted = on;
    for (const track of this.local?.getAudioTracks() ?? []) track.enabled = !on;
  }

  /** End of call: close the peer connection, release the microphone, silence the speaker. */
  close(): void {
    this.generation++;
    this.closePeer();
    this.muted = false;
    const mic = this.mic;
    this.mic = null;
    for (const track of this.local?.getTracks() ?? []) track.stop();
    this.local = null;
    // A getUserMedia still pending when the call ended: stop its tracks when it arrives.
    mic?.then((s) => s.getTracks().forEach((t) => t.stop())).catch(() => undefined);
  }

  private closePeer(): void {
    const pc = this.pcCurrent;
    this.pcCurrent = null;
    if (pc) {
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
    this.audio.srcObject = null;
  }
}

function gatheringComplete(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      window.clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onState);
      pc.removeEventListener('icecandidate', onCandidate);
      resolve();
    };
    const onState = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const onCandidate = (ev: RTCPeerConnectionIceEvent) => {
      if (!ev.candidate) done();
    };
    const timer = window.setTimeout(done, GATHER_LIMIT_MS);
    pc.addEventListener('icegatheringstatechange', onState);
    pc.addEventListener('icecandidate', onCandidate);
  });
}

export function errorText(err: unknown): string {
  if (err instanceof DOMException) return err.name === 'NotAllowedError' ? 'permission denied' : err.message || err.name;
  if (err instanceof Error) return err.message;
  return String(err);
}
