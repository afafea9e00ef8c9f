import { EventEmitter } from 'node:events';
import type { AgentState } from './agent-state';
import { AcdError } from './errors';

export type { AgentState };

/**
 * Legal moves. Login lands in `away` (reason `login`) unless the caller asks for `available`:
 * nobody is offered a call before they say they are ready, and a page that reconnects after a
 * network blip does not silently start ringing. `away → away` changes the reason.
 * `on-call → offline` is the end of a call whose agent logged out meanwhile (no wrap-up).
 */
const TRANSITIONS: Readonly<Record<AgentState, readonly AgentState[]>> = {
  offline: ['available', 'away'],
  available: ['ringing', 'away', 'offline'],
  ringing: ['on-call', 'available', 'away', 'offline'],
  // on-call → away: the agent's audio never connected (media-failed); the caller went back to the queue.
  'on-call': ['wrap-up', 'away', 'offline'],
  'wrap-up': ['available', 'away', 'offline'],
  away: ['available', 'away', 'offline'],
};

export function canTransition(from: AgentState, to: AgentState): boolean {
  return TRANSITIONS[from].includes(to);
}

export interface TransitionOptions {
  /** Why: required for `away` (e.g. `break`, `no-answer`), optional otherwise (e.g. `logout`). */
  reason?: string | null;
  /** The call being offered / talked / wrapped up; required for `ringing`. */
  callId?: string | null;
  /**
   * Entering `available` normally restarts the idle clock. `ringing → available` (the caller
   * hung up before the agent answered) passes true to keep the agent's place in the longest-idle
   * order: the agent did no work and should get the next call.
   */
  keepIdleSince?: boolean;
}

export interface AgentView {
  name: string;
  displayName: string;
  state: AgentState;
  reason: string | null;
  callId: string | null;
  /** ms epoch of the last change of state. */
  stateSince: number;
  /** ms epoch since which the agent has been idle (set on becoming available); null otherwise. */
  idleSince: number | null;
}

let idleSeq = 0;

/**
 * One agent's state machine: `offline → available → ringing → on-call → wrap-up → available`,
 * with `away` (with a reason) reachable from offline (login), available, ringing (no answer),
 * wrap-up. Illegal moves throw AGENT_BAD_TRANSITION and change nothing.
 */
export class Agent extends EventEmitter<{ state: [state: AgentState, reason: string | null] }> {
  private st: AgentState = 'offline';
  private why: string | null = null;
  private call: string | null = null;
  private since: number;
  private idle: number | null = null;
  /** Tie-break for equal idleSince: who became available first. */
  private idleOrder = 0;

  constructor(
    readonly name: string,
    public displayName: string,
    /** Queues served; null = all. Replaced by update() (people changed live). */
    public queues: ReadonlySet<string> | null,
    now: number,
    /** Skill levels by skill name (an absent skill is not had at all). */
    public skills: Readonly<Record<string, number>> = {},
  ) {
    super();
    this.since = now;
  }

  /** New queues, skills and name from a live change: they apply to the next offer, not to a call ringing now. */
  update(displayName: string, queues: ReadonlySet<string> | null, skills: Readonly<Record<string, number>>): void {
    this.displayName = displayName;
    this.queues = queues;
    this.skills = skills;
  }

  get state(): AgentState {
    return this.st;
  }
  get reason(): string | null {
    return this.why;
  }
  get callId(): string | null {
    return this.call;
  }
  get stateSince(): number {
    return this.since;
  }
  get idleSince(): number | null {
    return this.idle;
  }

  serves(queue: string): boolean {
    return this.queues === null || this.queues.has(queue);
  }

  /** Has every skill of `required` at the given minimum level or above. */
  meets(required: Readonly<Record<string, number>> | undefined): boolean {
    if (!required) return true;
    for (const [skill, min] of Object.entries(required)) {
      const level = Object.prototype.hasOwnProperty.call(this.skills, skill) ? this.skills[skill] : undefined;
      if (level === undefined || level < min) return false;
    }
    return true;
  }

  /** Sum of this agent's levels in `skills` (absent skills count 0). */
  skillScore(skills: readonly string[]): number {
    let sum = 0;
    for (const s of skills) if (Object.prototype.hasOwnProperty.call(this.skills, s)) sum += this.skills[s];
    return sum;
  }

  /** Orders available agents: negative when this one has been idle longer than `other`. */
  compareIdle(other: Agent): number {
    const a = this.idle ?? Number.POSITIVE_INFINITY;
    const b = other.idle ?? Number.POSITIVE_INFINITY;
    return a !== b ? a - b : this.idleOrder - other.idleOrder;
  }

  /** Moves to `to` at time `now`, or throws AGENT_BAD_TRANSITION. Emits `state`. */
  transition(to: AgentState, now: number, opts: TransitionOptions = {}): void {
    const from = this.st;
    if (!canTransition(from, to)) {
      throw new AcdError('AGENT_BAD_TRANSITION', `agent ${this.name} cannot go from ${from} to ${to}`, { agent: this.name, from, to });
    }
    const reason = opts.reason ?? null;
    if (to === 'away' && !reason) throw new AcdError('AGENT_BAD_TRANSITION', `agent ${this.name}: away needs a reason`, { agent: this.name, from, to });
    const callId = opts.callId ?? null;
    if (to === 'ringing' && !callId) throw new AcdError('AGENT_BAD_TRANSITION', `agent ${this.name}: ringing needs a call`, { agent: this.name, from, to });
    this.st = to;
    this.why = reason;
    this.since = now;
    // The call stays attached through ringing, on-call and wrap-up.
    if (to === 'ringing') this.call = callId;
    else if (to === 'on-call' || to === 'wrap-up') this.call = callId ?? this.call;
    else this.call = null;
    if (to === 'available') {
      if (!(opts.keepIdleSince && from === 'ringing' && this.idle !== null)) {
        this.idle = now;
        this.idleOrder = ++idleSeq;
      }
    } else if (to !== 'ringing') {
      // Ringing keeps idleSince so an abandoned offer can restore the agent's place.
      this.idle = null;
    }
    this.emit('state', to, reason);
  }

  view(): AgentView {
    return {
      name: this.name,
      displayName: this.displayName,
      state: this.st,
      reason: this.why,
      callId: this.call,
      stateSince: this.since,
      idleSince: this.st === 'available' ? this.idle : null,
    };
  }
}
