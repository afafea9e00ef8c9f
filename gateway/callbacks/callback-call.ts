import type { MediaClock, MediaWorker } from '../../media';
import type { CloudEventData } from '../../sync/events';
import { Call, outboundFailure, type CallEnd, type Leg, type OutboundDialer } from '../calls/call';
import type { CallEndCause } from '../calls/contract';
import { isCallError } from '../calls/errors';
import type { CodecName, Config } from '../config/schema';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import type { CallEventType, CallStore } from '../store/call-store';
import type { CallbackRecord, CallbackStore } from './callback-store';

export interface CallbackCallDeps {
  config: Config;
  calls: CallStore;
  callbacks: CallbackStore;
  metrics: Metrics;
  clock: MediaClock;
  holdFrames: Record<CodecName, Buffer[]>;
  /** The trunk callbacks are dialled through (callbacks.trunk or the first outbound trunk). */
  trunk: string;
  /** The CallManager's dialer: the same outbound leg as forwards and transfers. */
  dialOutbound: OutboundDialer | undefined;
  /** The media worker the callback's legs and joint live on (undefined: the main thread). */
  media?: MediaWorker;
  log: Logger;
}

/**
 * A queued callback: a Call whose customer leg is an outbound leg, dialled through the PBX trunk
 * once the agent's WebRTC leg is connected. It waits in the ACD with the caller's original place.
 * Legs, joint, recording and close() are the Call's; this class adds the callback's records.
 */
export class CallbackCall extends Call {
  private recordCreated = false;
  private dialling = false;

  constructor(
    readonly callback: CallbackRecord,
    private readonly cb: CallbackCallDeps,
  ) {
    super({ config: cb.config, store: cb.calls, metrics: cb.metrics, clock: cb.clock, holdFrames: cb.holdFrames, dialOutbound: cb.dialOutbound }, cb.log, { id: callback.id, ...(cb.media ? { media: cb.media } : {}), logBindings: { callback: true } });
  }

  override get caller(): { number: string; name: string | null } {
    return { number: this.callback.number, name: this.callback.callerName };
  }

  override attachAgent(agentName: string, leg: Parameters<Call['attachAgent']>[1]): void {
    void this.cb.callbacks.update(this.id, { agent: agentName }).catch(() => undefined);
    super.attachAgent(agentName, leg);
  }

  /** Nobody waits on hold behind a callback: its agent leg cannot be handed back. */
  override detachAgent(): boolean {
    return false;
  }

  override record<T extends CallEventType>(type: T, data: CloudEventData<T>, changes: { queue?: string; agent?: string } = {}): void {
    if (this.recordCreated) super.record(type, data, changes);
  }

  protected override onAgentLegFailed(): void {
    void this.close('media-failed');
  }

  /** The agent is up: now the caller is dialled; when they answer, the two are joined. */
  protected override onAgentUp(agent: Leg): void {
    if (agent !== this.primary) {
      this.joinAgent(agent);
      return;
    }
    if (this.dialling) return;
    this.dialling = true;
    this.addOutbound(
      { trunk: this.cb.trunk, number: this.callback.number, rule: 'callback' },
      { customer: true, endCause: 'caller-hangup', dialing: (out) => this.dialing(out) },
    ).then(
      () => {
        if (this.closed) return;
        this.joinAgent(agent);
        void this.cb.callbacks.update(this.id, { state: 'connected' }).catch(() => undefined);
        this.record('call.answered', {}, {});
        this.cb.calls.update(this.id, { state: 'answered', answeredAt: new Date().toISOString(), sipStatus: 200 }, 'call.agent-connected', { agent: agent.name }).catch(() => undefined);
        this.log.info({ agent: agent.name }, 'caller answered the callback: joined');
        this.emit('agentConnected', agent.name ?? '');
      },
      (err: unknown) => {
        if (isCallError(err, 'CALL_CLOSED')) return;
        if (isCallError(err, 'CALL_OUTBOUND_FAILED')) {
          this.log.info({ status: err.details?.status, reason: err.details?.reason }, 'callback not answered');
          this.record('call.callback-failed', { status: outboundFailure(err.details).status });
        } else {
          this.log.warn({ err }, 'the callback could not be placed');
        }
        void this.close('callback-failed');
      },
    );
  }

  protected override finish(cause: CallEndCause, end: CallEnd): void {
    const now = new Date().toISOString();
    // Connected and then ended by either side: done. Not reached: owed again (the scheduler retries).
    const done = end.customerJoined;
    const writes: Array<Promise<void>> = [
      this.cb.callbacks.update(this.id, {
        state: done ? 'done' : cause === 'shutdown' ? 'pending' : 'failed',
        completedAt: done ? now : null,
        lastError: done ? null : cause,
      }),
    ];
    if (this.recordCreated) {
      const stats = end.customerStats;
      writes.push(
        this.cb.calls.update(
          this.id,
          { state: 'ended', endedAt: now, endCause: cause, rtpPacketsSent: stats?.packetsSent ?? 0, rtpPacketsReceived: stats?.packetsReceived ?? 0 },
          'call.ended',
          { cause },
        ),
      );
    }
    for (const w of writes) w.catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'callback write failed'));
    this.cb.metrics.callsTotal.inc({ outcome: `callback-${cause}` });
    this.log.info({ cause, connected: done }, 'callback ended');
  }

  /** The outbound leg exists: the call's record is written before the INVITE goes out. */
  private async dialing(out: { sipCallId: string; localAddress: string; remote: string; localPort: number }): Promise<void> {
    const now = new Date().toISOString();
    await this.cb.calls
      .create(
        {
          id: this.id,
          sipCallId: out.sipCallId,
          trunk: this.cb.trunk,
          direction: 'outbound',
          fromUri: `sip:${this.cb.config.callbacks.fromUser}@${out.localAddress}`,
          fromUser: this.cb.config.callbacks.fromUser,
          fromName: null,
          toUri: `sip:${this.callback.number}@${out.remote}`,
          toUser: this.callback.number,
          remoteAddr: out.remote,
          transport: 'UDP',
          codec: this.codec,
          state: 'ringing',
          createdAt: now,
          answeredAt: null,
          endedAt: null,
          endCause: null,
          sipStatus: null,
          dtmf: '',
          rtpLocalPort: out.localPort,
          rtpRemote: null,
          rtpPacketsSent: 0,
          rtpPacketsReceived: 0,
          rtpPacketsDropped: 0,
          queue: this.callback.queue,
          agent: this.agent ?? null,
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
    void this.cb.callbacks.update(this.id, { state: 'dialing', attempts: this.callback.attempts }).catch(() => undefined);
    this.log.info({ number: this.callback.number, agent: this.agent }, 'dialing the caller back');
  }
}
