import type { Acd } from '../acd/acd';
import { isAcdError } from '../acd/errors';
import { parseTransferTarget, TRANSFER_TARGET_HELP, type TransferTarget } from '../agent-ui/transfer-target';
import type { ErrorCode, ServerMessage } from '../agent-ui/protocol';
import type { DeskCall, TransferableCall } from '../calls/contract';
import { isCallError } from '../calls/errors';
import { CcedgeError } from '../errors';
import type { Logger } from '../logging';
import type { Counter } from 'prom-client';

/**
 * Why a blind transfer was refused or failed. NO_CALL: the agent is not connected to that call;
 * BAD_TARGET: the text names no target, or an unknown queue/agent; UNAVAILABLE: the target cannot
 * take it (agent not available, extension busy/unreachable, the PBX refused the REFER);
 * NOT_ALLOWED: this call cannot be transferred (callbacks, no trunk to dial through);
 * BUSY: a transfer of this call is already running.
 */
export type TransferErrorCode = 'TRANSFER_NO_CALL' | 'TRANSFER_BAD_TARGET' | 'TRANSFER_UNAVAILABLE' | 'TRANSFER_NOT_ALLOWED' | 'TRANSFER_BUSY';

export class TransferError extends CcedgeError {
  constructor(
    readonly transferCode: TransferErrorCode,
    message: string,
  ) {
    super(transferCode, message);
    this.name = 'TransferError';
  }

  /** The agent page's error code for it. */
  get wsCode(): ErrorCode {
    switch (this.transferCode) {
      case 'TRANSFER_NO_CALL':
        return 'WS_NO_SUCH_CALL';
      case 'TRANSFER_UNAVAILABLE':
      case 'TRANSFER_BAD_TARGET':
        return 'WS_TARGET_UNAVAILABLE';
      default:
        return 'WS_NOT_ALLOWED';
    }
  }

  /** The admin API's status for it. */
  get httpStatus(): 400 | 404 | 409 {
    if (this.transferCode === 'TRANSFER_NO_CALL') return 404;
    if (this.transferCode === 'TRANSFER_BAD_TARGET') return 400;
    return 409;
  }
}

/** How a blind transfer went: queued / ringing the agent / connected to the number / referred; ended: the call ended meanwhile (hang-up). */
export type BlindOutcome = 'queued' | 'ringing' | 'connected' | 'referred' | 'ended';

export interface TransferDeps {
  acd: Acd;
  /** Tells the agent's page (callEnded). */
  send(agent: string, msg: ServerMessage): void;
  log: Logger;
  /** ccedge_transfers_total{via, outcome}: via queue|agent|bridge|refer; outcome done|failed|refused. */
  counter?: Counter<'via' | 'outcome'>;
}

/**
 * Blind transfers, for the agent desk and the admin API: the agent hands the connected call on
 * and leaves it. A queue or an agent goes through the ACD (acd.transfer: the agent wraps up, the
 * caller keeps queuedAt) while the call keeps its id and its recording; a number goes through the
 * caller's trunk — REFER to the PBX (transferMode refer), or an outbound leg joined to the caller
 * once it answers (bridge). Until a number answers the agent stays with the caller; a failure
 * leaves everything as it was and is reported.
 */
export class BlindTransfers {
  /** Calls with a transfer to a number still running: a second request is refused. */
  private readonly running = new Set<string>();

  constructor(private readonly deps: TransferDeps) {}

  /** Whether a transfer of this call is still running (the desk refuses other call commands meanwhile). */
  isRunning(callId: string): boolean {
    return this.running.has(callId);
  }

  /** The connected agent hands `call` to `text` (as typed in Transfer to). Throws TransferError. */
  async blind(agent: string, call: DeskCall | undefined, text: string): Promise<BlindOutcome> {
    const parsed = parseTransferTarget(text);
    const via = !parsed ? 'unknown' : parsed.kind !== 'number' ? parsed.kind : call && isTransferable(call) ? (call.trunk?.transferMode ?? 'bridge') : 'bridge';
    try {
      const outcome = await this.run(agent, call, text);
      this.deps.counter?.inc({ via, outcome: outcome === 'ended' ? 'failed' : 'done' });
      return outcome;
    } catch (err) {
      // Refused before anything moved vs. tried and failed (the agent keeps the caller either way).
      const tried = err instanceof TransferError && err.transferCode === 'TRANSFER_UNAVAILABLE' && parsed?.kind === 'number';
      this.deps.counter?.inc({ via, outcome: tried ? 'failed' : 'refused' });
      throw err;
    }
  }

  private async run(agent: string, call: DeskCall | undefined, text: string): Promise<BlindOutcome> {
    const target = parseTransferTarget(text);
    if (!target) throw new TransferError('TRANSFER_BAD_TARGET', `"${text.slice(0, 40)}" is not a transfer target: ${TRANSFER_TARGET_HELP}`);
    const where = call ? this.deps.acd.locate(call.id) : undefined;
    if (!call || call.closed || where?.phase !== 'connected' || where.agent !== agent) throw new TransferError('TRANSFER_NO_CALL', 'you have no such call');
    if (!isTransferable(call)) throw new TransferError('TRANSFER_NOT_ALLOWED', 'this call cannot be transferred (a callback)');
    if (this.running.has(call.id)) throw new TransferError('TRANSFER_BUSY', 'a transfer of this call is already running');
    if (target.kind === 'number') return this.toNumber(agent, call, target.number);
    return this.throughAcd(agent, call, target, text);
  }

  /** Admin API: the call's connected agent hands it on. */
  async blindByCall(callId: string, call: DeskCall | undefined, text: string): Promise<{ agent: string; outcome: BlindOutcome }> {
    const where = this.deps.acd.locate(callId);
    if (!call || call.closed || !where) throw new TransferError('TRANSFER_NO_CALL', `no live call ${callId.slice(0, 64)}`);
    if (where.phase !== 'connected' || !where.agent) throw new TransferError('TRANSFER_NOT_ALLOWED', `call ${callId} is ${where.phase}, not with an agent`);
    const agent = where.agent;
    return { agent, outcome: await this.blind(agent, call, text) };
  }

  private throughAcd(agent: string, call: TransferableCall, target: Exclude<TransferTarget, { kind: 'number' }>, text: string): BlindOutcome {
    try {
      this.deps.acd.transfer(agent, call.id, target.kind === 'queue' ? { queue: target.queue } : { agent: target.agent });
    } catch (e) {
      if (isAcdError(e, 'ACD_UNKNOWN_QUEUE') || isAcdError(e, 'ACD_UNKNOWN_AGENT')) throw new TransferError('TRANSFER_BAD_TARGET', e.message);
      if (isAcdError(e, 'ACD_AGENT_UNAVAILABLE')) throw new TransferError('TRANSFER_UNAVAILABLE', e.message);
      if (isAcdError(e, 'ACD_UNKNOWN_CALL') || isAcdError(e, 'AGENT_BAD_TRANSITION')) throw new TransferError('TRANSFER_NO_CALL', e.message);
      throw e;
    }
    call.releaseAgent('transferred');
    call.record('call.transferred', { mode: 'blind', from: agent, to: text, ...(target.kind === 'queue' ? { queue: target.queue } : { agent: target.agent }) }, target.kind === 'queue' ? { queue: target.queue } : {});
    call.log.info({ agent, target: text }, 'blind transfer: the caller waits for the target');
    this.deps.send(agent, { v: 1, type: 'callEnded', callId: call.id, cause: 'transferred' });
    return target.kind === 'queue' ? 'queued' : 'ringing';
  }

  private async toNumber(agent: string, call: TransferableCall, number: string): Promise<BlindOutcome> {
    const trunk = call.trunk;
    if (!trunk) throw new TransferError('TRANSFER_NOT_ALLOWED', 'this call has no trunk to transfer through');
    this.running.add(call.id);
    try {
      if (trunk.transferMode === 'refer') return await this.refer(agent, call, number);
      return await this.bridge(agent, call, trunk.name, number);
    } finally {
      this.running.delete(call.id);
    }
  }

  /** transferMode refer: the PBX connects the caller; on its final 2xx NOTIFY we leave with BYE. */
  private async refer(agent: string, call: TransferableCall, number: string): Promise<BlindOutcome> {
    call.record('call.transfer-refer', { mode: 'blind', from: agent, number });
    let status: number;
    try {
      status = await call.referCaller(number);
    } catch (err) {
      call.log.warn({ err, agent, number }, 'REFER could not be sent');
      call.record('call.transfer-failed', { mode: 'blind', from: agent, number, reason: (err as Error).message });
      throw new TransferError('TRANSFER_UNAVAILABLE', `the PBX could not be asked to transfer: ${(err as Error).message}`);
    }
    if (call.closed) return 'ended';
    if (status < 200 || status >= 300) {
      call.record('call.transfer-failed', { mode: 'blind', from: agent, number, status });
      call.log.info({ agent, number, status }, 'REFER transfer failed: the agent keeps the caller');
      throw new TransferError('TRANSFER_UNAVAILABLE', `${number} was not reached through the PBX (${status})`);
    }
    call.record('call.transferred', { mode: 'blind', from: agent, number, via: 'refer' });
    call.log.info({ agent, number }, 'REFER transfer done: the PBX has the caller; we leave');
    // close() tells the desk (callEnded transferred, the agent wraps up) and sends BYE to the PBX.
    await call.close('transferred');
    return 'referred';
  }

  /** transferMode bridge: our outbound leg to the number; answered, the agent leaves and the caller talks to it. */
  private async bridge(agent: string, call: TransferableCall, trunk: string, number: string): Promise<BlindOutcome> {
    const agentLeg = call.legs.find((l) => l.kind === 'agent' && l.name === agent && l.role === 'party');
    try {
      await call.addOutbound(
        { trunk, number, rule: 'transfer' },
        {
          endCause: 'forward-hangup',
          dialing: (out) => call.record('call.transfer-dialing', { mode: 'blind', from: agent, trunk, number, sipCallId: out.sipCallId }),
          beforeJoin: () => {
            if (call.isHeld) call.setHold(false);
            if (agentLeg) call.removeLeg(agentLeg.id, 'transferred');
          },
        },
      );
    } catch (err) {
      if (isCallError(err, 'CALL_CLOSED') || call.closed) return 'ended';
      const detail = isCallError(err, 'CALL_OUTBOUND_FAILED') ? `${String(err.details?.status ?? '')} ${String(err.details?.reason ?? '')}`.trim() : (err as Error).message;
      call.record('call.transfer-failed', { mode: 'blind', from: agent, number, reason: detail });
      call.log.info({ agent, number, detail }, 'bridged transfer failed: the agent keeps the caller');
      throw new TransferError(isCallError(err, 'CALL_OUTBOUND_UNAVAILABLE') ? 'TRANSFER_NOT_ALLOWED' : 'TRANSFER_UNAVAILABLE', `${number} was not reached: ${detail}`);
    }
    call.record('call.transferred', { mode: 'blind', from: agent, number, via: 'bridge' });
    call.log.info({ agent, number }, 'bridged transfer: the caller talks to the number');
    // The agent's part is over (handled by them); the call goes on without the desk.
    this.deps.send(agent, { v: 1, type: 'callEnded', callId: call.id, cause: 'transferred' });
    try {
      this.deps.acd.callEnded(agent, call.id);
    } catch (err) {
      this.deps.log.warn({ err, agent, callId: call.id }, 'ACD refused the end of a transferred call');
    }
    return 'connected';
  }
}

function isTransferable(call: DeskCall): call is TransferableCall {
  return 'referCaller' in call && 'releaseAgent' in call && (call as TransferableCall).trunk !== null;
}
