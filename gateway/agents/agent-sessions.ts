import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { z } from 'zod';
import type { AgentDirectory, DirectoryAgent } from '../acd/agent-directory';
import { isAcdError } from '../acd/errors';
import { clientMessage, PROTOCOL_VERSION, type ClientMessage, type ErrorCode, type LoginResponse, type ServerMessage } from '../agent-ui/protocol';
import type { Logger } from '../logging';

const HELLO_TIMEOUT_MS = 5000;
const MAX_FRAME = 64 * 1024;
const LOGIN_FAILURES_PER_MINUTE = 10;
const loginBody = z.object({ agent: z.string().min(1).max(64), password: z.string().min(1).max(1024) }).strict();

/** Messages other than hello/ping/logout, after authentication: the desk acts on these. */
export type AgentCommand = Exclude<ClientMessage, { type: 'hello' } | { type: 'ping' } | { type: 'logout' }>;

export interface AgentSessionsEvents {
  /** An agent logged in over HTTP (its state is set by the desk). */
  login: [agent: DirectoryAgent];
  /** A page said hello: send it the welcome. */
  attached: [agentName: string, socket: WebSocket];
  /** The agent's last page went away (closed tab, lost network). */
  detached: [agentName: string];
  command: [agentName: string, msg: AgentCommand, reply: (m: ServerMessage) => void];
  /** The agent's session ended (logout, expiry, replaced by a new login). */
  sessionEnded: [agentName: string, reason: string];
}

/**
 * Agent sessions over the signalling WebSocket: login, the hello handshake, JSON validation of
 * every frame (a bad frame gets an error reply and the connection stays), and fan-out of server
 * messages to every page an agent has open.
 */
export class AgentSessions extends EventEmitter<AgentSessionsEvents> {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  private readonly sockets = new Map<string, Set<WebSocket>>();
  private readonly tokens = new WeakMap<WebSocket, string>();
  private readonly failures = new Map<string, { count: number; since: number }>();
  private readonly log: Logger;

  constructor(
    private readonly directory: AgentDirectory,
    logger: Logger,
  ) {
    super();
    this.log = logger.child({ component: 'agents' });
    directory.on('sessionEnded', (token, agentName, reason) => {
      for (const ws of this.sockets.get(agentName) ?? []) {
        if (this.tokens.get(ws) !== token) continue;
        this.sendTo(ws, { v: 1, type: 'error', code: 'WS_SESSION_INVALID', message: `session ended (${reason})` });
        ws.close(4001, 'session ended');
      }
      this.emit('sessionEnded', agentName, reason);
    });
  }

  /** POST /agent/login. */
  async login(body: unknown, remote: string): Promise<{ status: number; body: LoginResponse }> {
    const parsed = loginBody.safeParse(body);
    if (!parsed.success) {
      return { status: 400, body: { error: { code: 'HTTP_BAD_REQUEST', message: 'expected {"agent": string, "password": string}' } } };
    }
    const f = this.failures.get(remote);
    if (f && Date.now() - f.since < 60_000 && f.count >= LOGIN_FAILURES_PER_MINUTE) {
      return { status: 429, body: { error: { code: 'AGENT_LOGIN_FAILED', message: 'too many failed logins from this address; wait a minute' } } };
    }
    try {
      const { token, agent } = await this.directory.login(parsed.data.agent, parsed.data.password);
      this.failures.delete(remote);
      this.log.info({ agent: agent.name, remote }, 'agent logged in');
      this.emit('login', agent);
      return { status: 200, body: { token, agent: { name: agent.name, displayName: agent.displayName } } };
    } catch (e) {
      if (!isAcdError(e, 'AGENT_LOGIN_FAILED')) throw e;
      const entry = f && Date.now() - f.since < 60_000 ? f : { count: 0, since: Date.now() };
      entry.count++;
      this.failures.set(remote, entry);
      this.log.warn({ code: 'AGENT_LOGIN_FAILED', agent: parsed.data.agent.slice(0, 64), remote }, 'agent login failed');
      return { status: 401, body: { error: { code: 'AGENT_LOGIN_FAILED', message: e.message } } };
    }
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
  }

  isConnected(agentName: string): boolean {
    return (this.sockets.get(agentName)?.size ?? 0) > 0;
  }

  /** Sends to every page the agent has open. */
  send(agentName: string, msg: ServerMessage): void {
    for (const ws of this.sockets.get(agentName) ?? []) this.sendTo(ws, msg);
  }

  sendTo(ws: WebSocket, msg: ServerMessage): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  }

  close(): void {
    for (const set of this.sockets.values()) for (const ws of set) ws.close(1001, 'server stopping');
    this.sockets.clear();
    this.wss.close();
  }

  private onConnection(ws: WebSocket): void {
    let agentName: string | undefined;
    const helloTimer = setTimeout(() => {
      this.sendTo(ws, { v: 1, type: 'error', code: 'WS_NOT_AUTHENTICATED', message: 'send hello with your session token first' });
      ws.close(4000, 'no hello');
    }, HELLO_TIMEOUT_MS);
    ws.on('error', (err) => this.log.warn({ err, agent: agentName }, 'agent socket error'));
    ws.on('close', () => {
      clearTimeout(helloTimer);
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
        this.log.warn({ code, agent: agentName, detail: message }, 'agent message rejected');
        this.sendTo(ws, { v: 1, type: 'error', code, message, ref });
      };
      if (isBinary) return fail('WS_BAD_MESSAGE', 'binary frames are not part of the protocol');
      let json: unknown;
      try {
        json = JSON.parse(rawText(data));
      } catch {
        return fail('WS_BAD_MESSAGE', 'not JSON');
      }
      const ref = typeof (json as { ref?: unknown })?.ref === 'string' ? ((json as { ref: string }).ref.slice(0, 64)) : undefined;
      if ((json as { v?: unknown })?.v !== PROTOCOL_VERSION) return fail('WS_UNSUPPORTED_VERSION', `this server speaks protocol version ${PROTOCOL_VERSION}`, ref);
      const parsed = clientMessage.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return fail('WS_BAD_MESSAGE', `${issue.path.join('.') || 'message'}: ${issue.message}`, ref);
      }
      const msg = parsed.data;
      if (msg.type === 'hello') {
        const agent = this.directory.resolve(msg.token);
        if (!agent) return fail('WS_SESSION_INVALID', 'unknown or expired session: log in again', ref);
        clearTimeout(helloTimer);
        if (agentName && agentName !== agent.name) return fail('WS_NOT_ALLOWED', 'this connection belongs to another agent', ref);
        agentName = agent.name;
        this.tokens.set(ws, msg.token);
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
      this.emit('command', name, msg, (m) => this.sendTo(ws, ref && m.type === 'error' ? { ...m, ref } : m));
    });
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
