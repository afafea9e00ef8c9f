import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { z, type ZodType } from 'zod';
import type { AgentDirectory, DirectoryAgent } from '../acd/agent-directory';
import type { AgentRole } from '../acd/config';
import { isAcdError } from '../acd/errors';
import { clientMessage, PROTOCOL_VERSION, type ClientMessage, type ErrorCode, type LoginResponse, type ServerMessage } from '../agent-ui/protocol';
import { LogLimiter } from '../log-limiter';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import { FailureGuard } from '../net/failure-guard';
import { parseWsMessage } from '../net/ws-message';
import { failureGuardOptions } from '../net/limits-config';
import { agentSessionsConfigSchema, type AgentSessionsConfig } from './config';

const MAX_FRAME = 64 * 1024;
const loginBody = z.object({ agent: z.string().min(1).max(64), password: z.string().min(1).max(1024), newPassword: z.string().max(1024).optional() }).strict();

/** Frames every session protocol (agent /ws, supervisor /supervisor/ws) has, handled here. */
type ControlType = 'hello' | 'ping' | 'logout';
/** What a client frame needs for the hub: a type, an optional ref, and a token on hello. */
export interface HubClientFrame {
  type: string;
  ref?: string;
  token?: string;
}
/** Replies the hub sends itself in any protocol (same shapes as the agent protocol's). */
export type HubServerFrame = { v: 1; type: 'error'; code: ErrorCode; message: string; ref?: string } | { v: 1; type: 'pong'; ref?: string };

/** Messages other than hello/ping/logout, after authentication: the desk acts on these. */
export type HubCommand<C extends HubClientFrame> = Exclude<C, { type: ControlType }>;
export type AgentCommand = HubCommand<ClientMessage>;

export interface SessionHubEvents<C extends HubClientFrame, S> {
  /** Someone of this hub's role logged in over HTTP (their state is set by the desk). */
  login: [agent: DirectoryAgent];
  /** A page said hello: send it the welcome. */
  attached: [agentName: string, socket: WebSocket];
  /** The person's last page went away (closed tab, lost network). */
  detached: [agentName: string];
  command: [agentName: string, msg: HubCommand<C>, reply: (m: S | HubServerFrame) => void];
  /** The session ended (logout, expiry, replaced by a new login). */
  sessionEnded: [agentName: string, reason: string];
}
/** The agent hub's events (kept by name: the desk and tests use it). */
export type AgentSessionsEvents = SessionHubEvents<ClientMessage, ServerMessage>;

/**
 * What the hubs of one directory share, so that /agent and /supervisor are one door: failed
 * logins per address and per name, connections that have not said hello, and the log limiter.
 */
export class SessionGate {
  readonly byAddress: FailureGuard;
  readonly byAgent: FailureGuard;
  /** Rejected logins and frames: a flood costs a counter, not a log line each. */
  readonly limitedLog: LogLimiter;
  /** Connections that have not said hello yet, per address and in all. */
  readonly pending = new Map<string, number>();
  pendingTotal = 0;
  private readonly flushTimer: NodeJS.Timeout;

  constructor(
    readonly cfg: AgentSessionsConfig,
    log: Logger,
  ) {
    this.byAddress = new FailureGuard(failureGuardOptions(cfg.loginFailuresPerAddress));
    this.byAgent = new FailureGuard(failureGuardOptions(cfg.loginFailuresPerAgent));
    this.limitedLog = new LogLimiter(log, { burst: cfg.log.burst, intervalMs: cfg.log.intervalS * 1000 });
    // Summaries of suppressed lines are written when their interval ends, even if the flood stopped.
    this.flushTimer = setInterval(() => this.limitedLog.flush(), Math.min(10_000, cfg.log.intervalS * 1000));
    this.flushTimer.unref();
  }

  close(): void {
    clearInterval(this.flushTimer);
    this.limitedLog.flush(true);
  }
}

export interface SessionHubOptions<C extends HubClientFrame> {
  config?: AgentSessionsConfig;
  metrics?: Metrics;
  /** Whose sessions this hub serves: logins and hellos of another role are refused. */
  role: AgentRole;
  /** Validates every client frame (hello/ping/logout included). */
  schema: ZodType<C>;
  /** Another hub of the same directory whose limits this one shares (it owns and closes them). */
  shareWith?: { readonly gate: SessionGate };
}

/**
 * Sessions of one role over a signalling WebSocket: login, the hello handshake, JSON validation of
 * every frame (a bad frame gets an error reply and the connection stays), and fan-out of server
 * messages to every page a person has open. AgentSessions (/ws) and the supervisor hub
 * (/supervisor/ws) are two of these sharing one SessionGate.
 */
export class SessionHub<C extends HubClientFrame, S> extends EventEmitter<SessionHubEvents<C, S>> {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  private readonly sockets = new Map<string, Set<WebSocket>>();
  private readonly tokens = new WeakMap<WebSocket, string>();
  private readonly log: Logger;
  private readonly cfg: AgentSessionsConfig;
  private readonly metrics: Metrics | undefined;
  readonly role: AgentRole;
  private readonly schema: ZodType<C>;
  /** Limits shared with the other hubs of this directory. */
  readonly gate: SessionGate;
  private readonly ownsGate: boolean;

  constructor(
    private readonly directory: AgentDirectory,
    logger: Logger,
    opts: SessionHubOptions<C>,
  ) {
    super();
    this.role = opts.role;
    this.schema = opts.schema;
    this.log = logger.child({ component: opts.role === 'agent' ? 'agents' : 'supervisors' });
    this.metrics = opts.metrics;
    this.ownsGate = opts.shareWith === undefined;
    this.gate = opts.shareWith?.gate ?? new SessionGate(opts.config ?? agentSessionsConfigSchema.parse({}), this.log);
    this.cfg = this.gate.cfg;
    directory.on('sessionEnded', (token, agentName, reason, role) => {
      if (role !== this.role) return;
      for (const ws of this.sockets.get(agentName) ?? []) {
        if (this.tokens.get(ws) !== token) continue;
        this.sendTo(ws, { v: 1, type: 'error', code: 'WS_SESSION_INVALID', message: `session ended (${reason})` });
        ws.close(4001, 'session ended');
      }
      this.emit('sessionEnded', agentName, reason);
    });
  }

  /**
   * POST /agent/login. The attempt is counted against the source address and the agent name
   * BEFORE the password is hashed, so parallel guesses cannot all pass one check; a blocked key
   * gets 429 without any hashing; a full hashing queue gets 503 at once. Only a success clears.
   */
  async login(body: unknown, remote: string): Promise<{ status: number; body: LoginResponse; headers?: Record<string, string> }> {
    const { byAddress, byAgent, limitedLog } = this.gate;
    const parsed = loginBody.safeParse(body);
    if (!parsed.success) {
      this.metrics?.agentLoginsRefused.inc({ reason: 'bad_request' });
      return { status: 400, body: { error: { code: 'HTTP_BAD_REQUEST', message: 'expected {"agent": string, "password": string, "newPassword"?: string}' } } };
    }
    const name = parsed.data.agent;
    const addrKey = remote;
    // Names are keys an attacker chooses: FailureGuard's LRU bound (maxKeys) caps the memory.
    const agentKey = name;
    const blockedAddr = byAddress.blockedFor(addrKey);
    const blockedAgent = byAgent.blockedFor(agentKey);
    if (blockedAddr > 0 || blockedAgent > 0) {
      const reason = blockedAddr >= blockedAgent ? 'throttled_address' : 'throttled_agent';
      this.metrics?.agentLoginsRefused.inc({ reason });
      limitedLog.warn('login-throttled', { code: 'AGENT_LOGIN_THROTTLED', agent: name.slice(0, 64), remote, reason }, 'agent login refused: too many failures');
      const retryAfterS = Math.max(1, Math.ceil(Math.max(blockedAddr, blockedAgent) / 1000));
      const message = reason === 'throttled_address' ? 'too many failed logins from this address; try again later' : 'too many failed logins for this agent; try again later';
      return { status: 429, body: { error: { code: 'AGENT_LOGIN_THROTTLED', message, retryAfterS } }, headers: { 'retry-after': String(retryAfterS) } };
    }
    // Counted now, before the costly check; refunded if the check never ran (busy) or crashed.
    byAddress.fail(addrKey);
    byAgent.fail(agentKey);
    try {
      const changing = parsed.data.newPassword !== undefined && this.directory.mustChangePassword(name);
      const { token, agent } = await this.directory.login(name, parsed.data.password, this.role, parsed.data.newPassword);
      if (changing) this.log.info({ agent: agent.name, remote }, 'agent replaced the one-time password');
      this.metrics?.passwordChecks.inc();
      byAddress.succeed(addrKey);
      byAgent.succeed(agentKey);
      this.log.info({ agent: agent.name, remote }, 'agent logged in');
      this.emit('login', agent);
      return { status: 200, body: { token, agent: { name: agent.name, displayName: agent.displayName } } };
    } catch (e) {
      if (isAcdError(e, 'AGENT_LOGIN_BUSY')) {
        // Nothing was checked: this attempt does not count against the address or the agent.
        byAddress.refund(addrKey);
        byAgent.refund(agentKey);
        this.metrics?.agentLoginsRefused.inc({ reason: 'busy' });
        limitedLog.warn('login-busy', { code: 'AGENT_LOGIN_BUSY', agent: name.slice(0, 64), remote }, 'agent login refused: password checks queued to the limit');
        const retryAfterS = this.cfg.passwordHashing.busyRetryAfterS;
        return { status: 503, body: { error: { code: 'AGENT_LOGIN_BUSY', message: e.message, retryAfterS } }, headers: { 'retry-after': String(retryAfterS) } };
      }
      if (isAcdError(e, 'AGENT_WRONG_ROLE')) {
        // The password was right: not a guess. The person is sent to their own page.
        this.metrics?.passwordChecks.inc();
        byAddress.succeed(addrKey);
        byAgent.succeed(agentKey);
        this.metrics?.agentLoginsRefused.inc({ reason: 'wrong_role' });
        limitedLog.warn('login-wrong-role', { code: 'AGENT_WRONG_ROLE', agent: name.slice(0, 64), remote, page: this.role }, 'login refused: wrong page for this role');
        return { status: 403, body: { error: { code: 'AGENT_WRONG_ROLE', message: e.message } } };
      }
      if (isAcdError(e, 'AGENT_PASSWORD_CHANGE_REQUIRED') || isAcdError(e, 'AGENT_PASSWORD_REJECTED')) {
        // The one-time password was right: not a guess. Nothing is opened until a new one is set.
        this.metrics?.passwordChecks.inc();
        byAddress.succeed(addrKey);
        byAgent.succeed(agentKey);
        const code = e.code === 'AGENT_PASSWORD_CHANGE_REQUIRED' ? ('AGENT_PASSWORD_CHANGE_REQUIRED' as const) : ('AGENT_PASSWORD_REJECTED' as const);
        return { status: code === 'AGENT_PASSWORD_CHANGE_REQUIRED' ? 403 : 400, body: { error: { code, message: e.message } } };
      }
      if (!isAcdError(e, 'AGENT_LOGIN_FAILED')) {
        byAddress.refund(addrKey);
        byAgent.refund(agentKey);
        throw e;
      }
      this.metrics?.passwordChecks.inc();
      this.metrics?.agentLoginsRefused.inc({ reason: 'wrong_password' });
      limitedLog.warn('login-failed', { code: 'AGENT_LOGIN_FAILED', agent: name.slice(0, 64), remote }, 'agent login failed');
      return { status: 401, body: { error: { code: 'AGENT_LOGIN_FAILED', message: e.message } } };
    }
  }

  /**
   * Refuses the upgrade (before the WebSocket handshake, so it costs no ws state) when the
   * address, or everybody together, already holds the allowed number of connections that have
   * not said hello: 429 per address, 503 in total. Pages reconnect with backoff, so a refused
   * legitimate page comes back once the flood's connections time out.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const gate = this.gate;
    const remote = req.socket.remoteAddress ?? '';
    const mine = gate.pending.get(remote) ?? 0;
    const refuse = mine >= this.cfg.ws.maxPendingPerAddress ? 'address_limit' : gate.pendingTotal >= this.cfg.ws.maxPending ? 'total_limit' : undefined;
    if (refuse) {
      this.metrics?.wsRefused.inc({ reason: refuse });
      gate.limitedLog.warn(`ws-${refuse}`, { code: 'WS_TOO_MANY_PENDING', remote, reason: refuse }, 'agent WebSocket refused: too many connections without hello');
      const status = refuse === 'address_limit' ? '429 Too Many Requests' : '503 Service Unavailable';
      const body = JSON.stringify({ error: { code: 'WS_TOO_MANY_PENDING', message: 'too many connections that have not said hello' } });
      // Destroyed once written: the HTTP server's sockets allow half-open, and this peer gets nothing more.
      socket.end(`HTTP/1.1 ${status}\r\nRetry-After: 5\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, () => socket.destroy());
      return;
    }
    // Counted from the upgrade on (the handshake itself is work), released at hello or close.
    gate.pending.set(remote, mine + 1);
    gate.pendingTotal++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      gate.pendingTotal--;
      const n = (gate.pending.get(remote) ?? 1) - 1;
      if (n <= 0) gate.pending.delete(remote);
      else gate.pending.set(remote, n);
    };
    socket.once('close', release);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, remote, release));
  }

  /** Connections that have not said hello yet (tests, health). */
  get pendingConnections(): number {
    return this.gate.pendingTotal;
  }

  isConnected(agentName: string): boolean {
    return (this.sockets.get(agentName)?.size ?? 0) > 0;
  }

  /** Names of the people with a page connected now. */
  connectedNames(): string[] {
    return [...this.sockets.keys()];
  }

  /** Sends to every page the person has open. */
  send(agentName: string, msg: S | HubServerFrame): void {
    const set = this.sockets.get(agentName);
    if (!set || set.size === 0) return;
    const text = JSON.stringify(msg);
    for (const ws of set) if (ws.readyState === ws.OPEN) ws.send(text);
  }

  sendTo(ws: WebSocket, msg: S | HubServerFrame): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  }

  /** Ends every session of `agentName` (a supervisor's Log out): pages close, `sessionEnded` follows. */
  endSessions(agentName: string): number {
    return this.directory.logoutAgent(agentName);
  }

  close(): void {
    if (this.ownsGate) this.gate.close();
    for (const set of this.sockets.values()) for (const ws of set) ws.close(1001, 'server stopping');
    this.sockets.clear();
    this.wss.close();
  }

  private onConnection(ws: WebSocket, remote: string, releasePending: () => void): void {
    let agentName: string | undefined;
    let framesBeforeHello = 0;
    const helloTimer = setTimeout(() => {
      this.metrics?.wsRefused.inc({ reason: 'hello_timeout' });
      this.sendTo(ws, { v: 1, type: 'error', code: 'WS_NOT_AUTHENTICATED', message: 'send hello with your session token first' });
      ws.close(4000, 'no hello');
    }, this.cfg.ws.helloTimeoutMs);
    ws.on('error', (err) => this.gate.limitedLog.warn('ws-error', { err, agent: agentName, remote }, 'agent socket error'));
    ws.on('close', () => {
      clearTimeout(helloTimer);
      releasePending();
      if (!agentName) return;
      const set = this.sockets.get(agentName);
      set?.delete(ws);
      if (set && set.size === 0) {
        this.sockets.delete(agentName);
        this.emit('detached', agentName);
      }
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const fail = (code: ErrorCode, message: string, ref?: string): void => {
        // Keyed by code: whatever the flood, each kind of rejection costs `burst` lines per interval.
        this.gate.limitedLog.warn(`ws-rejected-${code}`, { code, agent: agentName, remote, detail: message }, 'agent message rejected');
        this.sendTo(ws, { v: 1, type: 'error', code, message, ref });
      };
      if (!agentName) {
        // Before hello the peer is nobody: a few frames are answered (a page may race its hello),
        // then the connection is closed rather than answering and logging a flood frame by frame.
        framesBeforeHello++;
        this.metrics?.wsFramesBeforeHello.inc();
        if (framesBeforeHello > this.cfg.ws.maxFramesBeforeHello) {
          if (ws.readyState === ws.OPEN) {
            this.metrics?.wsRefused.inc({ reason: 'frames_before_hello' });
            this.gate.limitedLog.warn('ws-frames-before-hello', { code: 'WS_NOT_AUTHENTICATED', remote, frames: framesBeforeHello }, 'agent WebSocket closed: too many frames before hello');
            ws.close(1008, 'too many frames before hello');
          }
          return;
        }
      }
      const parsed = parseWsMessage(data, isBinary, PROTOCOL_VERSION, this.schema, 'protocol');
      if (!parsed.ok) return fail(parsed.code, parsed.message, parsed.ref);
      const { msg, ref } = parsed;
      if (msg.type === 'hello') {
        const agent = this.directory.resolve(msg.token ?? '');
        if (!agent) return fail('WS_SESSION_INVALID', 'unknown or expired session: log in again', ref);
        if (agent.role !== this.role) return fail('WS_NOT_ALLOWED', this.role === 'agent' ? 'supervisors use /supervisor' : 'this connection is for supervisors', ref);
        clearTimeout(helloTimer);
        releasePending();
        if (agentName && agentName !== agent.name) return fail('WS_NOT_ALLOWED', 'this connection belongs to another agent', ref);
        agentName = agent.name;
        this.tokens.set(ws, msg.token ?? '');
        let set = this.sockets.get(agent.name);
        if (!set) this.sockets.set(agent.name, (set = new Set()));
        set.add(ws);
        this.emit('attached', agent.name, ws);
        return;
      }
      if (!agentName) return fail('WS_NOT_AUTHENTICATED', 'send hello with your session token first', ref);
      // Every frame proves the session is in use (idle expiry) and still valid.
      const token = this.tokens.get(ws) ?? '';
      if (!this.directory.resolve(token)) return fail('WS_SESSION_INVALID', 'session ended: log in again', ref);
      if (msg.type === 'ping') return this.sendTo(ws, { v: 1, type: 'pong', ref });
      if (msg.type === 'logout') {
        this.directory.logout(token);
        return;
      }
      const name = agentName;
      const command = msg as HubCommand<C>;
      this.emit('command', name, command, (m) => this.sendTo(ws, ref && isErrorFrame(m) ? { ...m, ref } : m));
    });
  }
}

function isErrorFrame(m: unknown): m is Extract<HubServerFrame, { type: 'error' }> {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'error';
}

/** The agent softphone's sessions: /agent/login and /ws (protocol in agent-ui/protocol.ts). */
export class AgentSessions extends SessionHub<ClientMessage, ServerMessage> {
  constructor(directory: AgentDirectory, logger: Logger, opts: { config?: AgentSessionsConfig; metrics?: Metrics } = {}) {
    super(directory, logger, { ...opts, role: 'agent', schema: clientMessage });
  }
}
