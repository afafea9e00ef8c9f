import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { realClock, type Clock, type Timer } from './clock';
import type { AgentConfig, AgentRole } from './config';
import { AcdError } from './errors';
import { hashPassword, verifyPassword, DEFAULT_SCRYPT, type ScryptParams } from './password';
import { Semaphore, SemaphoreFullError } from '../net/semaphore';

/** What the rest of the gateway may know about an agent: never the password hash. */
export interface DirectoryAgent {
  readonly name: string;
  readonly displayName: string;
  readonly skills: Readonly<Record<string, number>>;
  /** Queues the agent serves; null = every queue. */
  readonly queues: readonly string[] | null;
  /** `agent` takes calls; `supervisor` watches and monitors (and is never offered a call). */
  readonly role: AgentRole;
}

export type SessionEndReason = 'logout' | 'expired' | 'replaced' | 'removed' | 'closed';

export interface AgentDirectoryOptions {
  clock?: Clock;
  /** A session unused (no resolve) for this long ends. Default 12 h. */
  sessionIdleS?: number;
  /** Cost of hashes made for plain `password:` entries. */
  scrypt?: ScryptParams;
  /**
   * Every scrypt of this directory runs through this gate (libuv's thread pool is shared with
   * sqlite3). Logins use `tryRun` and fail with AGENT_LOGIN_BUSY when its queue is full; hashing
   * config passwords (start, reload) waits its turn. Default: its own gate, 1 at a time, 8 waiting.
   */
  hashGate?: Semaphore;
  /**
   * Where passwords that agents chose in place of a one-time password (`mustChangePassword`) are
   * kept: `initial` as loaded at start, `save` persists a new one before the login succeeds.
   */
  changedPasswords?: {
    initial: ReadonlyMap<string, { replaces: string; hash: string }>;
    save(agent: string, changed: { replaces: string; hash: string }): Promise<void>;
  };
}

/** Shortest password an agent may choose in place of a one-time password. */
export const MIN_NEW_PASSWORD_CHARS = 8;

interface Session {
  agent: DirectoryAgent;
  createdAt: number;
  lastSeen: number;
}

interface Entry {
  agent: DirectoryAgent;
  hash: string;
  /** The config's passwordHash is a one-time password that still has to be replaced. */
  mustChange: boolean;
  /** The config's hash (one-time password) this entry came from. */
  configHash: string;
}

const MAX_PASSWORD_CHARS = 1024;
const DEFAULT_IDLE_S = 12 * 3600;
const LOGIN_FAILED = 'unknown agent or wrong password';

/**
 * Agents from config, password checks and login sessions (opaque 32-byte base64url tokens held in
 * memory only: a restart logs every agent out). One session per agent: a new login replaces the
 * previous one, whose holder gets `sessionEnded(…, 'replaced')`. Sessions end after
 * `sessionIdleS` without a resolve(); expiry is checked on resolve and by a sweep timer.
 */
export class AgentDirectory extends EventEmitter<{
  /** A session ended, whatever the reason (its holder's logout included: the ACD must hear of it). */
  sessionEnded: [token: string, agentName: string, reason: SessionEndReason, role: AgentRole];
}> {
  private entries = new Map<string, Entry>();
  private readonly sessions = new Map<string, Session>();
  private readonly clock: Clock;
  private readonly idleMs: number;
  private readonly scrypt: ScryptParams;
  private readonly gate: Semaphore;
  private sweepTimer: Timer | null = null;
  private closed = false;
  private readonly changed: Map<string, { replaces: string; hash: string }>;
  private readonly saveChanged: ((agent: string, changed: { replaces: string; hash: string }) => Promise<void>) | undefined;

  private constructor(
    private readonly dummyHash: string,
    opts: AgentDirectoryOptions,
  ) {
    super();
    this.clock = opts.clock ?? realClock;
    this.idleMs = (opts.sessionIdleS ?? DEFAULT_IDLE_S) * 1000;
    this.scrypt = opts.scrypt ?? DEFAULT_SCRYPT;
    this.gate = opts.hashGate ?? new Semaphore({ concurrency: 1, maxQueue: 8 });
    this.changed = new Map(opts.changedPasswords?.initial ?? []);
    this.saveChanged = opts.changedPasswords?.save;
    if (!(this.idleMs > 0)) throw new RangeError('sessionIdleS must be positive');
  }

  /** Hashes any plain `password:` entries (the plain text is not kept). */
  static async create(agents: readonly AgentConfig[], opts: AgentDirectoryOptions = {}): Promise<AgentDirectory> {
    // Unknown names are checked against this hash, so both failures cost the same time.
    // Startup hashing goes through the gate too: at start nothing else competes, but the same
    // path serves reload() while calls and logins run, where it must not take every pool thread.
    const gate = opts.hashGate;
    const dummyJob = (): Promise<string> => hashPassword(randomBytes(16).toString('hex'), opts.scrypt ?? DEFAULT_SCRYPT);
    const dummy = await (gate ? gate.run(dummyJob) : dummyJob());
    const dir = new AgentDirectory(dummy, opts);
    dir.entries = await dir.buildEntries(agents);
    return dir;
  }

  /**
   * Replaces the agent list (config change). Sessions of removed agents end ('removed'), and so do
   * those whose role changed: a session belongs to one page (/agent or /supervisor).
   */
  async reload(agents: readonly AgentConfig[]): Promise<void> {
    const entries = await this.buildEntries(agents);
    this.entries = entries;
    for (const [token, s] of [...this.sessions]) {
      const now = entries.get(s.agent.name);
      if (!now || now.agent.role !== s.agent.role) this.end(token, 'removed');
      else s.agent = now.agent;
    }
  }

  get(name: string): DirectoryAgent | undefined {
    return this.entries.get(name)?.agent;
  }

  list(): DirectoryAgent[] {
    return [...this.entries.values()].map((e) => e.agent);
  }

  /** True when the agent's password is a one-time password not yet replaced. */
  mustChangePassword(name: string): boolean {
    return this.entries.get(name)?.mustChange ?? false;
  }

  /**
   * Checks the password and opens a session. Unknown agent and wrong password fail alike
   * (same error, same message, a hash is verified either way). With `role`, a person of another
   * role fails with AGENT_WRONG_ROLE, only after the password matched (so the error tells a
   * stranger nothing) and before any session changes: an agent trying /supervisor keeps the
   * desk session they have. An agent whose password is a one-time password gets
   * AGENT_PASSWORD_CHANGE_REQUIRED (after those checks) unless `newPassword` is given: it is then
   * hashed and saved, and replaces the one-time password for good.
   */
  async login(name: string, password: string, role?: AgentRole, newPassword?: string): Promise<{ token: string; agent: DirectoryAgent }> {
    if (this.closed) throw new AcdError('ACD_CLOSED', 'agent directory is closed');
    const entry = this.entries.get(name);
    const pw = typeof password === 'string' && password.length <= MAX_PASSWORD_CHARS ? password : '';
    let ok: boolean;
    try {
      ok = await this.gate.tryRun(() => verifyPassword(pw, entry?.hash ?? this.dummyHash));
    } catch (e) {
      if (e instanceof SemaphoreFullError) throw new AcdError('AGENT_LOGIN_BUSY', 'too many logins are being checked; try again shortly');
      throw e;
    }
    // Re-read: the list may have been reloaded while scrypt ran.
    const current = this.entries.get(name);
    if (!ok || !entry || pw === '' || !current || current.hash !== entry.hash || this.closed) {
      throw new AcdError('AGENT_LOGIN_FAILED', LOGIN_FAILED);
    }
    if (role !== undefined && current.agent.role !== role) {
      throw new AcdError('AGENT_WRONG_ROLE', current.agent.role === 'supervisor' ? 'supervisors log in at /supervisor' : 'this page is for supervisors: agents log in at /agent', {
        agent: name,
        role: current.agent.role,
      });
    }
    if (current.mustChange) await this.replaceOneTime(current, pw, newPassword);
    for (const [token, s] of [...this.sessions]) if (s.agent.name === name) this.end(token, 'replaced');
    const token = randomBytes(32).toString('base64url');
    const now = this.clock.now();
    this.sessions.set(token, { agent: current.agent, createdAt: now, lastSeen: now });
    this.armSweep();
    return { token, agent: current.agent };
  }

  /** The session's agent, refreshing its idle time; undefined when unknown or expired. */
  resolve(token: string): DirectoryAgent | undefined {
    const s = this.sessions.get(token);
    if (!s) return undefined;
    const now = this.clock.now();
    if (now - s.lastSeen >= this.idleMs) {
      this.end(token, 'expired');
      return undefined;
    }
    s.lastSeen = now;
    return s.agent;
  }

  /**
   * Ends a session at its holder's request, with event `sessionEnded` (reason `logout`) like any
   * other end: a logout that only dropped the token left the agent Available in the ACD, and the
   * next caller rang a desk nobody sat at. Returns whether it existed.
   */
  logout(token: string): boolean {
    const existed = this.sessions.has(token);
    this.end(token, 'logout');
    return existed;
  }

  /** Ends every session of `name` (reason `logout`; a supervisor logged them out). Returns how many. */
  logoutAgent(name: string): number {
    let n = 0;
    for (const [token, s] of [...this.sessions]) {
      if (s.agent.name !== name) continue;
      this.end(token, 'logout');
      n++;
    }
    return n;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Ends every session ('closed') and stops the sweep timer. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const token of [...this.sessions.keys()]) this.end(token, 'closed');
    this.disarmSweep();
  }

  private async replaceOneTime(entry: Entry, oneTime: string, newPassword: string | undefined): Promise<void> {
    if (newPassword === undefined) throw new AcdError('AGENT_PASSWORD_CHANGE_REQUIRED', 'this is a one-time password: choose a new password to log in');
    if (typeof newPassword !== 'string' || newPassword.length < MIN_NEW_PASSWORD_CHARS || newPassword.length > MAX_PASSWORD_CHARS) {
      throw new AcdError('AGENT_PASSWORD_REJECTED', `the new password must be ${MIN_NEW_PASSWORD_CHARS} to ${MAX_PASSWORD_CHARS} characters`);
    }
    if (newPassword.normalize('NFC') === oneTime.normalize('NFC')) throw new AcdError('AGENT_PASSWORD_REJECTED', 'the new password must differ from the one-time password');
    let hash: string;
    try {
      hash = await this.gate.tryRun(() => hashPassword(newPassword, this.scrypt));
    } catch (e) {
      if (e instanceof SemaphoreFullError) throw new AcdError('AGENT_LOGIN_BUSY', 'too many logins are being checked; try again shortly');
      throw e;
    }
    const changed = { replaces: entry.configHash, hash };
    // Saved before it counts: a password the agent was told is set must survive a restart.
    await this.saveChanged?.(entry.agent.name, changed);
    this.changed.set(entry.agent.name, changed);
    const current = this.entries.get(entry.agent.name);
    if (current && current.configHash === entry.configHash) {
      current.hash = hash;
      current.mustChange = false;
    }
  }

  private async buildEntries(agents: readonly AgentConfig[]): Promise<Map<string, Entry>> {
    const entries = new Map<string, Entry>();
    for (const a of agents) {
      if (entries.has(a.name)) throw new RangeError(`duplicate agent name "${a.name}"`);
      const plain = a.password;
      const hash = a.passwordHash ?? (plain !== undefined ? await this.gate.run(() => hashPassword(plain, this.scrypt)) : undefined);
      if (hash === undefined) throw new RangeError(`agent "${a.name}" has neither password nor passwordHash`);
      // A one-time password already replaced (and not reset since: same config hash) is the agent's own.
      const own = a.mustChangePassword ? this.changed.get(a.name) : undefined;
      const replaced = own !== undefined && own.replaces === hash;
      const agent: DirectoryAgent = Object.freeze({
        name: a.name,
        displayName: a.displayName ?? a.name,
        skills: Object.freeze({ ...(a.skills ?? {}) }),
        queues: a.queues ? Object.freeze([...a.queues]) : null,
        role: a.role ?? 'agent',
      });
      entries.set(a.name, { agent, hash: replaced ? own.hash : hash, mustChange: a.mustChangePassword === true && !replaced, configHash: hash });
    }
    return entries;
  }

  private end(token: string, reason: SessionEndReason): void {
    const s = this.sessions.get(token);
    if (!s) return;
    this.sessions.delete(token);
    if (this.sessions.size === 0) this.disarmSweep();
    this.emit('sessionEnded', token, s.agent.name, reason, s.agent.role);
  }

  private armSweep(): void {
    if (this.sweepTimer !== null || this.closed) return;
    const every = Math.min(this.idleMs, 60_000);
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweepTimer = null;
      const now = this.clock.now();
      for (const [token, s] of [...this.sessions]) if (now - s.lastSeen >= this.idleMs) this.end(token, 'expired');
      if (this.sessions.size > 0) this.armSweep();
    }, every);
  }

  private disarmSweep(): void {
    if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
  }
}
