import type { Acd } from '../acd/acd';
import type { ConsultPhase, PartyInfo, ServerMessage } from '../agent-ui/protocol';
import { parseTransferTarget } from '../agent-ui/transfer-target';
import { Call } from '../calls/call';
import type { DeskCall, LegInfo } from '../calls/contract';
import { isCallError } from '../calls/errors';
import type { Logger } from '../logging';
import type { WebRtcEndpoint } from '../../media';
import { isAcdError } from '../acd/errors';

export interface ConsultsOptions {
  acd: Acd;
  /** Sends a message to every page of an agent. */
  send(agent: string, msg: ServerMessage): void;
  log: Logger;
  /** A new WebRTC leg for an agent joining the call (the desk's interfaces and ports). */
  createLeg(call: Call): WebRtcEndpoint;
  /** Seconds a consulted agent's page has to answer the WebRTC offer. */
  mediaSetupS: number;
  /** calls.maxParties: parties per call (monitors not counted). */
  maxParties: number;
}

/** A consulted agent: ringing, then on the call with its own WebRTC leg. */
interface TargetAgent {
  name: string;
  callId: string;
  /** Its leg on the call once it answered. */
  legId: string | null;
  webrtc: WebRtcEndpoint | null;
  /** The WebRTC offer is out, the page's answer not in yet. */
  offerTimer: NodeJS.Timeout | null;
  talking: boolean;
}

/** One consult: the caller on hold while `agent` talks to `target` (an outbound leg). */
interface Consult {
  agent: string;
  target: string;
  phase: ConsultPhase;
  /** The target's leg once it exists (ringing or up). */
  legId: string | null;
  /** agent:<name> targets: that agent. */
  targetAgent: string | null;
}

type Reply = (m: ServerMessage) => void;

/**
 * Consult, complete, conference and cancel for the agent desk: the caller's leg held in the call's
 * joint while the agent talks to a target dialled through the call's trunk, then the three ways out.
 * Always bridged (an outbound leg in the joint), also on `transferMode: refer` trunks: a REFER would
 * hand the caller to the PBX before the agent could complete, conference or cancel.
 */
export class Consults {
  private readonly consults = new Map<string, Consult>();
  /** Calls in conference (three or more parties after a consult). */
  private readonly conferences = new Set<string>();
  /** Calls whose leg events this service listens to. */
  private readonly watched = new Set<string>();
  private readonly callOf = new Map<string, Call>();
  /** Consulted agents (ringing, talking in a consult or a conference), by agent name. */
  private readonly targets = new Map<string, TargetAgent>();
  private readonly log: Logger;

  constructor(private readonly opts: ConsultsOptions) {
    this.log = opts.log.child({ component: 'consults' });
    opts.acd.on('rona', (agent, qc) => {
      const t = this.targets.get(agent);
      if (t?.callId === qc.callId && !t.talking) this.targetFailed(t, 'no answer');
    });
  }

  /** The agent already has a leg on the call (a consult's target that took it over): no new leg. */
  hasLeg(agent: string, call: DeskCall): boolean {
    return call instanceof Call && call.legs.some((l) => l.kind === 'agent' && l.name === agent && l.state !== 'ended');
  }

  /** The agent is on (or ringing for) this call as a consulted agent: the desk leaves it alone. */
  isTarget(agent: string, callId: string): boolean {
    return this.targets.get(agent)?.callId === callId;
  }

  /** A consult is running on the call (the page may not start another, nor a blind transfer). */
  active(callId: string): boolean {
    return this.consults.has(callId);
  }

  /** `transfer {mode: 'consult'}` from `agent`, the call's connected agent. */
  start(agent: string, deskCall: DeskCall, text: string, reply: Reply): void {
    const call = this.legCall(deskCall, reply);
    if (!call) return;
    if (this.consults.has(call.id)) {
      reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'a consult is already running on this call' });
      return;
    }
    const parties = call.legs.filter((l) => l.role === 'party' || l.role === 'barge').length;
    if (parties >= this.opts.maxParties) {
      reply({ v: 1, type: 'error', code: 'WS_CONFERENCE_FULL', message: `no more parties can join this call (calls.maxParties ${this.opts.maxParties})` });
      return;
    }
    const target = parseTransferTarget(text);
    if (target?.kind === 'agent') {
      this.startAgent(agent, call, text, target.agent, reply);
      return;
    }
    if (target?.kind !== 'number') {
      reply({ v: 1, type: 'error', code: 'WS_TARGET_UNAVAILABLE', message: 'a consult goes to an extension, a number or agent:<name>; use Transfer now for queues' });
      return;
    }
    const trunk = call.trunk?.name;
    const customer = call.customerLeg;
    if (!trunk || !customer) {
      reply({ v: 1, type: 'error', code: 'WS_TARGET_UNAVAILABLE', message: 'this call has no trunk to dial the target through' });
      return;
    }
    this.watch(call);
    const consult: Consult = { agent, target: text, phase: 'dialing', legId: null, targetAgent: null };
    this.consults.set(call.id, consult);
    call.holdLeg(customer.id, true);
    call.record('call.consult-started', { agent, target: text });
    this.phase(call, consult, 'dialing');
    call
      .addOutbound(
        { trunk, number: target.number, rule: 'consult' },
        {
          dialing: (out) => {
            call.record('call.consult-dialing', { trunk, number: target.number, sipCallId: out.sipCallId });
            // The leg is added right after this returns: its id comes with legAdded (see watch).
            this.phase(call, consult, 'ringing');
          },
        },
      )
      .then(
        (legId) => {
          if (this.consults.get(call.id) !== consult) {
            // Cancelled while it rang and answered anyway: it does not stay.
            if (call.legs.some((l) => l.id === legId)) call.removeLeg(legId, 'agent-hangup');
            return;
          }
          consult.legId = legId;
          call.record('call.consult-connected', { agent, target: text, legId });
          this.phase(call, consult, 'connected');
          this.sendParties(call);
        },
        (err: unknown) => {
          if (this.consults.get(call.id) !== consult) return;
          this.consults.delete(call.id);
          if (isCallError(err, 'CALL_CLOSED')) return;
          const full = isCallError(err, 'CALL_FULL');
          const reason = full ? 'no more parties can join this call' : isCallError(err, 'CALL_OUTBOUND_FAILED') ? `${String(err.details?.status ?? '')} ${String(err.details?.reason ?? '')}`.trim() : 'the target could not be dialled';
          if (!isCallError(err)) this.log.warn({ err, callId: call.id }, 'consult target could not be dialled');
          call.record('call.consult-failed', { agent, target: text, reason });
          this.unholdCustomer(call);
          this.phase(call, consult, 'failed', reason);
          if (full) reply({ v: 1, type: 'error', code: 'WS_CONFERENCE_FULL', message: reason });
          this.sendParties(call);
        },
      );
  }

  /** agent:<name>: that agent's page rings (a directed offer outside the queues). */
  private startAgent(agent: string, call: Call, text: string, name: string, reply: Reply): void {
    const customer = call.customerLeg;
    if (this.targets.has(name)) {
      reply({ v: 1, type: 'error', code: 'WS_TARGET_UNAVAILABLE', message: `agent ${name} is on another consult` });
      return;
    }
    try {
      this.opts.acd.consultRing(agent, call.id, name);
    } catch (e) {
      if (!isAcdError(e)) throw e;
      reply({ v: 1, type: 'error', code: 'WS_TARGET_UNAVAILABLE', message: e.message });
      return;
    }
    this.watch(call);
    const consult: Consult = { agent, target: text, phase: 'ringing', legId: null, targetAgent: name };
    this.consults.set(call.id, consult);
    this.targets.set(name, { name, callId: call.id, legId: null, webrtc: null, offerTimer: null, talking: false });
    if (customer) call.holdLeg(customer.id, true);
    call.record('call.consult-started', { agent, target: text });
    this.phase(call, consult, 'ringing');
  }

  /** The consulted agent pressed Answer: its WebRTC leg joins the call (the caller still held). */
  answer(agent: string, deskCall: DeskCall): boolean {
    const t = this.targets.get(agent);
    if (!t || t.callId !== deskCall.id || t.talking || !(deskCall instanceof Call) || deskCall.closed) return false;
    const call = deskCall;
    this.opts.acd.consultAnswered(agent, call.id);
    t.talking = true;
    const webrtc = this.opts.createLeg(call);
    t.webrtc = webrtc;
    t.legId = call.addAgent(agent, webrtc);
    call.record('call.agent-answered', { agent, consult: true });
    webrtc.on('state', (state) => {
      if (state !== 'connected' || this.targets.get(agent) !== t) return;
      this.opts.send(agent, { v: 1, type: 'callConnected', callId: call.id });
      const consult = this.consults.get(call.id);
      if (consult?.targetAgent === agent) {
        consult.legId = t.legId;
        call.record('call.consult-connected', { agent: consult.agent, target: consult.target, legId: t.legId });
        this.phase(call, consult, 'connected');
      }
      this.sendParties(call);
    });
    webrtc
      .createOffer()
      .then((sdp) => {
        if (this.targets.get(agent) !== t || call.closed) return;
        t.offerTimer = setTimeout(() => {
          t.offerTimer = null;
          this.targetFailed(t, 'the agent page did not answer the WebRTC offer');
        }, this.opts.mediaSetupS * 1000);
        this.opts.send(agent, { v: 1, type: 'webrtcOffer', callId: call.id, sdp });
      })
      .catch((err: unknown) => {
        this.log.error({ err, agent, code: 'WEBRTC_FAILED' }, 'cannot create the WebRTC offer for a consulted agent');
        this.targetFailed(t, 'the WebRTC offer could not be created');
      });
    return true;
  }

  /** The consulted agent's page answered the WebRTC offer; false when it is not one of ours. */
  webrtcAnswer(agent: string, callId: string, sdp: string, reply: Reply): boolean {
    const t = this.targets.get(agent);
    if (!t || t.callId !== callId || !t.offerTimer || !t.webrtc) return false;
    clearTimeout(t.offerTimer);
    t.offerTimer = null;
    t.webrtc.acceptAnswer(sdp).catch((err: unknown) => {
      reply({ v: 1, type: 'error', code: 'WEBRTC_FAILED', message: (err as Error).message });
      this.targetFailed(t, `WebRTC answer refused: ${(err as Error).message}`);
    });
    return true;
  }

  /**
   * A consulted agent hangs up (or declines): its leg leaves, it wraps up; the consult (if it was
   * the consult's target) ends and the caller comes off hold. False: not a consulted agent.
   */
  targetHangup(agent: string, callId: string): boolean {
    const t = this.targets.get(agent);
    if (!t || t.callId !== callId) return false;
    this.targetFailed(t, t.talking ? `${agent} hung up` : `${agent} declined`);
    return true;
  }

  /** A consulted agent leaves: ACD and page told, its leg removed, its consult (if running) over. */
  private targetFailed(t: TargetAgent, reason: string): void {
    if (this.targets.get(t.name) !== t) return;
    this.targets.delete(t.name);
    if (t.offerTimer) clearTimeout(t.offerTimer);
    try {
      this.opts.acd.consultEnded(t.name, t.callId);
    } catch (err) {
      this.log.warn({ err, agent: t.name }, 'ACD refused the end of a consult');
    }
    this.opts.send(t.name, t.talking ? { v: 1, type: 'callEnded', callId: t.callId, cause: 'agent-hangup' } : { v: 1, type: 'ringCancelled', callId: t.callId, reason: 'caller-hangup' });
    const consult = this.consults.get(t.callId);
    const call = this.callOf.get(t.callId);
    if (call && t.legId && call.legs.some((l) => l.id === t.legId)) call.removeLeg(t.legId, 'agent-hangup');
    if (!call || call.closed || consult?.targetAgent !== t.name) return;
    this.consults.delete(t.callId);
    call.record(consult.phase === 'connected' ? 'call.consult-ended' : 'call.consult-failed', { agent: consult.agent, target: consult.target, reason });
    this.unholdCustomer(call);
    this.phase(call, consult, consult.phase === 'connected' ? 'ended' : 'failed', reason);
    this.sendParties(call);
  }

  /** Complete transfer: the agent leaves (wrap-up), the caller talks to the target. */
  complete(agent: string, deskCall: DeskCall, reply: Reply): void {
    const call = this.legCall(deskCall, reply);
    const consult = call && this.connected(call, agent, reply);
    if (!call || !consult) return;
    this.consults.delete(call.id);
    call.record('call.transferred', { from: agent, to: consult.target, mode: 'consult' }, consult.targetAgent ? { agent: consult.targetAgent } : {});
    this.unholdCustomer(call);
    this.phase(call, consult, 'ended', 'transferred');
    this.agentLeaves(call, agent, 'transferred');
  }

  /** Conference: the caller comes off hold; everybody hears everybody. */
  conference(agent: string, deskCall: DeskCall, reply: Reply): void {
    const call = this.legCall(deskCall, reply);
    const consult = call && this.connected(call, agent, reply);
    if (!call || !consult) return;
    this.consults.delete(call.id);
    this.conferences.add(call.id);
    call.record('call.conference', { agent, target: consult.target });
    this.unholdCustomer(call);
    this.phase(call, consult, 'ended', 'conference');
    this.sendParties(call);
  }

  /** Cancel consult: the target leaves (ringing or talking), the caller comes off hold. */
  cancel(agent: string, deskCall: DeskCall, reply: Reply): void {
    const call = this.legCall(deskCall, reply);
    if (!call) return;
    const consult = this.consults.get(call.id);
    if (!consult || consult.agent !== agent) {
      reply({ v: 1, type: 'error', code: 'WS_NO_CONSULT', message: 'there is no consult on this call' });
      return;
    }
    const t = consult.targetAgent ? this.targets.get(consult.targetAgent) : undefined;
    if (t) {
      this.targetFailed(t, 'cancelled');
      return;
    }
    this.consults.delete(call.id);
    const legId = consult.legId ?? this.ringingLeg(call);
    if (legId && call.legs.some((l) => l.id === legId)) call.removeLeg(legId, 'agent-hangup');
    call.record('call.consult-cancelled', { agent, target: consult.target });
    this.unholdCustomer(call);
    this.phase(call, consult, 'ended', 'cancelled');
    this.sendParties(call);
  }

  /**
   * The agent hangs up. In a conference (or with only others left on the call) the agent leaves
   * and the others go on: true. False: the desk ends the call as usual.
   */
  hangup(agent: string, deskCall: DeskCall): boolean {
    if (!(deskCall instanceof Call) || !this.conferences.has(deskCall.id)) return false;
    const others = deskCall.legs.filter((l) => l.kind !== 'caller' && l.name !== agent && l.role === 'party');
    if (others.length === 0) return false;
    deskCall.record('call.conference-left', { agent });
    this.agentLeaves(deskCall, agent, 'agent-hangup');
    return true;
  }

  /** The agent's leg leaves the call that goes on: callEnded to the page, wrap-up in the ACD. */
  private agentLeaves(call: Call, agent: string, cause: 'transferred' | 'agent-hangup'): void {
    // A consulted agent talking on the call takes it over (the call's agent in the ACD and the Call).
    const heir = [...this.targets.values()].find((t) => t.callId === call.id && t.talking && t.legId !== null);
    const leg = call.legs.find((l) => l.kind === 'agent' && l.name === agent);
    try {
      if (heir?.legId) {
        this.targets.delete(heir.name);
        call.setPrimaryAgent(heir.legId);
        // Handled by `agent`, offered to and answered by the heir (KPIs), as a transfer to an agent.
        this.opts.acd.consultHandOver(agent, heir.name, call.id);
      } else if (this.opts.acd.locate(call.id)?.agent === agent) {
        // Handled by this agent (KPIs); the ACD lets go of the call, which goes on without it.
        this.opts.acd.callEnded(agent, call.id);
      }
    } catch (err) {
      this.log.warn({ err, agent, callId: call.id }, 'ACD refused the end of the agent part');
    }
    if (leg) call.removeLeg(leg.id, 'agent-hangup');
    this.opts.send(agent, { v: 1, type: 'callEnded', callId: call.id, cause });
    this.sendParties(call);
  }

  private connected(call: Call, agent: string, reply: Reply): Consult | undefined {
    const consult = this.consults.get(call.id);
    if (!consult || consult.agent !== agent) {
      reply({ v: 1, type: 'error', code: 'WS_NO_CONSULT', message: 'there is no consult on this call' });
      return undefined;
    }
    if (consult.phase !== 'connected') {
      reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: `${consult.target} has not answered yet` });
      return undefined;
    }
    return consult;
  }

  private legCall(call: DeskCall, reply: Reply): Call | undefined {
    if (call instanceof Call && !call.closed) return call;
    reply({ v: 1, type: 'error', code: 'WS_NOT_ALLOWED', message: 'this call cannot take more parties' });
    return undefined;
  }

  /** The newest outbound leg still ringing (a consult cancelled before it answered). */
  private ringingLeg(call: Call): string | null {
    const ringing = call.legs.filter((l) => l.kind === 'outbound' && l.state === 'ringing');
    return ringing.at(-1)?.id ?? null;
  }

  private unholdCustomer(call: Call): void {
    const customer = call.customerLeg;
    if (customer && !call.closed) call.holdLeg(customer.id, false);
  }

  private phase(call: Call, consult: Consult, phase: ConsultPhase, reason?: string): void {
    consult.phase = phase;
    this.opts.send(consult.agent, { v: 1, type: 'consult', callId: call.id, target: consult.target, phase, ...(reason ? { reason } : {}) });
  }

  /** Everybody on the call, to every agent on it. */
  private sendParties(call: Call): void {
    if (call.closed) return;
    const legs = call.legs.filter((l) => l.state !== 'ended');
    const parties = legs.map(partyOf);
    for (const l of legs) if (l.kind === 'agent' && l.name) this.opts.send(l.name, { v: 1, type: 'parties', callId: call.id, parties });
  }

  private watch(call: Call): void {
    if (this.watched.has(call.id)) return;
    this.watched.add(call.id);
    this.callOf.set(call.id, call);
    call.on('legRemoved', (legId, kind) => this.onLegRemoved(call, legId, kind));
    call.once('closed', () => {
      this.watched.delete(call.id);
      this.callOf.delete(call.id);
      this.consults.delete(call.id);
      this.conferences.delete(call.id);
      for (const t of [...this.targets.values()]) if (t.callId === call.id) this.targetFailed(t, 'the call ended');
    });
  }

  /** The target hung up mid-consult, or a party left a conference (or a transferred call). */
  private onLegRemoved(call: Call, legId: string, kind: LegInfo['kind']): void {
    if (call.closed) return;
    const gone = [...this.targets.values()].find((t) => t.callId === call.id && t.legId === legId);
    if (gone) {
      gone.legId = null;
      this.targetFailed(gone, `${gone.name}'s audio failed`);
    }
    const consult = this.consults.get(call.id);
    if (consult && kind === 'outbound' && (consult.legId === legId || consult.legId === null) && consult.phase === 'connected') {
      this.consults.delete(call.id);
      call.record('call.consult-ended', { agent: consult.agent, target: consult.target, reason: 'target-hangup' });
      this.unholdCustomer(call);
      this.phase(call, consult, 'ended', 'the target hung up');
    }
    // Only the caller left (the transfer target or the last conference party hung up): over.
    const others = call.legs.filter((l) => l.kind !== 'caller' && l.state !== 'ended' && (l.role === 'party' || l.role === 'barge'));
    if (others.length === 0 && call.agent === undefined) {
      void call.close('forward-hangup');
      return;
    }
    if (others.length === 1 && others[0].kind === 'agent') this.conferences.delete(call.id);
    this.sendParties(call);
  }
}

function partyOf(l: LegInfo): PartyInfo {
  return {
    id: l.id,
    kind: l.kind === 'outbound' ? 'external' : l.kind,
    name: l.name ?? l.number ?? '',
    role: l.role,
    held: l.held,
  };
}
