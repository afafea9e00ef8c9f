import { EventEmitter } from 'node:events';
import { MediaBridge } from '../../media/bridge/media-bridge';
import type { Recorder } from '../../media/recorder/recorder';
import type { RecordingWriter } from '../../media/vault/vault';
import { CallRecording } from '../recording/call-recording';
import { DtmfSender } from '../../media/dtmf/dtmf-sender';
import type { PortPool } from '../../media/rtp/port-pool';
import { RtpSession } from '../../media/rtp/rtp-session';
import { buildOffer, negotiateOffer } from '../../media/sdp/negotiate';
import type { MediaClock } from '../../media/tones/media-clock';
import type { WebRtcLeg, WebRtcLegState } from '../../media/webrtc/webrtc-leg';
import type { DeskCall } from '../agents/desk-call';
import type { CallEndCause, CallEvents } from '../calls/call';
import type { Config } from '../config/schema';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import type { UacDialog } from '../sip/uac-dialog';
import type { CallStore } from '../store/call-store';
import type { CallbackRecord, CallbackStore } from './callback-store';

export interface CallbackCallDeps {
  config: Config;
  calls: CallStore;
  callbacks: CallbackStore;
  metrics: Metrics;
  clock: MediaClock;
  pool: PortPool;
  /** Starts an outbound INVITE to `number` through the callback trunk. */
  placeCall(number: string): { dialog: UacDialog; localAddress: string; trunk: string; codec: 'PCMU' | 'PCMA'; remote: string };
  log: Logger;
}

/**
 * A queued callback as a call: it waits in the ACD with the caller's original place; when an
 * agent answers and the agent's WebRTC leg is up, it dials the caller through the PBX trunk and
 * bridges the two. One close() ends the outbound dialog, the RTP socket, the bridge and the leg.
 */
export class CallbackCall extends EventEmitter<CallEvents> implements DeskCall {
  readonly id: string;
  readonly log: Logger;
  readonly codec: 'PCMU' | 'PCMA';
  private agentName: string | undefined;
  private leg: WebRtcLeg | undefined;
  private rtp: RtpSession | undefined;
  private dialog: UacDialog | undefined;
  private bridge: MediaBridge | undefined;
  private readonly recording = new CallRecording({
    record: (type, data) => this.record(type, data),
    stored: (data) => this.deps.calls.update(this.id, {}, 'recording.stored', data),
    failed: (err) => this.log.error({ err, code: 'VAULT_WRITE_FAILED' }, 'recording could not be finalised'),
  });
  private dtmf: DtmfSender | undefined;
  private closedCause: CallEndCause | undefined;
  private recordCreated = false;

  constructor(
    readonly callback: CallbackRecord,
    private readonly deps: CallbackCallDeps,
  ) {
    super();
    this.id = callback.id;
    this.log = deps.log.child({ callId: callback.id, callback: true });
    this.codec = deps.config.calls.codecs[0];
  }

  get closed(): boolean {
    return this.closedCause !== undefined;
  }

  get caller(): { number: string; name: string | null } {
    return { number: this.callback.number, name: this.callback.callerName };
  }

  get agent(): string | undefined {
    return this.agentName;
  }

  get isHeld(): boolean {
    return this.bridge?.isHeld ?? false;
  }

  get isMuted(): boolean {
    return this.bridge?.isMuted ?? false;
  }

  attachAgent(agentName: string, leg: WebRtcLeg): void {
    this.agentName = agentName;
    this.leg = leg;
    void this.deps.callbacks.update(this.id, { agent: agentName }).catch(() => undefined);
    leg.on('state', (state: WebRtcLegState) => {
      if (state === 'connected') void this.dial(leg);
      else if (state === 'failed') void this.close('media-failed');
    });
  }

  setHold(on: boolean): void {
    this.bridge?.setHold(on);
  }

  /** Recorded like an inbound call once the caller has answered and the bridge runs. */
  attachRecording(recorder: Recorder, writer: RecordingWriter): void {
    this.recording.attach(recorder, writer, this.closed ? undefined : this.bridge);
  }

  get recordingState(): { active: boolean; paused: boolean } {
    return this.recording.state;
  }

  setRecordingPaused(on: boolean, actor: string, reason: string): boolean {
    return !this.closed && this.recording.setPaused(on, actor, reason);
  }

  stopRecording(cause: string): void {
    this.recording.stop(cause);
  }

  setMute(on: boolean): void {
    this.bridge?.setMute(on);
  }

  sendDtmf(digits: string): boolean {
    return this.dtmf?.send(digits) ?? false;
  }

  record(type: string, data: Record<string, unknown> = {}, changes: { queue?: string; agent?: string } = {}): void {
    if (!this.recordCreated || this.closed) return;
    this.deps.calls.update(this.id, changes, type, data).catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'call record write failed'));
  }

  close(cause: CallEndCause): Promise<void> {
    if (this.closedCause) return Promise.resolve();
    this.closedCause = cause;
    this.dtmf?.stop();
    this.stopRecording('call-ended');
    this.bridge?.stop();
    if (this.dialog && this.dialog.state !== 'terminated') this.dialog.hangup(cause === 'shutdown' ? 'shutdown' : 'local-bye');
    this.rtp?.close();
    if (this.leg) void this.leg.close();
    const now = new Date().toISOString();
    // Connected and then ended by either side: done. Not reached: owed again (the scheduler retries).
    const done = this.bridge !== undefined;
    const writes: Array<Promise<void>> = [
      this.deps.callbacks.update(this.id, {
        state: done ? 'done' : cause === 'shutdown' ? 'pending' : 'failed',
        completedAt: done ? now : null,
        lastError: done ? null : cause,
      }),
    ];
    if (this.recordCreated) {
      const stats = this.rtp?.stats;
      writes.push(
        this.deps.calls.update(
          this.id,
          { state: 'ended', endedAt: now, endCause: cause, rtpPacketsSent: stats?.packetsSent ?? 0, rtpPacketsReceived: stats?.packetsReceived ?? 0 },
          'call.ended',
          { cause },
        ),
      );
    }
    for (const w of writes) w.catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'callback write failed'));
    this.deps.metrics.callsTotal.inc({ outcome: `callback-${cause}` });
    this.log.info({ cause, connected: done }, 'callback ended');
    this.emit('closed', cause);
    this.removeAllListeners();
    return Promise.resolve();
  }

  private async dial(leg: WebRtcLeg): Promise<void> {
    if (this.closed || this.dialog) return;
    try {
      this.rtp = await RtpSession.open({ pool: this.deps.pool, host: this.deps.config.rtp.host, log: this.log });
    } catch (err) {
      this.log.warn({ err }, 'no RTP port for the callback');
      void this.close('callback-failed');
      return;
    }
    if (this.closed) {
      this.rtp.close();
      return;
    }
    const placed = this.deps.placeCall(this.callback.number);
    this.dialog = placed.dialog;
    const offer = buildOffer({
      localAddress: placed.localAddress,
      localPort: this.rtp.localPort,
      sessionId: String(Date.now()),
      sessionVersion: 1,
      codecs: [this.codec],
      userAgent: this.deps.config.sip.userAgent,
    });
    const now = new Date().toISOString();
    await this.deps.calls
      .create(
        {
          id: this.id,
          sipCallId: placed.dialog.callId,
          trunk: placed.trunk,
          direction: 'outbound',
          fromUri: `sip:${this.deps.config.callbacks.fromUser}@${placed.localAddress}`,
          fromUser: this.deps.config.callbacks.fromUser,
          fromName: null,
          toUri: `sip:${this.callback.number}@${placed.remote}`,
          toUser: this.callback.number,
          remoteAddr: placed.remote,
          transport: 'UDP',
          codec: this.codec,
          state: 'ringing',
          createdAt: now,
          answeredAt: null,
          endedAt: null,
          endCause: null,
          sipStatus: null,
          dtmf: '',
          rtpLocalPort: this.rtp.localPort,
          rtpRemote: null,
          rtpPacketsSent: 0,
          rtpPacketsReceived: 0,
          rtpPacketsDropped: 0,
          queue: this.callback.queue,
          agent: this.agentName ?? null,
          callerSource: null,
          assertedIdentity: null,
          privacy: null,
          originalCalled: null,
        },
        'call.callback-dialing',
        { callbackId: this.id, number: this.callback.number, attempt: this.callback.attempts + 1 },
      )
      .then(() => (this.recordCreated = true))
      .catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'call record write failed'));
    this.callback.attempts++;
    void this.deps.callbacks.update(this.id, { state: 'dialing', attempts: this.callback.attempts }).catch(() => undefined);
    const dialog = placed.dialog;
    dialog.on('answered', (answerSdp) => this.onAnswered(leg, answerSdp));
    dialog.on('failed', (status, reason) => {
      this.log.info({ status, reason }, 'callback not answered');
      this.record('call.callback-failed', { status });
      void this.close('callback-failed');
    });
    dialog.on('terminated', (reason) => {
      if (reason === 'remote-bye') void this.close('caller-hangup');
    });
    this.log.info({ number: this.callback.number, agent: this.agentName }, 'dialing the caller back');
    dialog.start(offer);
  }

  private onAnswered(leg: WebRtcLeg, answerSdp: string): void {
    const rtp = this.rtp;
    if (this.closed || !rtp) return;
    let audio;
    try {
      // The answer is read with the offer parser: it yields the remote address, port and codec.
      audio = negotiateOffer(answerSdp, { localAddress: '127.0.0.1', localPort: rtp.localPort, sessionId: '1', sessionVersion: 1, codecs: [this.codec] }).audio;
    } catch (err) {
      this.log.warn({ err }, 'unusable SDP answer from the trunk');
      void this.close('callback-failed');
      return;
    }
    rtp.configure({ payloadType: audio.payloadType, telephoneEventPayloadType: audio.telephoneEventPayloadType });
    rtp.setRemote(audio.remoteAddress, audio.remotePort);
    this.dtmf = new DtmfSender(this.deps.clock, rtp);
    this.bridge = new MediaBridge(rtp, leg, audio.payloadType, this.dtmf);
    this.bridge.start();
    void this.deps.callbacks.update(this.id, { state: 'connected' }).catch(() => undefined);
    this.record('call.answered', {}, {});
    this.deps.calls.update(this.id, { state: 'answered', answeredAt: new Date().toISOString(), sipStatus: 200 }, 'call.agent-connected', { agent: this.agentName }).catch(() => undefined);
    this.log.info({ agent: this.agentName }, 'caller answered the callback: bridged');
    this.emit('agentConnected', this.agentName ?? '');
  }
}
