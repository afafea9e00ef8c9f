import type { Acd } from '../acd/acd';
import type { ConsultPhase, PartyInfo, ServerMessage } from '../agent-ui/protocol';
import { parseTransferTarget } from '../agent-ui/transfer-target';
import { Call } from '../calls/call';
import type { DeskCall, LegInfo } from '../calls/contract';
import { isCallError } from '../calls/errors';
import type { Logger } from '../logging';

export interface ConsultsOptions {
  acd: Acd;
  /** Sends a message to every page of an agent. */
  send(agent: string, msg: ServerMessage): void;
  log: Logger;
}

/** One consult: the caller on hold while `agent` talks to `target` (an outbound leg). */
interface Consult {
  agent: string;
  target: string;
  phase: ConsultPhase;
  /** The target's leg once it exists (ringing or up). */
  legId: string | null;
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
  private readonly log: Logger;

  constructor(private readonly opts: ConsultsOptions) {
    this.log = opts.log.child({ component: 'consults' });
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
    const target = parseTransferTarget(text);
    if (target?.kind !== 'number') {
      reply({ v: 1, type: 'error', code: 'WS_TARGET_UNAVAILABLE', message: 'a consult goes to an extension or number; use Transfer now for queues and agents' });
      return;
    }
    const trunk = call.trunk;
    const customer = call.customerLeg;
    if (!trunk || !customer) {
      reply({ v: 1, type: 'error', code: 'WS_TARGET_UNAVAILABLE', message: 'this call has no trunk to dial the target through' });
      return;
    }
    this.watch(call);
    const consult: Consult = { agent, target: text, phase: 'dialing', legId: null };
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

  /** Complete transfer: the agent leaves (wrap-up), the caller talks to the target. */
  complete(agent: string, deskCall: DeskCall, reply: Reply): void {
    const call = this.legCall(deskCall, reply);
    const consult = call && this.connected(call, agent, reply);
    if (!call || !consult) return;
    this.consults.delete(call.id);
    call.record('call.transferred', { from: agent, to: consult.target, mode: 'consult' });
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
    const leg = call.legs.find((l) => l.kind === 'agent' && l.name === agent);
    if (leg) call.removeLeg(leg.id, 'agent-hangup');
    this.opts.send(agent, { v: 1, type: 'callEnded', callId: call.id, cause });
    try {
      // Handled by this agent (KPIs); the ACD lets go of the call, which goes on without it.
      if (this.opts.acd.locate(call.id)?.agent === agent) this.opts.acd.callEnded(agent, call.id);
    } catch (err) {
      this.log.warn({ err, agent, callId: call.id }, 'ACD refused the end of the agent part');
    }
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
    call.on('legRemoved', (legId, kind) => this.onLegRemoved(call, legId, kind));
    call.once('closed', () => {
      this.watched.delete(call.id);
      this.consults.delete(call.id);
      this.conferences.delete(call.id);
    });
  }

  /** The target hung up mid-consult, or a party left a conference (or a transferred call). */
  private onLegRemoved(call: Call, legId: string, kind: LegInfo['kind']): void {
    if (call.closed) return;
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
