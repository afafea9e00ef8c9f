import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../logging';
import type { KpiSnapshot } from '../kpi/kpi-types';
import { parseWsMessage } from '../net/ws-message';
import { WALLBOARD_PROTOCOL_VERSION, wallboardClientMessage, type WallboardErrorCode, type WallboardServerMessage } from './protocol';

const MAX_FRAME = 4096;
const MAX_CLIENTS = 64;

export interface WallboardHubOptions {
  /** Accepts or refuses the token a page sends in `hello` (e.g. adminTokenCheck(adminToken)). */
  authorise: (token: string) => boolean;
  /** The KPIs now, sent to a page right after its hello. */
  current: () => KpiSnapshot;
  log: Logger;
  /** A connection that has not said hello by then is closed (default 5000). */
  helloTimeoutMs?: number;
  /** Refused hellos per address and minute before further ones are closed unanswered (default 10). */
  failuresPerMinute?: number;
  /** Protocol ping to every page this often; a page that missed the previous one is dropped (default 30 000). */
  pingEveryMs?: number;
}

/** Timing-safe comparison with the admin API token. */
export function adminTokenCheck(adminToken: string): (given: string) => boolean {
  const want = Buffer.from(adminToken);
  return (given) => {
    const g = Buffer.from(given);
    return g.length === want.length && timingSafeEqual(g, want);
  };
}

/**
 * The wallboard's WebSocket side: authenticates each page with `hello`, then fans out `kpis`.
 * Read-only: nothing a page sends changes anything.
 */
export class WallboardHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  private readonly clients = new Set<WebSocket>();
  private readonly alive = new WeakSet<WebSocket>();
  private readonly failures = new Map<string, { count: number; since: number }>();
  private readonly pinger: NodeJS.Timeout;
  private readonly log: Logger;

  constructor(private readonly opts: WallboardHubOptions) {
    this.log = opts.log.child({ component: 'wallboard' });
    this.pinger = setInterval(() => this.pingAll(), opts.pingEveryMs ?? 30_000);
    this.pinger.unref();
  }

  /** Pages currently authenticated. */
  get size(): number {
    return this.clients.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req.socket.remoteAddress ?? ''));
  }

  /** Sends the KPIs to every authenticated page. */
  publish(kpis: KpiSnapshot): void {
    if (this.clients.size === 0) return;
    const text = JSON.stringify({ v: 1, type: 'kpis', ...kpis } satisfies WallboardServerMessage);
    for (const ws of this.clients) if (ws.readyState === ws.OPEN) ws.send(text);
  }

  close(): void {
    clearInterval(this.pinger);
    for (const ws of this.wss.clients) ws.close(1001, 'server stopping');
    this.clients.clear();
    this.wss.close();
  }

  private send(ws: WebSocket, msg: WallboardServerMessage): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  }

  private pingAll(): void {
    for (const ws of this.wss.clients) {
      if (!this.alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }

  private onConnection(ws: WebSocket, remote: string): void {
    let authed = false;
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    const helloTimer = setTimeout(() => {
      this.send(ws, { v: 1, type: 'error', code: 'WS_NOT_AUTHENTICATED', message: 'send hello with the admin token first' });
      ws.close(4000, 'no hello');
    }, this.opts.helloTimeoutMs ?? 5000);
    ws.on('error', (err) => this.log.warn({ err }, 'wallboard socket error'));
    ws.on('close', () => {
      clearTimeout(helloTimer);
      this.clients.delete(ws);
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.alive.add(ws);
      const fail = (code: WallboardErrorCode, message: string): void => this.send(ws, { v: 1, type: 'error', code, message });
      const parsed = parseWsMessage(data, isBinary, WALLBOARD_PROTOCOL_VERSION, wallboardClientMessage, 'wallboard protocol');
      if (!parsed.ok) return fail(parsed.code, parsed.message);
      const { msg } = parsed;
      if (msg.type === 'ping') {
        if (!authed) return fail('WS_NOT_AUTHENTICATED', 'send hello with the admin token first');
        return this.send(ws, { v: 1, type: 'pong' });
      }
      if (authed) return; // a repeated hello changes nothing
      if (this.tooManyFailures(remote)) {
        ws.close(4029, 'too many failed hellos');
        return;
      }
      if (!this.opts.authorise(msg.token)) {
        this.noteFailure(remote);
        this.log.warn({ code: 'HTTP_UNAUTHORIZED', remote }, 'wallboard hello with a wrong token');
        fail('WS_SESSION_INVALID', 'wrong token: use the admin API token (keys/admin.token)');
        ws.close(4001, 'wrong token');
        return;
      }
      if (this.clients.size >= MAX_CLIENTS) {
        ws.close(1013, 'too many wallboards');
        return;
      }
      clearTimeout(helloTimer);
      this.failures.delete(remote);
      authed = true;
      this.clients.add(ws);
      try {
        this.send(ws, { v: 1, type: 'kpis', ...this.opts.current() });
      } catch (err) {
        this.log.error({ err }, 'cannot compute the KPIs for a new wallboard');
      }
    });
  }

  private tooManyFailures(remote: string): boolean {
    const f = this.failures.get(remote);
    return !!f && Date.now() - f.since < 60_000 && f.count >= (this.opts.failuresPerMinute ?? 10);
  }

  private noteFailure(remote: string): void {
    const f = this.failures.get(remote);
    const entry = f && Date.now() - f.since < 60_000 ? f : { count: 0, since: Date.now() };
    entry.count++;
    this.failures.set(remote, entry);
  }
}
