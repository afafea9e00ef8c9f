import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { SipRequest } from 'sip';
import { MediaError, digitSender, jointPort, promptPlayer, webrtcPort, type PromptPlayback } from '../../media';
import type { AudioPort, DigitSender, Joint, MediaWorker } from '../../media';
import { MediaJoint } from '../../media';
import type { DtmfDigitEvent } from '../../media';
import type { Recorder } from '../../media';
import type { RtpSessionStats } from '../../media';
import type { NegotiatedAudio } from '../../media';
import type { MediaClock } from '../../media';
import type { RecordingWriter } from '../../vault';
import type { WebRtcEndpoint } from '../../media';
import type { CloudEventData } from '../../sync/events';
import type { CodecName, Config } from '../config/schema';
import type { IvrConfig } from '../ivr/config';
import { IvrSession, type IvrResult, type IvrSpeech } from '../ivr/ivr-session';
import type { PromptSource } from '../ivr/prompts';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import { CallRecording, type RecordingSource } from '../recording/call-recording';
import { uriOf } from '../sip/messages';
import { uriUser, type CallerIdentity } from '../sip/identity';
import type { IncomingInvite } from '../sip/sip-server';
import type { CallEventType, CallRecord, CallStore } from '../store/call-store';
import { referTargetForNumber } from '../sip/refer';
import type { CallEndCause, CallEvents, LegInfo, LegKind, LegState, OutboundTarget, ParticipantRole, TransferableCall } from './contract';
import { CountedPort } from './counted-port';
import { CallError, isCallError } from './errors';
import { inboundRecord } from './inbound-record';
import { AgentLeg } from './legs/agent-leg';
import { CallerLeg, sanitise } from './legs/caller-leg';
import type { OutboundLeg } from './legs/outbound-leg';

export type { CallEndCause, CallEvents } from './contract';
export { rtpTimeoutS, sanitise } from './legs/caller-leg';

/** Places an outbound leg for a call (the CallManager wires it to the trunks and the port pool). */
export type OutboundDialer = (target: OutboundTarget, codec: CodecName, log: Logger, media?: MediaWorker) => Promise<OutboundLeg>;

export interface CallDeps {
  config: Config;
  store: CallStore;
  metrics: Metrics;
  clock: MediaClock;
  holdFrames: Record<CodecName, Buffer[]>;
  /** Set when config.ivr is: the IVR runs on every confirmed call before it is queued. */
  ivr?: { config: IvrConfig; prompts: PromptSource; speech?: Omit<IvrSpeech, 'audio' | 'payloadType'> };
  /** How addOutbound dials (routing.forward, REFER, callbacks, transfers). Unset: it refuses. */
  dialOutbound?: OutboundDialer;
}

/** An inbound call's SIP side as the CallManager negotiated it. */
export interface InboundSetup {
  invite: IncomingInvite;
  rtp: CallerLeg['rtp'];
  /** The media worker the caller's session was opened on: the call's joint and other legs go there too. */
  media?: MediaWorker;
  localAddress: string;
  audio: NegotiatedAudio;
  /** Our 200's SDP: the answer, or with a delayed offer our offer. */
  answerSdp: string;
}

export interface AddOutboundOptions {
  /** The far end hanging up ends the call with this cause; unset: only its leg is removed. */
  endCause?: CallEndCause;
  /** This leg is the customer (a callback): it joins the joint with its RTP session. */
  customer?: boolean;
  /** Once the leg exists, before the INVITE goes out (records); awaited. */
  dialing?(leg: OutboundLeg): void | Promise<void>;
  /** Answered, just before it joins (e.g. the agent lets go on a REFER). */
  beforeJoin?(): void;
}

/** One leg of the call and what the Call needs to know about it. */
export interface Leg {
  readonly id: string;
  readonly kind: LegKind;
  readonly name: string | null;
  readonly number: string | null;
  role: ParticipantRole;
  state: LegState;
  held: boolean;
  readonly since: string;
  readonly caller?: CallerLeg;
  readonly agent?: AgentLeg;
  readonly outbound?: OutboundLeg;
  /** A customer outbound leg's digit sender (the agent's dial pad). */
  dtmf?: DigitSender;
  /** Its port in the joint, while joined. */
  port?: CountedPort;
  /** An outbound leg still ringing: rejects addOutbound's promise when the leg or the call goes first. */
  abandon?: (err: CallError) => void;
}

/**
 * One call: its legs (the caller's SIP UAS leg, outbound SIP UAC legs, agents' WebRTC legs), one
 * media joint between them, its recording (tapping the joint), the IVR and the call's timers.
 * close() ends all of it, once. Every state change is written to the store with its event.
 * Inbound calls and forwarded calls are this class as is; a callback is a Call whose customer
 * leg is an outbound leg dialled once the agent is connected (callbacks/callback-call.ts).
 */
export class Call extends EventEmitter<CallEvents> implements TransferableCall {
  readonly id: string;
  readonly log: Logger;
  protected readonly joint: Joint;
  /** Set when the call's media lives on a media worker (every RTP leg opens there). */
  readonly mediaWorker: MediaWorker | undefined;
  /** What the joint sent to legs no longer in it: to the customer, to everyone else. */
  private readonly sentBefore = { customer: 0, others: 0 };
  private readonly legMap = new Map<string, Leg>();
  /** The caller's leg (inbound) or the callback's answered outbound leg. */
  private customer: Leg | undefined;
  /** The agent the desk gave the call to (`agent`, hold, mute). */
  private primaryAgent: Leg | undefined;
  private readonly inbound: CallerLeg | undefined;
  private readonly answerSdp: string | undefined;
  private dtmf = '';
  private closedCause: CallEndCause | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  protected readonly recording = new CallRecording({
    record: (type, data) => this.record(type, data),
    // Written straight to the store: the call may have closed meanwhile.
    stored: (data) => this.deps.store.update(this.id, {}, 'recording.stored', data),
    failed: (err) => this.log.error({ err, code: 'VAULT_WRITE_FAILED' }, 'recording could not be finalised'),
  });
  private ivr: IvrSession | undefined;
  private ivrResultValue: IvrResult | null = null;
  private forwardTo: OutboundTarget | undefined;
  private referring = false;
  private referRefused = false;
  /** Stats of the last outbound leg gone, for the call-ended record. */
  private outboundStats: RtpSessionStats | undefined;
  /** Outbound legs still being placed (RTP port bound, not in legMap yet): closed with the call. */
  private readonly placing = new Set<OutboundLeg>();

  constructor(
    protected readonly deps: CallDeps,
    log: Logger,
    /** `media`: the worker a call without an inbound leg (a callback) carries its media on. */
    opts: { id?: string; inbound?: InboundSetup; media?: MediaWorker; logBindings?: Record<string, unknown> } = {},
  ) {
    super();
    this.id = opts.id ?? randomUUID();
    const setup = opts.inbound;
    this.log = log.child({ callId: this.id, ...(setup ? { sipCallId: setup.invite.dialog.callId } : {}), ...opts.logBindings });
    this.mediaWorker = setup?.media ?? opts.media;
    this.joint = this.mediaWorker
      ? this.mediaWorker.joint({ maxParties: deps.config.calls.maxParties })
      : new MediaJoint({ clock: deps.clock, maxParties: deps.config.calls.maxParties });
    this.joint.on('mode', (mode, previous) => this.log.debug({ mode, previous }, 'media joint switched'));
    if (setup) {
      this.answerSdp = setup.answerSdp;
      this.inbound = new CallerLeg(setup.invite, setup.rtp, setup.localAddress, setup.audio, { ...deps, write: (type, data, changes) => this.persist(this.deps.store.update(this.id, changes ?? {}, type, data)) }, this.log);
      const leg = this.addLeg({ kind: 'caller', name: this.inbound.identity.name, number: this.inbound.identity.number ?? uriOf(setup.invite.rq.headers.from), caller: this.inbound });
      this.customer = leg;
    }
  }

  // ---- the contract -------------------------------------------------------------------------

  get codec(): CodecName {
    return this.inbound?.codec ?? this.deps.config.calls.codecs[0];
  }

  get identity(): CallerIdentity {
    return this.callerLeg().identity;
  }

  /**
   * The caller: number (asserted identity when the trunk trusts it, else From user) and display
   * name, for routing, callbacks and records. `private`: the agent's page shows "Private" instead.
   */
  get caller(): { number: string; name: string | null; private?: boolean } {
    const leg = this.callerLeg();
    return { number: leg.identity.number ?? uriOf(leg.invite.rq.headers.from), name: leg.identity.name, private: leg.identity.privacy !== null };
  }

  get agent(): string | undefined {
    return this.primaryAgent?.name ?? undefined;
  }

  /** The number the caller dialled (To user), for the agent's caller context. */
  get called(): string | null {
    return this.inbound?.identity.called ?? null;
  }

  get isHeld(): boolean {
    const id = this.customer?.id;
    return id !== undefined && this.joint.has(id) && this.joint.isHeld(id);
  }

  get isMuted(): boolean {
    const id = this.primaryAgent?.id;
    return id !== undefined && this.joint.has(id) && this.joint.isMuted(id);
  }

  get closed(): boolean {
    return this.closedCause !== undefined;
  }

  /** What the IVR decided (null: no IVR, or not finished yet). */
  get ivrResult(): IvrResult | null {
    return this.ivrResultValue;
  }

  /** The intent the caller chose in the IVR (routingCallFromInvite's ivrIntent). */
  get ivrIntent(): string | undefined {
    return this.ivrResultValue?.kind === 'intent' ? this.ivrResultValue.intent : undefined;
  }

  /** Every leg still on the call. */
  get legs(): LegInfo[] {
    return [...this.legMap.values()].map(info);
  }

  /** The customer: the caller's leg, or a callback's outbound leg once answered. */
  get customerLeg(): LegInfo | undefined {
    return this.customer && this.legMap.has(this.customer.id) ? info(this.customer) : undefined;
  }

  /** An event in the call's record (queue and agent milestones), with optional column changes. */
  record<T extends CallEventType>(type: T, data: CloudEventData<T>, changes: { queue?: string; agent?: string } = {}): void {
    if (this.closed) return;
    this.persist(this.deps.store.update(this.id, changes, type, data));
  }

  // ---- legs ---------------------------------------------------------------------------------

  /**
   * Adds an agent's (or supervisor's) WebRTC leg; it joins the joint with `role` once connected.
   * The first agent is the call's agent (the desk's). Throws CALL_CLOSED (the leg is closed).
   */
  addAgent(name: string, webrtc: WebRtcEndpoint, opts: { role?: ParticipantRole } = {}): string {
    if (this.closed) {
      void webrtc.close();
      throw new CallError('CALL_CLOSED', 'the call has ended');
    }
    const agent = new AgentLeg(name, webrtc, opts.role ?? 'party');
    const leg = this.addLeg({ kind: 'agent', name, number: null, role: agent.role, agent });
    if (!this.primaryAgent && agent.role === 'party') this.primaryAgent = leg;
    agent.on('connected', () => this.onAgentConnected(leg));
    agent.on('failed', () => this.onAgentFailed(leg));
    return leg.id;
  }

  /**
   * Dials `target` through its trunk with the call's codec; resolves with the leg's id once it
   * answered and joined. Rejects with CALL_OUTBOUND_UNAVAILABLE (not placed), CALL_OUTBOUND_FAILED
   * (details: status, reason), CALL_FULL or CALL_CLOSED.
   */
  async addOutbound(target: OutboundTarget, opts: AddOutboundOptions = {}): Promise<string> {
    const dial = this.deps.dialOutbound;
    if (this.closed) throw new CallError('CALL_CLOSED', 'the call has ended');
    if (!dial) throw new CallError('CALL_OUTBOUND_UNAVAILABLE', 'no trunk places outbound calls');
    if (this.parties() >= this.deps.config.calls.maxParties) throw new CallError('CALL_FULL', `calls.maxParties (${this.deps.config.calls.maxParties}) reached`);
    let out: OutboundLeg;
    try {
      out = await dial(target, this.codec, this.log, this.mediaWorker);
    } catch (err) {
      throw new CallError('CALL_OUTBOUND_UNAVAILABLE', `could not place the call to ${target.number}: ${(err as Error).message}`, { cause: (err as { code?: string }).code });
    }
    if (this.closed) {
      out.close();
      throw new CallError('CALL_CLOSED', 'the call has ended');
    }
    this.placing.add(out);
    try {
      await opts.dialing?.(out);
    } finally {
      this.placing.delete(out);
    }
    if (this.closed) {
      out.close();
      throw new CallError('CALL_CLOSED', 'the call has ended');
    }
    const leg = this.addLeg({ kind: 'outbound', name: null, number: target.number, outbound: out });
    return new Promise<string>((resolve, reject) => {
      leg.abandon = reject;
      out.on('answered', () => {
        leg.abandon = undefined;
        if (this.closed || !this.legMap.has(leg.id)) return;
        opts.beforeJoin?.();
        try {
          if (opts.customer) {
            leg.dtmf = digitSender(this.deps.clock, out.rtp);
            this.customer = leg;
          }
          // Through the session's own timeline, so its SSRC stays continuous across relay and mix.
          this.join(leg, jointPort(out.rtp, out.payloadType, leg.dtmf));
        } catch (err) {
          this.dropLeg(leg, 'join-failed');
          reject(err);
          return;
        }
        resolve(leg.id);
      });
      out.on('failed', (status, reason) => {
        leg.abandon = undefined;
        this.dropLeg(leg, 'failed');
        reject(new CallError('CALL_OUTBOUND_FAILED', `${target.number} not reached: ${status} ${reason}`, { status, reason }));
      });
      out.on('ended', () => {
        if (opts.endCause) void this.close(opts.endCause);
        else this.dropLeg(leg, 'remote-hangup');
      });
      out.dial();
    });
  }

  /** Takes a leg off the call and ends it (the caller's leg: the call ends with `cause`). */
  removeLeg(legId: string, cause: CallEndCause): void {
    const leg = this.legOf(legId);
    if (leg.caller || leg === this.customer) {
      void this.close(cause);
      return;
    }
    this.dropLeg(leg, cause);
  }

  /** Hold: a held leg hears the hold tone (the caller) or nothing, and nobody hears it. */
  holdLeg(legId: string, on: boolean): void {
    const leg = this.legOf(legId);
    if (this.closed) throw new CallError('CALL_CLOSED', 'the call has ended');
    leg.held = on;
    if (this.joint.has(leg.id)) this.joint.setHold(leg.id, on ? this.deps.holdFrames[this.codecOf(leg)] : null);
  }

  setRole(legId: string, role: ParticipantRole): void {
    const leg = this.legOf(legId);
    if (this.joint.has(leg.id)) {
      try {
        this.joint.setRole(leg.id, role);
      } catch (err) {
        throw jointError(err);
      }
    }
    leg.role = role;
  }

  // ---- blind transfers (agents/transfers.ts) -------------------------------------------------

  /** The trunk the caller came in on (null for a callback): transfers to a number go through it. */
  get trunk(): { name: string; transferMode: 'refer' | 'bridge'; outbound?: unknown } | null {
    return this.inbound?.invite.trunk ?? null;
  }

  /**
   * The agent hands the caller to a queue or another agent: the agent's leg leaves (`cause` in
   * the record), the caller comes off agent hold and hears the hold tone until attachAgent joins
   * the next agent. The recording goes on. False without an inbound caller or an agent.
   */
  releaseAgent(cause: CallEndCause): boolean {
    const leg = this.primaryAgent;
    const customer = this.customer;
    if (this.closed || !leg || !this.inbound || !customer?.caller) return false;
    if (customer.held) this.holdLeg(customer.id, false);
    this.primaryAgent = undefined;
    this.dropLeg(leg, cause);
    if (!this.inbound.onHold) this.inbound.startHoldTone();
    return true;
  }

  /**
   * Blind transfer through the PBX (trunks[].transferMode refer): REFER on the caller's dialog
   * to `number` at the PBX's Contact host (RFC 3515). Resolves with the referred call's final
   * status from the NOTIFYs (2xx: the PBX connected the caller), or the REFER's own refusal
   * (≥ 300), or 487 when the call ended first. Rejects on a bad number (SIP_BAD_REFER_TARGET)
   * or a REFER already running.
   */
  referCaller(number: string, referredBy?: string): Promise<number> {
    const dialog = this.callerLeg().dialog;
    const target = referTargetForNumber(number, dialog.remoteTargetUri);
    return new Promise<number>((resolve, reject) => {
      const done = (status: number): void => {
        dialog.off('referProgress', onProgress);
        this.off('closed', onClosed);
        resolve(status);
      };
      const onProgress = (status: number, final: boolean): void => {
        if (final) done(status);
      };
      const onClosed = (): void => done(487);
      dialog.on('referProgress', onProgress);
      this.once('closed', onClosed);
      dialog.refer(target, referredBy === undefined ? {} : { referredBy }).then(
        (status) => {
          if (status >= 300) done(status);
        },
        (err: unknown) => {
          dialog.off('referProgress', onProgress);
          this.off('closed', onClosed);
          reject(err);
        },
      );
    });
  }

  /** Makes an agent leg the call's agent (hold, mute, hang-up): a consult's target after the first agent left. */
  setPrimaryAgent(legId: string): void {
    const leg = this.legOf(legId);
    if (leg.kind !== 'agent') throw new CallError('CALL_UNKNOWN_LEG', `leg ${legId} is not an agent's`);
    this.primaryAgent = leg;
  }

  // ---- the desk's view ----------------------------------------------------------------------

  /**
   * Gives the call an agent's WebRTC leg. The caller keeps hearing the hold tone until the leg
   * connects; then the joint carries audio both ways. A failed leg ends the call (or, when the
   * desk listens for agentMediaFailed, lets the desk re-queue the caller).
   */
  attachAgent(agentName: string, leg: WebRtcEndpoint): void {
    if (this.closed) {
      void leg.close();
      return;
    }
    if (this.primaryAgent) this.dropLeg(this.primaryAgent, 'replaced');
    this.primaryAgent = undefined;
    this.addAgent(agentName, leg);
  }

  /**
   * Takes back the agent's leg before it was joined (its media failed): the leg is closed, the
   * caller keeps hearing the hold tone, and another agent can be attached. False once joined.
   */
  detachAgent(): boolean {
    const leg = this.primaryAgent;
    if (this.closed || (leg && this.joint.has(leg.id))) return false;
    this.primaryAgent = undefined;
    if (leg) this.dropLeg(leg, 'media-failed');
    if (this.inbound && !this.inbound.onHold) this.inbound.startHoldTone();
    return true;
  }

  attachRecording(recorder: Recorder, writer: RecordingWriter): void {
    this.recording.attach(recorder, writer, this.closed || !this.joined ? undefined : this.tapSource());
  }

  /**
   * The joint's taps for whoever listens to the call besides its parties (the recording, a media
   * fork, live transcription): left the customer, right what the customer hears. undefined before
   * the customer joined or once the call closed. Taps go when the joint closes with the call.
   */
  tapSource(): RecordingSource | undefined {
    // On a media worker the taps get the packets in chunks (RemoteJoint.addTap).
    if (this.closed || !this.joined) return undefined;
    const callerId = this.customer?.id ?? '';
    return { addTap: (tap) => this.joint.addTap(tap, callerId), removeTap: (tap) => this.joint.removeTap(tap) };
  }

  get recordingState(): { active: boolean; paused: boolean } {
    return this.recording.state;
  }

  setRecordingPaused(on: boolean, actor: string, reason: string): boolean {
    return !this.closed && this.recording.setPaused(on, actor, reason);
  }

  /** Ends the recording (call end, low disk, write failure); the call itself goes on. */
  stopRecording(cause: string): void {
    this.recording.stop(cause);
  }

  /** Agent hold: the caller hears the hold tone, nothing is relayed either way. */
  setHold(on: boolean): void {
    const customer = this.customer;
    if (!customer || !this.joined || this.closed) return;
    this.holdLeg(customer.id, on);
    this.record(on ? 'call.agent-hold' : 'call.agent-unhold', {});
  }

  setMute(on: boolean): void {
    const agent = this.primaryAgent;
    if (!agent || !this.joined || this.closed || !this.joint.has(agent.id)) return;
    this.joint.setMute(agent.id, on);
    this.record(on ? 'call.agent-mute' : 'call.agent-unmute', {});
  }

  /** Digits from the agent's dial pad, sent to the customer as RFC 4733; false if not negotiated. */
  sendDtmf(digits: string): boolean {
    if (this.closed) return false;
    if (this.inbound) return this.inbound.sendDtmf(digits);
    return this.customer?.dtmf?.send(digits) ?? false;
  }

  // ---- inbound set-up -----------------------------------------------------------------------

  /**
   * Delayed offer (RFC 3261 13.2.1, Cisco CUCM's default): the setup's `answerSdp` is our offer
   * (the 200 carries it) and `audio` a placeholder; the call is queued or joined only once the
   * ACK's answer is known. Call before start().
   */
  offerInAnswer(codecs: NegotiatedAudio['codec'][]): void {
    this.callerLeg().offerInAnswer(codecs);
  }

  /**
   * Call before start(): once the caller's ACK arrives, the call is not queued (no IVR either) but
   * forwarded: an outbound leg to `target`, the caller hearing the hold tone while it rings,
   * joined when the far end answers. BYE on either side ends both.
   */
  forwardOnConfirm(target: OutboundTarget): void {
    this.forwardTo = target;
  }

  /** Records the call, wires the caller's leg and answers (after the trunk's ring time, if any). */
  start(): void {
    const leg = this.callerLeg();
    const rq = leg.invite.rq;
    const delayed = leg.delayedOffer;
    const record: CallRecord = {
      ...inboundRecord(this.id, rq, leg.invite.flow, leg.invite.trunk.name, leg.identity),
      codec: delayed ? null : leg.codec,
      rtpLocalPort: leg.rtp.localPort,
      rtpRemote: delayed ? null : leg.remote,
    };
    this.persist(this.deps.store.create(record, 'call.offered', { from: record.fromUri, to: record.toUri, trunk: record.trunk, ...identityEventData(leg.identity), ...(delayed ? { delayedOffer: true } : {}) }));
    this.log.info({ from: record.fromUri, to: record.toUri, trunk: record.trunk, codec: delayed ? null : leg.codec, transport: record.transport, delayedOffer: delayed, callerSource: leg.identity.source }, 'call offered');

    leg.on('confirmed', () => this.onConfirmed());
    leg.on('ended', (cause, sipStatus) => void this.close(cause, sipStatus));
    leg.on('codec', (codec) => {
      this.ivr?.setCodec(codec);
      this.joinCaller();
    });
    // The PBX's hold: nothing to or from the caller (its RTP is paused too) until it resumes.
    leg.on('held', () => {
      const me = this.customer;
      if (me?.caller && this.joined && this.joint.has(me.id)) this.joint.setHold(me.id, []);
    });
    leg.on('resumed', () => {
      const me = this.customer;
      if (me?.caller && this.joined && this.joint.has(me.id)) this.joint.setHold(me.id, me.held ? this.deps.holdFrames[leg.codec] : null);
      else if (leg.dialog.state === 'confirmed' && !this.ivr) leg.startHoldTone();
    });
    leg.on('dtmf', (ev, origin) => this.onDtmf(ev, origin));
    leg.on('refer', (re) => this.onRefer(re));
    leg.start();

    const delay = leg.invite.trunk.answerDelayMs;
    if (delay > 0) {
      leg.ring();
      this.timers.push(setTimeout(() => this.answer(), delay));
    } else {
      this.answer();
    }
  }

  // ---- the end ------------------------------------------------------------------------------

  /** Ends the call: every leg (BYE, CANCEL), the joint, the recording, the IVR and timers. Idempotent. */
  close(cause: CallEndCause, sipStatus?: number): Promise<void> {
    if (this.closedCause) return Promise.resolve();
    // Before closedCause is set, so that its `call.ivr-done` (abandoned, closed) is still recorded.
    this.ivr?.close();
    this.closedCause = cause;
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
    this.stopRecording('call-ended');
    const relayed = this.sentCounts();
    const customerJoined = this.customer !== undefined && this.joint.has(this.customer.id);
    this.joint.close();
    const shutdown = cause === 'shutdown';
    let caller: ReturnType<CallerLeg['close']> | undefined;
    let customerStats: RtpSessionStats | undefined;
    for (const leg of this.legMap.values()) {
      leg.state = 'ended';
      leg.abandon?.(new CallError('CALL_CLOSED', 'the call ended while the leg was ringing'));
      leg.dtmf?.stop();
      if (leg.agent) void leg.agent.close();
      if (leg.outbound) {
        if (leg === this.customer) customerStats = leg.outbound.stats;
        else this.outboundStats ??= leg.outbound.stats;
        leg.outbound.close(shutdown);
      }
      if (leg.caller) caller = leg.caller.close(shutdown, sipStatus);
    }
    for (const out of this.placing) out.close(shutdown);
    this.placing.clear();
    this.legMap.clear();
    this.finish(cause, { caller, customerStats, customerJoined, relayed, forwarded: this.outboundStats });
    this.emit('closed', cause);
    this.removeAllListeners();
    return caller?.hangup ?? Promise.resolve();
  }

  /** The call's last record and metrics (a callback writes its own). */
  protected finish(cause: CallEndCause, end: CallEnd): void {
    const stats = end.caller?.stats ?? { packetsSent: 0, packetsReceived: 0, packetsDropped: 0 };
    this.deps.metrics.rtpPackets.inc({ direction: 'sent' }, stats.packetsSent);
    this.deps.metrics.rtpPackets.inc({ direction: 'received' }, stats.packetsReceived);
    this.deps.metrics.callsTotal.inc({ outcome: cause });
    this.persist(
      this.deps.store.update(
        this.id,
        {
          state: 'ended',
          endedAt: new Date().toISOString(),
          endCause: cause,
          sipStatus: end.caller?.sipStatus,
          rtpPacketsSent: stats.packetsSent,
          rtpPacketsReceived: stats.packetsReceived,
          rtpPacketsDropped: stats.packetsDropped,
        },
        'call.ended',
        {
          cause,
          packetsSent: stats.packetsSent,
          packetsReceived: stats.packetsReceived,
          ...(end.relayed ? { bridgedToAgent: end.relayed.toAgent, bridgedToCaller: end.relayed.toCaller } : {}),
          ...(end.forwarded ? { forwardPacketsSent: end.forwarded.packetsSent, forwardPacketsReceived: end.forwarded.packetsReceived } : {}),
        },
      ),
    );
    this.log.info({ cause, rtp: end.caller?.stats }, 'call ended');
  }

  // ---- what the subclass (callbacks) changes -------------------------------------------------

  /**
   * The agent's leg is connected: it joins the customer. A callback first dials its customer
   * (callbacks/callback-call.ts overrides this).
   */
  protected onAgentUp(leg: Leg): void {
    if (leg !== this.primaryAgent) {
      this.joinAgent(leg);
      return;
    }
    if (this.joint.has(leg.id)) return;
    this.inbound?.stopHoldTone();
    this.joinAgent(leg);
    if (!this.joint.has(leg.id)) return;
    this.record('call.agent-connected', { agent: leg.name }, { agent: leg.name ?? undefined });
    this.log.info({ agent: leg.name }, 'agent connected: caller and agent joined');
    this.emit('agentConnected', leg.name ?? '');
  }

  /** The agent's leg failed: before it joined, the desk may re-queue the caller; else the call ends. */
  protected onAgentLegFailed(leg: Leg): void {
    if (leg !== this.primaryAgent) {
      this.dropLeg(leg, 'media-failed');
      return;
    }
    if (!this.joint.has(leg.id) && !this.closed && this.listenerCount('agentMediaFailed') > 0) this.emit('agentMediaFailed', leg.name ?? '');
    else void this.close('media-failed');
  }

  /** Joins an agent leg with its role; a full joint ends that leg, not the call. */
  protected joinAgent(leg: Leg): void {
    const webrtc = leg.agent?.webrtc;
    if (!webrtc) return;
    try {
      this.join(leg, webrtcPort(webrtc));
    } catch (err) {
      this.log.warn({ err, code: isCallError(err) ? err.code : undefined, legId: leg.id }, 'agent leg could not join the call');
      this.dropLeg(leg, 'join-failed');
    }
  }

  protected get primary(): Leg | undefined {
    return this.primaryAgent;
  }

  /** Store writes never block or break the call; a failure is logged with the call's id. */
  protected persist(write: Promise<void>): void {
    write.catch((err: unknown) => this.log.error({ err, code: 'DB_FAILED' }, 'call record write failed'));
  }

  // ---- internals ----------------------------------------------------------------------------

  private callerLeg(): CallerLeg {
    if (!this.inbound) throw new CallError('CALL_UNKNOWN_LEG', 'this call has no inbound caller leg');
    return this.inbound;
  }

  private legOf(legId: string): Leg {
    const leg = this.legMap.get(legId);
    if (!leg) throw new CallError('CALL_UNKNOWN_LEG', `no leg ${legId} on this call`);
    return leg;
  }

  /** Parties counted against calls.maxParties: monitors (listener, coach, barge) never are. */
  private parties(): number {
    let n = 0;
    for (const leg of this.legMap.values()) if (leg.role === 'party') n++;
    return n;
  }

  private addLeg(l: { kind: LegKind; name: string | null; number: string | null; role?: ParticipantRole; caller?: CallerLeg; agent?: AgentLeg; outbound?: OutboundLeg }): Leg {
    const leg: Leg = { ...l, id: randomUUID(), role: l.role ?? 'party', state: l.kind === 'caller' ? 'up' : 'ringing', held: false, since: new Date().toISOString() };
    this.legMap.set(leg.id, leg);
    // Who was on the call when: the caller's leg is the call itself (call.offered).
    if (leg.kind !== 'caller') this.record('call.leg-added', { legId: leg.id, kind: leg.kind, ...(leg.name ? { name: leg.name } : {}), ...(leg.number ? { number: leg.number } : {}) });
    this.emit('legAdded', leg.id, leg.kind, leg.name);
    return leg;
  }

  /** Puts a leg's audio into the joint (JOINT_FULL: CALL_FULL). */
  private join(leg: Leg, port: AudioPort): void {
    const counted = new CountedPort(port);
    try {
      this.joint.add({ id: leg.id, kind: leg.kind === 'outbound' ? 'external' : leg.kind, role: leg.role, codec: this.codecOf(leg), port: counted });
    } catch (err) {
      throw jointError(err);
    }
    leg.port = counted;
    if (leg.state === 'ringing') this.record('call.leg-joined', { legId: leg.id, kind: leg.kind, ...(leg.name ? { name: leg.name } : {}), ...(leg.number ? { number: leg.number } : {}) });
    leg.state = 'up';
    if (leg.held) this.joint.setHold(leg.id, this.deps.holdFrames[this.codecOf(leg)]);
  }

  /** Takes a leg's audio out of the joint, keeping its count for the record. */
  private unjoin(leg: Leg): void {
    if (!this.joint.has(leg.id)) return;
    this.joint.remove(leg.id);
    if (leg.port) {
      if (leg === this.customer) this.sentBefore.customer += leg.port.sent;
      else this.sentBefore.others += leg.port.sent;
    }
    leg.port = undefined;
  }

  /**
   * The caller's RTP session joins (again) with its negotiated payload type: once confirmed (a
   * delayed offer knows it only then), and after the PBX changed the codec.
   */
  private joinCaller(): void {
    const leg = this.customer;
    const caller = leg?.caller;
    if (!leg || !caller || this.closed) return;
    this.unjoin(leg);
    this.join(leg, jointPort(caller.rtp, caller.payloadType, caller.dtmfSender));
  }

  /** Two or more participants: audio flows (the old `bridged`). */
  private get joined(): boolean {
    return this.joint.participants.length >= 2;
  }

  private codecOf(leg: Leg): CodecName {
    return leg.caller?.codec ?? this.codec;
  }

  private sentCounts(): { toAgent: number; toCaller: number } | undefined {
    let toCaller = this.sentBefore.customer;
    let toAgent = this.sentBefore.others;
    for (const leg of this.legMap.values()) {
      if (!leg.port) continue;
      if (leg === this.customer) toCaller += leg.port.sent;
      else toAgent += leg.port.sent;
    }
    return toCaller + toAgent > 0 ? { toAgent, toCaller } : undefined;
  }

  /** Ends one leg and takes it off the call (not for the caller's leg: that is close()). */
  private dropLeg(leg: Leg, why: string): void {
    if (!this.legMap.has(leg.id)) return;
    this.unjoin(leg);
    this.legMap.delete(leg.id);
    leg.abandon?.(new CallError('CALL_OUTBOUND_FAILED', `the leg was removed while ringing (${why})`, { status: 487, reason: why }));
    leg.abandon = undefined;
    leg.state = 'ended';
    leg.dtmf?.stop();
    if (leg.agent) void leg.agent.close();
    if (leg.outbound) {
      this.outboundStats = leg.outbound.stats;
      leg.outbound.close();
    }
    if (leg === this.primaryAgent) this.primaryAgent = undefined;
    if (leg === this.customer) this.customer = undefined;
    if (this.closed) return;
    this.record('call.leg-removed', { legId: leg.id, kind: leg.kind, ...(leg.name ? { name: leg.name } : {}), reason: why });
    this.emit('legRemoved', leg.id, leg.kind, leg.name);
  }

  private onAgentConnected(leg: Leg): void {
    if (this.closed || !this.legMap.has(leg.id)) return;
    this.onAgentUp(leg);
  }

  private onAgentFailed(leg: Leg): void {
    if (this.closed || !this.legMap.has(leg.id)) return;
    this.onAgentLegFailed(leg);
  }

  private answer(): void {
    if (this.closed) return;
    this.callerLeg().accept(this.answerSdp ?? '');
    const maxMs = this.deps.config.calls.maxDurationS * 1000;
    this.timers.push(setTimeout(() => void this.close('max-duration'), maxMs));
    this.persist(this.deps.store.update(this.id, { state: 'answered', answeredAt: new Date().toISOString(), sipStatus: 200 }, 'call.answered', {}));
    this.log.info('call answered');
  }

  private onConfirmed(): void {
    const leg = this.callerLeg();
    this.persist(this.deps.store.update(this.id, {}, 'call.confirmed', {}));
    leg.startRtpWatch();
    this.joinCaller();
    const forward = this.forwardTo;
    if (forward) {
      if (!leg.onHold) leg.startHoldTone();
      this.emit('confirmed');
      if (!this.closed) this.startForward(forward);
      return;
    }
    if (this.deps.ivr) {
      this.emit('confirmed');
      if (!this.closed) this.startIvr(this.deps.ivr);
      return;
    }
    // The caller hears the hold tone until an agent is joined.
    if (!leg.onHold) leg.startHoldTone();
    this.emit('confirmed');
    if (!this.closed) this.emit('routed', null);
  }

  /** The IVR talks to the caller (prompts on the caller's RTP session) instead of the hold tone. */
  private startIvr(ivr: NonNullable<CallDeps['ivr']>): void {
    const leg = this.callerLeg();
    const rtp = leg.rtp;
    const speech = ivr.speech ? { ...ivr.speech, audio: rtp, payloadType: () => leg.payloadType } : undefined;
    const player = (frames: readonly Buffer[], onEnd: () => void): PromptPlayback => promptPlayer(this.deps.clock, rtp, frames, onEnd);
    const session = new IvrSession({ config: ivr.config, prompts: ivr.prompts, clock: this.deps.clock, rtp, player, codec: leg.codec, log: this.log, speech });
    this.ivr = session;
    // Each listening turn in the record (on site: the policy lets none of it leave), for accuracy reviews.
    session.on('speech', (t) => {
      this.deps.metrics.ivrSpeechTurns.inc({ result: t.result });
      this.record('call.ivr-speech', { ...t });
    });
    session.once('done', (result) => this.onIvrDone(result));
    this.record('call.ivr-started', { menu: ivr.config.entry });
    void session.start();
  }

  private onIvrDone(result: IvrResult): void {
    this.ivr = undefined;
    this.ivrResultValue = result;
    this.record('call.ivr-done', ivrEventData(result));
    if (this.closed || (result.kind === 'abandoned' && result.reason === 'closed')) return;
    if (this.inbound && !this.inbound.onHold && !this.joined) this.inbound.startHoldTone();
    this.emit('routed', result);
  }

  private startForward(target: OutboundTarget): void {
    this.addOutbound(target, {
      endCause: 'forward-hangup',
      dialing: (out) => {
        this.record('call.forward-dialing', { trunk: target.trunk, number: target.number, rule: target.rule, sipCallId: out.sipCallId, remote: out.remote, rtpLocalPort: out.localPort });
      },
      beforeJoin: () => this.inbound?.stopHoldTone(),
    }).then(
      (legId) => {
        const out = this.legMap.get(legId)?.outbound;
        this.record('call.forward-connected', { sipCallId: out?.sipCallId });
        this.log.info({ remote: out?.remote }, 'forwarded call answered: RTP legs joined');
      },
      (err: unknown) => {
        if (isCallError(err, 'CALL_OUTBOUND_FAILED')) {
          this.record('call.forward-failed', outboundFailure(err.details));
          this.log.info({ status: err.details?.status, reason: err.details?.reason }, 'forwarded call not answered');
        } else if (!isCallError(err, 'CALL_CLOSED')) {
          this.log.warn({ err, code: isCallError(err) ? err.details?.cause : undefined }, 'forward leg could not be placed');
        }
        void this.close('forward-failed');
      },
    );
  }

  /**
   * REFER from the PBX (RFC 3515), trunks[].acceptRefer: 202, then ccedge dials the Refer-To
   * number through the trunk's outbound address, joins the caller to it when answered and
   * releases the agent; NOTIFYs carry the progress as message/sipfrag. Not accepted: 603 Decline.
   */
  private onRefer(rq: SipRequest): void {
    const caller = this.callerLeg();
    const dialog = caller.dialog;
    if (this.closed) {
      dialog.answer(rq, 481, 'Call/Transaction Does Not Exist');
      return;
    }
    const trunk = caller.invite.trunk;
    if (!trunk.acceptRefer || !trunk.outbound || !this.deps.dialOutbound) {
      this.deps.metrics.sipRejections.inc({ status: '603', code: 'SIP_REFER_DECLINED' });
      // One record event per call: a PBX repeating REFER must not write a row each time.
      if (!this.referRefused) this.record('call.refer-refused', { reason: 'trunk does not accept REFER' });
      this.referRefused = true;
      dialog.answer(rq, 603, 'Decline', { warning: '399 ccedge "REFER not accepted on this trunk (trunks[].acceptRefer)"' });
      return;
    }
    const referTo = rq.headers['refer-to'];
    const uri = typeof referTo === 'string' ? referTo : referTo && typeof referTo === 'object' && 'uri' in referTo ? uriOf(referTo as Parameters<typeof uriOf>[0]) : '';
    const number = referTargetNumber(uri);
    if (number === null) {
      this.deps.metrics.sipRejections.inc({ status: '400', code: 'SIP_BAD_REFER_TO' });
      dialog.answer(rq, 400, 'Bad Refer-To', { warning: '399 ccedge "Refer-To must be a sip:, sips: or tel: URI with a number"' });
      return;
    }
    if (this.referring || this.hasOutbound() || caller.negotiating) {
      dialog.answer(rq, 491, 'Request Pending');
      return;
    }
    this.referring = true;
    const referCseq = rq.headers.cseq.seq;
    dialog.answer(rq, 202, 'Accepted');
    dialog.notifyRefer(referCseq, 'SIP/2.0 100 Trying', false);
    this.record('call.refer-accepted', { number });
    this.log.info({ number }, 'REFER accepted: dialling the target');
    let sipCallId = '';
    this.addOutbound(
      { trunk: trunk.name, number, rule: 'refer' },
      {
        endCause: 'forward-hangup',
        dialing: (out) => {
          sipCallId = out.sipCallId;
          this.record('call.refer-dialing', { trunk: trunk.name, number, sipCallId: out.sipCallId, remote: out.remote });
        },
        // The agent (or the queue) lets go; the caller now talks to the REFER's target.
        beforeJoin: () => this.releaseForRefer(),
      },
    ).then(
      (legId) => {
        this.referring = false;
        this.record('call.referred', { number, sipCallId });
        this.log.info({ number, remote: this.legMap.get(legId)?.outbound?.remote }, 'REFER target answered: caller joined to it');
        dialog.notifyRefer(referCseq, 'SIP/2.0 200 OK', true);
      },
      (err: unknown) => {
        this.referring = false;
        if (isCallError(err, 'CALL_CLOSED')) return;
        if (isCallError(err, 'CALL_OUTBOUND_FAILED')) {
          const status = Number(err.details?.status ?? 503);
          const reason = String(err.details?.reason ?? '');
          this.record('call.refer-failed', { status, reason });
          this.log.info({ status, reason }, 'REFER target not reached: the call stays as it was');
          dialog.notifyRefer(referCseq, `SIP/2.0 ${status} ${sanitise(reason).slice(0, 60) || 'Failed'}`, true);
          return;
        }
        this.log.warn({ err }, 'REFER target could not be dialled');
        this.record('call.refer-failed', { status: 503 });
        dialog.notifyRefer(referCseq, 'SIP/2.0 503 Service Unavailable', true);
      },
    );
  }

  private releaseForRefer(): void {
    this.ivr?.close();
    this.ivr = undefined;
    this.stopRecording('transferred');
    for (const leg of [...this.legMap.values()]) if (leg.agent) this.dropLeg(leg, 'transferred');
    this.primaryAgent = undefined;
    this.inbound?.stopHoldTone();
    this.emit('released', 'transferred');
  }

  private hasOutbound(): boolean {
    if (this.placing.size > 0) return true;
    for (const leg of this.legMap.values()) if (leg.outbound) return true;
    return false;
  }

  private onDtmf(ev: DtmfDigitEvent, origin: 'rtp' | 'info'): void {
    if (this.closed) return;
    this.dtmf += ev.digit;
    this.deps.metrics.dtmfDigits.inc();
    this.persist(this.deps.store.update(this.id, { dtmf: this.dtmf }, 'call.dtmf', { digit: ev.digit, durationMs: ev.durationMs }));
    this.log.info({ digit: ev.digit, durationMs: ev.durationMs }, 'DTMF');
    this.emit('dtmf', ev.digit);
    if (origin === 'info') this.ivr?.pushDigit(ev.digit, 'info');
  }
}

/** What close() hands to finish(). */
export interface CallEnd {
  caller: { sipStatus: number | undefined; stats: RtpSessionStats } | undefined;
  /** A callback's customer (outbound) leg. */
  customerStats: RtpSessionStats | undefined;
  /** The customer was in the joint when the call ended. */
  customerJoined: boolean;
  relayed: { toAgent: number; toCaller: number } | undefined;
  forwarded: RtpSessionStats | undefined;
}

function info(leg: Leg): LegInfo {
  return { id: leg.id, kind: leg.kind, name: leg.name, number: leg.number, role: leg.role, state: leg.state, held: leg.held, since: leg.since };
}

/** The data of `call.ivr-done`: a flat, stable shape for the record (and later the cloud). */
function ivrEventData(r: IvrResult): CloudEventData<'call.ivr-done'> {
  if (r.kind === 'intent') {
    const base = { result: 'intent', intent: r.intent, path: r.path, menu: r.menu, fallback: r.fallback };
    return r.speech ? { ...base, source: 'speech', text: r.speech.text, confidence: r.speech.confidence, how: r.speech.how, turns: r.speech.turns } : base;
  }
  if (r.kind === 'callback') return { result: 'callback', path: r.path, menu: r.menu, fallback: r.fallback };
  return { result: 'abandoned', reason: r.reason, path: r.path };
}

/** The SIP status and reason of a CALL_OUTBOUND_FAILED error (its details are built with exactly these). */
export function outboundFailure(details: Readonly<Record<string, unknown>> | undefined): { status?: number; reason?: string } {
  const status = details?.status;
  const reason = details?.reason;
  return { ...(typeof status === 'number' ? { status } : {}), ...(typeof reason === 'string' ? { reason } : {}) };
}

/** The number a REFER's Refer-To names (sip:/sips:/tel: user), or null for anything else. */
export function referTargetNumber(uri: string): string | null {
  const user = uriUser(uri);
  return user !== null && /^[A-Za-z0-9+*#._-]{1,64}$/.test(user) ? user : null;
}

/**
 * Identity fields of `call.offered`. With privacy asked for, the asserted number stays on site
 * (the record has it for compliance); otherwise the residency policy masks or hashes it.
 */
function identityEventData(id: CallerIdentity): CloudEventData<'call.offered'> {
  return {
    callerSource: id.source,
    ...(id.privacy ? { privacy: id.privacy } : id.asserted ? { asserted: id.asserted } : {}),
    ...(id.originalCalled ? { originalCalled: id.originalCalled } : {}),
  };
}

/** The joint's refusals as the call's coded errors. */
function jointError(err: unknown): unknown {
  if (err instanceof MediaError && err.code === 'JOINT_FULL') return new CallError('CALL_FULL', err.message);
  if (err instanceof MediaError && err.code === 'JOINT_CLOSED') return new CallError('CALL_CLOSED', err.message);
  return err;
}
