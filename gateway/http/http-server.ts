import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { CcedgeError } from '../errors';
import { LogLimiter } from '../log-limiter';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import { FailureGuard } from '../net/failure-guard';
import { failureGuardOptions } from '../net/limits-config';
import { TokenMatcher } from './admin-token';
import { httpConfigSchema, type HttpConfig } from './config';
import { httpsLocation, plainHttpDecision } from './plain-http';
import { trustPage } from './trust-page';
import { landingPage } from './landing-page';
import type { SetupRequest, SetupResponse } from '../setup/setup-service';
import type { CallState, CallStore } from '../store/call-store';
import type { IntentKpi, QueueKpi } from '../kpi/kpi-types';
import { serveWallboardAsset } from '../wallboard/assets';
import type { PeopleApiRequest, PeopleApiResponse } from '../people/people-api';

/** What the recordings endpoints need from the vault. */
export interface RecordingsApi {
  list(): Promise<unknown[]>;
  audio(id: string, who: string, reason: string, range: string | undefined): Promise<{ status: number; headers: Record<string, string>; stream: NodeJS.ReadableStream }>;
  denied(id: string, who: string, role: string): Promise<void>;
  /** Compliance sees who called; other roles see metadata only. */
  listWithCallers?(): Promise<unknown[]>;
  /** Legal hold by call id (compliance), audited with who and why. */
  setHold?(callId: string, on: boolean, who: string, reason: string): Promise<{ callId: string; on: boolean; recordings: number }>;
  /** Re-wraps every data key under a new site key (admin or compliance), audited. */
  rotateKey?(who: string, reason: string): Promise<{ from: string; to: string; rewrapped: number }>;
  /** Transcripts' metadata (no text), every role that may list recordings. */
  transcripts?(): Promise<unknown[]>;
  /** A call's transcript (by transcript, recording or call id) for the compliance role, audited with the reason. */
  transcript?(ref: string, who: string, reason: string): Promise<unknown>;
}

/** Backups (gateway/backup): status, and a run now (admin) for `ccedge backup now`. */
export interface BackupApi {
  status(): unknown;
  /** Resolves with the result, or rejects with a CcedgeError (BACKUP_BUSY, BACKUP_NOT_CONFIGURED, …). */
  run(to: string | undefined): Promise<unknown>;
}

/** Blind transfers for the admin API; errors carry httpStatus 400/404/409 (agents/transfers.ts). */
export interface TransferApi {
  transfer(callId: string, target: string): Promise<{ agent: string; outcome: string }>;
}

export interface ApiIdentity {
  name: string;
  role: 'admin' | 'supervisor' | 'compliance';
}

/** The agent softphone's server side: login and the signalling WebSocket. */
export interface AgentEndpoints {
  login(body: unknown, remote: string): Promise<{ status: number; body: unknown; headers?: Record<string, string> }>;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** The pages with a microphone or speaker (dist/agent-ui/, dist/supervisor-ui/, built by scripts/build-agent-page.js). */
const AGENT_UI_DIR = path.join(__dirname, '..', '..', 'agent-ui');
const SUPERVISOR_UI_DIR = path.join(__dirname, '..', '..', 'supervisor-ui');
const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const PAGE_ASSETS: Record<string, { page: string; dir: string; file: string; type: string }> = {
  '/agent': { page: 'agent', dir: AGENT_UI_DIR, file: 'index.html', type: HTML },
  '/agent/': { page: 'agent', dir: AGENT_UI_DIR, file: 'index.html', type: HTML },
  '/agent/agent.js': { page: 'agent', dir: AGENT_UI_DIR, file: 'agent.js', type: JS },
  '/agent/agent.css': { page: 'agent', dir: AGENT_UI_DIR, file: 'agent.css', type: CSS },
  '/supervisor': { page: 'supervisor', dir: SUPERVISOR_UI_DIR, file: 'index.html', type: HTML },
  '/supervisor/': { page: 'supervisor', dir: SUPERVISOR_UI_DIR, file: 'index.html', type: HTML },
  '/supervisor/supervisor.js': { page: 'supervisor', dir: SUPERVISOR_UI_DIR, file: 'supervisor.js', type: JS },
  '/supervisor/supervisor.css': { page: 'supervisor', dir: SUPERVISOR_UI_DIR, file: 'supervisor.css', type: CSS },
};

/**
 * On every response: no page of this box may be framed by another site (clickjacking the
 * softphone's Answer/Transfer buttons). HTML pages repeat frame-ancestors in their full CSP.
 */
const FRAME_HEADERS: Record<string, string> = { 'x-frame-options': 'DENY', 'content-security-policy': "frame-ancestors 'none'" };

export interface HttpDeps {
  host: string;
  port: number;
  adminToken: string;
  /** More API identities with roles (supervisor, compliance); the admin token is role admin. */
  tokens?: Array<{ name: string; token: string; role: 'admin' | 'supervisor' | 'compliance' }>;
  recordings?: RecordingsApi;
  /** Box health and E1 trunks (hw/): GET /api/v1/health, GET /api/v1/trunks. */
  hw?: { health(): unknown; trunks(): unknown };
  metrics: Metrics;
  store: CallStore;
  health: () => Record<string, unknown>;
  log: Logger;
  agents?: AgentEndpoints;
  /** The supervisor page's server side: POST /supervisor/login (same rules as /agent/login) and WS /supervisor/ws. */
  supervisors?: AgentEndpoints;
  /** GET /api/v1/supervisor-audit?limit=N: supervisor actions and monitoring sessions, most recent first. */
  supervisorAudit?: (limit: number) => Promise<unknown[]>;
  /** GET /api/v1/agents: every configured agent's state, reason and label ("Away (lunch)"). */
  agentStates?: () => unknown[];
  /**
   * Live people data (gateway/people/people-api.ts): /api/v1/agents, /api/v1/queues (CRUD) and
   * /api/v1/away-reasons. With it, GET of those lists comes from here too (config fields + state).
   */
  people?: { handles(pathname: string): boolean; handle(req: PeopleApiRequest): Promise<PeopleApiResponse> };
  /** POST /api/v1/calls/:id/transfer (agents/transfers.ts through the desk). */
  transfers?: TransferApi;
  kpi?: { queues(): QueueKpi[]; intents(): IntentKpi[] };
  wallboard?: { handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void };
  sync?: { status(): Promise<unknown> };
  /**
   * HTTPS/WSS with the site certificate (https: in ccedge.yaml). The same routes, limits and
   * headers as plain HTTP; with it, plain HTTP redirects clients not on loopback (plain-http.ts).
   */
  https?: { host: string; port: number; certs: { pem(): { cert: string; key: string }; caPem(): string | undefined } };
  backup?: BackupApi;
  /** GET /api/v1/media/workers; POST /api/v1/media/workers/:n/restart (admin: its calls end, it starts again). */
  mediaWorkers?: { status(): unknown; restart(index: number): Promise<number> };
  /** The first-run page /setup (HTTPS only; absent: 404). */
  setup?: { readonly open: boolean; handle(req: SetupRequest): Promise<SetupResponse> };
  /** Body size, bearer-token backoff and log limits (http: in ccedge.yaml); defaults from the schema. */
  limits?: Pick<HttpConfig, 'maxBodyBytes' | 'tokenFailures' | 'log'>;
}

const PEOPLE_BODY_BYTES = 1024 * 1024;

const CALL_STATES = new Set<CallState>(['ringing', 'answered', 'ended', 'failed']);

/** /healthz, /metrics and the admin API /api/v1 on the HTTP port. */
export class HttpServer {
  private server: Server | undefined;
  private secureServer: HttpsServer | undefined;
  /** The port HTTPS listens on, once started (redirect targets, the trust page). */
  httpsPort: number | undefined;
  private readonly log: Logger;
  private readonly limits: Pick<HttpConfig, 'maxBodyBytes' | 'tokenFailures' | 'log'>;
  /** Wrong bearer tokens per source address. */
  private readonly tokenGuard: FailureGuard;
  private readonly tokens: TokenMatcher<{ name: string; token: string; role: ApiIdentity['role'] }>;
  private readonly limitedLog: LogLimiter;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: HttpDeps) {
    this.log = deps.log.child({ component: 'http' });
    const defaults = httpConfigSchema.parse({});
    this.limits = deps.limits ?? { maxBodyBytes: defaults.maxBodyBytes, tokenFailures: defaults.tokenFailures, log: defaults.log };
    this.tokenGuard = new FailureGuard(failureGuardOptions(this.limits.tokenFailures));
    this.tokens = new TokenMatcher([{ name: 'admin', token: deps.adminToken, role: 'admin' as const }, ...(deps.tokens ?? [])]);
    this.limitedLog = new LogLimiter(this.log, { burst: this.limits.log.burst, intervalMs: this.limits.log.intervalS * 1000 });
  }

  async start(): Promise<number> {
    const handle = (secure: boolean) => (req: IncomingMessage, res: ServerResponse) => {
      for (const [k, v] of Object.entries(FRAME_HEADERS)) res.setHeader(k, v);
      if (!secure && this.redirectToHttps(req, res)) return;
      this.route(req, res, secure).catch((err: unknown) => this.fail(req, res, err));
    };
    const upgrade = (secure: boolean) => (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (!secure && plainHttpDecision(url.pathname, req.socket.remoteAddress, this.httpsPort, req.socket.localAddress) === 'redirect') {
        // Browsers do not follow redirects on WebSockets: refuse with the address to use instead.
        const to = httpsLocation({ hostHeader: req.headers.host, localAddress: req.socket.localAddress, httpsPort: this.httpsPort as number, pathAndQuery: url.pathname }).replace(/^https:/, 'wss:');
        const text = `WebSockets from other computers use ${to} (HTTPS); plain ws:// is for this box only\n`;
        this.limitedLog.warn('plain-ws-refused', { code: 'HTTP_TLS_REQUIRED', remote: req.socket.remoteAddress, path: url.pathname.slice(0, 100) }, 'plain WebSocket from another computer refused: it must use wss://');
        socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
        return;
      }
      if (url.pathname === '/ws' && this.deps.agents) this.deps.agents.handleUpgrade(req, socket, head);
      else if (url.pathname === '/supervisor/ws' && this.deps.supervisors) this.deps.supervisors.handleUpgrade(req, socket, head);
      else if (url.pathname === '/ws/wallboard' && this.deps.wallboard) this.deps.wallboard.handleUpgrade(req, socket, head);
      else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
    };
    this.flushTimer = setInterval(() => this.limitedLog.flush(), Math.min(10_000, this.limits.log.intervalS * 1000));
    this.flushTimer.unref();
    const tls = this.deps.https;
    if (tls) {
      // HTTPS first: plain HTTP must know the port it redirects to before its first request.
      const { cert, key } = tls.certs.pem();
      const secure = createHttpsServer({ cert, key, minVersion: 'TLSv1.2' }, handle(true));
      secure.on('upgrade', upgrade(true));
      // A handshake that fails (a browser that does not trust the CA yet, a scanner) is not an error of ours.
      secure.on('tlsClientError', (err, socket) => {
        this.limitedLog.warn('tls-handshake', { code: 'HTTP_TLS_HANDSHAKE', remote: socket.remoteAddress, reason: err.message.slice(0, 120) }, 'HTTPS handshake failed');
        socket.destroy();
      });
      this.secureServer = secure;
      this.httpsPort = await this.listen(secure, tls.host, tls.port, 'HTTPS');
    }
    const server = createServer(handle(false));
    server.on('upgrade', upgrade(false));
    this.server = server;
    const port = await this.listen(server, this.deps.host, this.deps.port, 'HTTP');
    return port;
  }

  /**
   * Uses the store's current certificate for the next HTTPS handshakes (the files changed:
   * renewed, imported); connections already open keep theirs.
   */
  reloadCertificate(): void {
    if (!this.secureServer || !this.deps.https) return;
    const { cert, key } = this.deps.https.certs.pem();
    this.secureServer.setSecureContext({ cert, key, minVersion: 'TLSv1.2' });
    this.log.info({ port: this.httpsPort }, 'HTTPS certificate reloaded');
  }

  private async listen(server: Server | HttpsServer, host: string, port: number, what: string): Promise<number> {
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new CcedgeError('CONFIG_INVALID', `cannot listen on ${what} ${host}:${port}: ${e.message}`)));
      server.listen(port, host, () => resolve());
    });
    const bound = (server.address() as AddressInfo).port;
    this.log.info({ host, port: bound }, `${what} listening`);
    return bound;
  }

  /** Plain HTTP from another computer: 301 (GET/HEAD) or 308 to the same path on HTTPS. True if answered. */
  private redirectToHttps(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (plainHttpDecision(url.pathname, req.socket.remoteAddress, this.httpsPort, req.socket.localAddress) === 'serve') return false;
    const location = httpsLocation({ hostHeader: req.headers.host, localAddress: req.socket.localAddress, httpsPort: this.httpsPort as number, pathAndQuery: url.pathname + url.search });
    // 308 keeps the method and body (a login POST); 301 is what every client follows for GET.
    const status = req.method === 'GET' || req.method === 'HEAD' ? 301 : 308;
    if (hasBody(req)) res.once('finish', () => req.socket.destroy());
    res.writeHead(status, { location, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...(hasBody(req) ? { connection: 'close' } : {}) });
    res.end(req.method === 'HEAD' ? undefined : `This page is served over HTTPS: ${location}\n`);
    return true;
  }

  async close(): Promise<void> {
    const servers = [this.server, this.secureServer].filter((s): s is Server | HttpsServer => s !== undefined);
    if (servers.length === 0) return;
    this.server = undefined;
    this.secureServer = undefined;
    clearInterval(this.flushTimer);
    this.limitedLog.flush(true);
    await Promise.all(
      servers.map((server) => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
  }

  private async route(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    // An announced body over the limit is refused before a byte of it is read.
    const announced = Number(req.headers['content-length'] ?? 0);
    const bodyLimit = this.deps.people?.handles(url.pathname) ? Math.max(this.limits.maxBodyBytes, PEOPLE_BODY_BYTES) : this.limits.maxBodyBytes;
    if (announced > bodyLimit) throw tooLarge(bodyLimit);
    if (hasBody(req)) {
      // Node drains an unread body after the response to keep the connection alive: a 10 MB
      // body sent to a path that reads none would still be read whole. Close instead.
      res.once('finish', () => {
        if (!req.complete) req.socket.destroy();
      });
    }
    const loginAt = url.pathname === '/agent/login' ? this.deps.agents : url.pathname === '/supervisor/login' ? this.deps.supervisors : undefined;
    if (loginAt) {
      if (req.method !== 'POST') {
        this.json(res, 405, { error: { code: 'HTTP_BAD_REQUEST', message: 'use POST' } }, { allow: 'POST' });
        return;
      }
      const body = await readJson(req, this.limits.maxBodyBytes);
      const result = await loginAt.login(body, req.socket.remoteAddress ?? '');
      this.json(res, result.status, result.body, result.headers);
      return;
    }
    if (url.pathname === '/setup' && this.deps.setup) {
      await this.setupPage(req, res, secure);
      return;
    }
    if (req.method === 'POST' && url.pathname.startsWith('/api/v1/recordings/')) {
      const who = this.authenticate(req, res);
      if (!who) return;
      await this.recordingAction(req, res, url.pathname, who);
      return;
    }
    if (this.deps.people?.handles(url.pathname)) {
      const who = this.authenticate(req, res);
      if (!who) return;
      const method = req.method ?? 'GET';
      // A CSV import is one all-or-nothing request: up to 1 MiB for these admin-only routes.
      const body = ['POST', 'PATCH', 'PUT'].includes(method) ? await readJson(req, Math.max(this.limits.maxBodyBytes, PEOPLE_BODY_BYTES)) : undefined;
      const r = await this.deps.people.handle({ method, pathname: url.pathname, query: url.searchParams, body, role: who.role, who: who.name });
      this.json(res, r.status, r.body, r.headers);
      return;
    }
    const transfer = req.method === 'POST' ? /^\/api\/v1\/calls\/([A-Za-z0-9@._:-]{1,128})\/transfer$/.exec(url.pathname) : null;
    if (transfer && this.deps.transfers) {
      const who = this.authenticate(req, res);
      if (!who) return;
      await this.transferCall(req, res, transfer[1], who, this.deps.transfers);
      return;
    }
    const restart = req.method === 'POST' ? /^\/api\/v1\/media\/workers\/(\d{1,2})\/restart$/.exec(url.pathname) : null;
    if (restart && this.deps.mediaWorkers) {
      const who = this.authenticate(req, res);
      if (!who) return;
      if (who.role !== 'admin') {
        this.json(res, 403, { error: { code: 'HTTP_FORBIDDEN', message: 'only the admin role may restart a media worker' } });
        return;
      }
      const index = Number(restart[1]);
      let sessions: number;
      try {
        sessions = await this.deps.mediaWorkers.restart(index);
      } catch (err) {
        this.json(res, 404, { error: { code: 'HTTP_NOT_FOUND', message: (err as Error).message } });
        return;
      }
      this.log.warn({ worker: index, sessions, by: who.name }, 'media worker restarted by the API: its calls ended');
      this.json(res, 200, { worker: index, sessionsEnded: sessions });
      return;
    }
    if (req.method === 'POST' && url.pathname === '/api/v1/backup' && this.deps.backup) {
      const who = this.authenticate(req, res);
      if (!who) return;
      await this.backupNow(req, res, who, this.deps.backup);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.json(res, 405, { error: { code: 'HTTP_BAD_REQUEST', message: `method ${req.method ?? ''} not allowed` } }, { allow: 'GET, HEAD' });
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" });
      res.end(req.method === 'HEAD' ? undefined : landingPage({ setupOpen: this.deps.setup?.open ?? false }));
      return;
    }
    if (await serveWallboardAsset(url.pathname, req, res)) return;
    const asset = PAGE_ASSETS[url.pathname];
    if (asset) {
      const content = await readFile(path.join(asset.dir, asset.file)).catch(() => undefined);
      if (!content) throw new CcedgeError('HTTP_NOT_FOUND', `the ${asset.page} page is not built (npm run build)`);
      res.writeHead(200, {
        'content-type': asset.type,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        // Everything the page needs comes from this box: the softphone works with the WAN down.
        'content-security-policy': "default-src 'self'; connect-src 'self'; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
      });
      res.end(req.method === 'HEAD' ? undefined : content);
      return;
    }
    if (url.pathname === '/ca.crt') {
      const ca = this.deps.https?.certs.caPem();
      if (!ca) throw new CcedgeError('HTTP_NOT_FOUND', "this box has no site CA: it uses the installer's certificate, whose issuer the PCs already trust");
      res.writeHead(200, { 'content-type': 'application/x-x509-ca-cert', 'content-disposition': 'attachment; filename="site-ca.crt"', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : ca);
      return;
    }
    if (url.pathname === '/trust') {
      const ca = this.deps.https?.certs.caPem();
      const html = trustPage({
        agentUrl: this.httpsPort === undefined ? undefined : httpsLocation({ hostHeader: req.headers.host, localAddress: req.socket.localAddress, httpsPort: this.httpsPort, pathAndQuery: '/agent' }),
        caFingerprint256: ca ? new X509Certificate(ca).fingerprint256 : undefined,
      });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" });
      res.end(req.method === 'HEAD' ? undefined : html);
      return;
    }
    if (url.pathname === '/agent/tls.json') {
      // The agent page asks this when it is not a secure context, to show where the https:// page is.
      this.json(res, 200, {
        httpsUrl: this.httpsPort === undefined ? null : httpsLocation({ hostHeader: req.headers.host, localAddress: req.socket.localAddress, httpsPort: this.httpsPort, pathAndQuery: '/agent' }),
        trustUrl: '/trust',
      });
      return;
    }
    if (url.pathname === '/healthz') {
      this.json(res, 200, { status: 'ok', ...this.deps.health() });
      return;
    }
    if (url.pathname === '/metrics') {
      const text = await this.deps.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.deps.metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (url.pathname.startsWith('/api/v1/')) {
      const who = this.authenticate(req, res);
      if (!who) return;
      const audio = /^\/api\/v1\/recordings\/([0-9a-f-]{36})\/audio$/.exec(url.pathname);
      if (audio && this.deps.recordings) {
        await this.recordingAudio(req, res, url, audio[1], who, this.deps.recordings);
        return;
      }
      const transcript = /^\/api\/v1\/(?:recordings\/([0-9a-f-]{36})\/transcript|transcripts\/([A-Za-z0-9@._:-]{1,128}))$/.exec(url.pathname);
      if (transcript && this.deps.recordings?.transcript) {
        await this.transcriptRead(req, res, url, transcript[1] ?? transcript[2], who, this.deps.recordings);
        return;
      }
      await this.api(url, res, who);
      return;
    }
    this.json(res, 404, { error: { code: 'HTTP_NOT_FOUND', message: `no such path ${url.pathname}` } });
  }

  private async api(url: URL, res: ServerResponse, who: ApiIdentity): Promise<void> {
    if (url.pathname === '/api/v1/calls') {
      const limitText = url.searchParams.get('limit') ?? '100';
      const state = url.searchParams.get('state');
      if (!/^\d{1,5}$/.test(limitText) || Number(limitText) < 1) throw new CcedgeError('HTTP_BAD_REQUEST', 'limit must be a whole number from 1 to 10000');
      if (state !== null && !CALL_STATES.has(state as CallState)) throw new CcedgeError('HTTP_BAD_REQUEST', `state must be one of ${[...CALL_STATES].join(', ')}`);
      const calls = await this.deps.store.list({ limit: Number(limitText), state: (state as CallState | null) ?? undefined });
      this.json(res, 200, { calls });
      return;
    }
    if (url.pathname === '/api/v1/transcripts' && this.deps.recordings?.transcripts) {
      this.json(res, 200, { transcripts: await this.deps.recordings.transcripts() });
      return;
    }
    if (url.pathname === '/api/v1/recordings' && this.deps.recordings) {
      const r = this.deps.recordings;
      this.json(res, 200, { recordings: who.role === 'compliance' && r.listWithCallers ? await r.listWithCallers() : await r.list() });
      return;
    }
    if (url.pathname === '/api/v1/health' && this.deps.hw) {
      this.json(res, 200, this.deps.hw.health());
      return;
    }
    if (url.pathname === '/api/v1/trunks' && this.deps.hw) {
      this.json(res, 200, this.deps.hw.trunks());
      return;
    }
    if (url.pathname === '/api/v1/backup' && this.deps.backup) {
      this.json(res, 200, this.deps.backup.status());
      return;
    }
    if (url.pathname === '/api/v1/media/workers' && this.deps.mediaWorkers) {
      this.json(res, 200, { workers: this.deps.mediaWorkers.status() });
      return;
    }
    if (url.pathname === '/api/v1/sync' && this.deps.sync) {
      this.json(res, 200, await this.deps.sync.status());
      return;
    }
    if (url.pathname === '/api/v1/queues' && this.deps.kpi) {
      this.json(res, 200, { queues: this.deps.kpi.queues() });
      return;
    }
    if (url.pathname === '/api/v1/agents' && this.deps.agentStates) {
      this.json(res, 200, { agents: this.deps.agentStates() });
      return;
    }
    if (url.pathname === '/api/v1/supervisor-audit' && this.deps.supervisorAudit) {
      const limitText = url.searchParams.get('limit') ?? '100';
      if (!/^\d{1,4}$/.test(limitText) || Number(limitText) < 1) throw new CcedgeError('HTTP_BAD_REQUEST', 'limit must be a whole number from 1 to 9999');
      this.json(res, 200, { audit: await this.deps.supervisorAudit(Number(limitText)) });
      return;
    }
    if (url.pathname === '/api/v1/intents' && this.deps.kpi) {
      this.json(res, 200, { intents: this.deps.kpi.intents() });
      return;
    }
    const m = /^\/api\/v1\/calls\/([0-9a-f-]{36})$/.exec(url.pathname);
    if (m) {
      const call = await this.deps.store.get(m[1]);
      if (!call) throw new CcedgeError('HTTP_NOT_FOUND', `no call ${m[1]}`);
      // Wrap-up notes stay on site: here, with the record; the cloud gets them only if allowText says so.
      const notes = await this.deps.store.notes(m[1]);
      this.json(res, 200, { call: { ...call, notes: notes?.text ?? null, notesBy: notes?.agent ?? null, notesAt: notes?.updatedAt ?? null }, events: await this.deps.store.events(m[1]) });
      return;
    }
    throw new CcedgeError('HTTP_NOT_FOUND', `no such path ${url.pathname}`);
  }

  /**
   * /setup carries the claim code and answers with passwords: HTTPS only (plain HTTP from other
   * PCs was redirected already; loopback gets the https:// address), unless HTTPS is off.
   */
  private async setupPage(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<void> {
    const setup = this.deps.setup as NonNullable<HttpDeps['setup']>;
    if (!secure && this.httpsPort !== undefined) {
      const to = httpsLocation({ hostHeader: req.headers.host, localAddress: req.socket.localAddress, httpsPort: this.httpsPort, pathAndQuery: '/setup' });
      this.json(res, 403, { error: { code: 'HTTP_TLS_REQUIRED', message: `setup is served over HTTPS only: ${to}` } });
      return;
    }
    const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const body = req.method === 'POST' ? await readBody(req, this.limits.maxBodyBytes) : undefined;
    const wantsJson = contentType === 'application/json' || /application\/json/.test(req.headers.accept ?? '');
    const out = await setup.handle({ method: req.method ?? 'GET', contentType, body, remote: req.socket.remoteAddress ?? '', wantsJson });
    res.writeHead(out.status, out.headers);
    res.end(req.method === 'HEAD' ? undefined : out.body);
  }

  /**
   * The caller's identity from its bearer token, or undefined after answering 401/429. Wrong
   * tokens are counted per source address; past tokenFailures.maxFailures the address is refused
   * (429 + Retry-After) before its token is even compared, until the growing block ends.
   * A request without any Authorization header is not a guess and is not counted.
   */
  private authenticate(req: IncomingMessage, res: ServerResponse): ApiIdentity | undefined {
    const remote = req.socket.remoteAddress ?? '';
    const blocked = this.tokenGuard.blockedFor(remote);
    if (blocked > 0) {
      const retryAfterS = Math.max(1, Math.ceil(blocked / 1000));
      this.deps.metrics.httpAuthRefused.inc({ reason: 'throttled' });
      this.limitedLog.warn('token-throttled', { code: 'HTTP_AUTH_THROTTLED', remote }, 'API request refused: too many wrong tokens from this address');
      this.json(res, 429, { error: { code: 'HTTP_AUTH_THROTTLED', message: 'too many wrong tokens from this address; try again later', retryAfterS } }, { 'retry-after': String(retryAfterS) });
      return undefined;
    }
    const header = req.headers.authorization;
    const m = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
    const hit = m ? this.tokens.match(m[1]) : undefined;
    if (hit) {
      this.tokenGuard.succeed(remote);
      return { name: hit.name, role: hit.role };
    }
    if (header !== undefined) {
      this.tokenGuard.fail(remote);
      this.deps.metrics.httpAuthRefused.inc({ reason: 'invalid' });
      this.limitedLog.warn('token-invalid', { code: 'HTTP_UNAUTHORIZED', remote }, 'API request with a wrong token');
    }
    this.json(res, 401, { error: { code: 'HTTP_UNAUTHORIZED', message: 'a valid "Authorization: Bearer <token>" header is required' } }, { 'www-authenticate': 'Bearer' });
    return undefined;
  }

  /** Compliance only, audited, with a reason; HTTP range requests for seeking. */
  private async recordingAudio(req: IncomingMessage, res: ServerResponse, url: URL, id: string, who: ApiIdentity, recordings: RecordingsApi): Promise<void> {
    if (who.role !== 'compliance') {
      await recordings.denied(id, who.name, who.role);
      this.json(res, 403, { error: { code: 'HTTP_FORBIDDEN', message: 'recordings can be played by the compliance role only' } });
      return;
    }
    const reason = String(req.headers['x-ccedge-reason'] ?? url.searchParams.get('reason') ?? '').trim();
    if (!reason) throw new CcedgeError('HTTP_BAD_REQUEST', 'a reason is required (X-Ccedge-Reason header or ?reason=)');
    const out = await recordings.audio(id, who.name, reason, typeof req.headers.range === 'string' ? req.headers.range : undefined);
    res.writeHead(out.status, out.headers);
    if (req.method === 'HEAD' || out.status >= 300) {
      res.end();
      return;
    }
    out.stream.pipe(res);
    await new Promise<void>((resolve) => res.once('close', () => resolve()));
  }

  /**
   * GET /api/v1/recordings/:id/transcript, /api/v1/transcripts/:ref (transcript or call id): the
   * compliance role only, with a reason, audited; any other role gets 403 and an access-denied entry.
   */
  private async transcriptRead(req: IncomingMessage, res: ServerResponse, url: URL, ref: string, who: ApiIdentity, recordings: RecordingsApi): Promise<void> {
    if (who.role !== 'compliance') {
      await recordings.denied(ref, who.name, who.role);
      this.json(res, 403, { error: { code: 'HTTP_FORBIDDEN', message: 'transcripts can be read by the compliance role only' } });
      return;
    }
    const reason = String(req.headers['x-ccedge-reason'] ?? url.searchParams.get('reason') ?? '').trim();
    if (!reason || reason.length > 500) throw new CcedgeError('HTTP_BAD_REQUEST', 'a reason (1-500 characters) is required (X-Ccedge-Reason header or ?reason=)');
    const body = await recordings.transcript?.(ref, who.name, reason);
    this.json(res, 200, body, { 'cache-control': 'no-store' });
  }

  /** POST /api/v1/recordings/holds {callId, on, reason} (compliance); POST …/rotate-key {reason} (admin, compliance). */
  private async recordingAction(req: IncomingMessage, res: ServerResponse, pathname: string, who: ApiIdentity): Promise<void> {
    const r = this.deps.recordings;
    const allowed = pathname === '/api/v1/recordings/holds' ? ['compliance'] : pathname === '/api/v1/recordings/rotate-key' ? ['admin', 'compliance'] : null;
    if (!r || !allowed) throw new CcedgeError('HTTP_NOT_FOUND', `no such path ${pathname}`);
    if (!allowed.includes(who.role)) {
      this.json(res, 403, { error: { code: 'HTTP_FORBIDDEN', message: `only the ${allowed.join(' or ')} role may do this` } });
      return;
    }
    const body = await readJson(req, this.limits.maxBodyBytes);
    const b = (body !== null && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    const reason = typeof b.reason === 'string' ? b.reason.trim() : '';
    if (!reason || reason.length > 500) throw new CcedgeError('HTTP_BAD_REQUEST', 'a reason (1-500 characters) is required');
    if (pathname === '/api/v1/recordings/holds') {
      if (typeof b.callId !== 'string' || !/^[A-Za-z0-9@._:-]{1,128}$/.test(b.callId)) throw new CcedgeError('HTTP_BAD_REQUEST', 'callId must be a call id');
      if (b.on !== undefined && typeof b.on !== 'boolean') throw new CcedgeError('HTTP_BAD_REQUEST', 'on must be true or false');
      if (!r.setHold) throw new CcedgeError('HTTP_NOT_FOUND', 'legal holds are not available');
      this.json(res, 200, await r.setHold(b.callId, b.on !== false, who.name, reason));
      return;
    }
    if (!r.rotateKey) throw new CcedgeError('HTTP_NOT_FOUND', 'key rotation is not available');
    this.json(res, 200, await r.rotateKey(who.name, reason));
  }

  /**
   * POST /api/v1/calls/:id/transfer {target} (admin): the call's agent hands it on, blind. Answers
   * once the transfer is done (a number: answered, or referred by the PBX). 400 bad target, 404 no
   * such live call, 409 not with an agent / target unavailable / a transfer running.
   */
  private async transferCall(req: IncomingMessage, res: ServerResponse, callId: string, who: ApiIdentity, transfers: TransferApi): Promise<void> {
    if (who.role !== 'admin') {
      this.json(res, 403, { error: { code: 'HTTP_FORBIDDEN', message: 'only the admin role may transfer calls' } });
      return;
    }
    const body = await readJson(req, this.limits.maxBodyBytes);
    const target = body !== null && typeof body === 'object' ? (body as Record<string, unknown>).target : undefined;
    if (typeof target !== 'string' || target.trim() === '') throw new CcedgeError('HTTP_BAD_REQUEST', 'target is required: an extension or number, queue:<name> or agent:<name>');
    try {
      const done = await transfers.transfer(callId, target.trim());
      this.json(res, 200, { callId, target: target.trim(), ...done });
    } catch (err) {
      const status = (err as { httpStatus?: unknown }).httpStatus;
      if (!(err instanceof CcedgeError) || (status !== 400 && status !== 404 && status !== 409)) throw err;
      this.json(res, status, { error: { code: err.code, message: err.message } });
    }
  }

  /** POST /api/v1/backup {to?} (admin): runs a backup and answers when it is done. */
  private async backupNow(req: IncomingMessage, res: ServerResponse, who: ApiIdentity, backup: BackupApi): Promise<void> {
    if (who.role !== 'admin') {
      this.json(res, 403, { error: { code: 'HTTP_FORBIDDEN', message: 'only the admin role may run a backup' } });
      return;
    }
    const body = hasBody(req) ? await readJson(req, this.limits.maxBodyBytes) : {};
    const to = body !== null && typeof body === 'object' ? (body as Record<string, unknown>).to : undefined;
    if (to !== undefined && (typeof to !== 'string' || !path.isAbsolute(to) || to.length > 4096)) throw new CcedgeError('HTTP_BAD_REQUEST', 'to must be an absolute directory path');
    try {
      this.json(res, 200, await backup.run(to));
    } catch (err) {
      if (!(err instanceof CcedgeError) || !err.code.startsWith('BACKUP_')) throw err;
      this.json(res, err.code === 'BACKUP_BUSY' ? 409 : err.code === 'BACKUP_NOT_CONFIGURED' ? 400 : 500, { error: { code: err.code, message: err.message } });
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (err instanceof CcedgeError && err.code === 'HTTP_BODY_TOO_LARGE') {
      this.deps.metrics.httpBodyTooLarge.inc();
      this.limitedLog.warn('body-too-large', { code: err.code, remote: req.socket.remoteAddress, path: (req.url ?? '').slice(0, 100) }, 'request body too large');
      // Stop reading: nothing more of this body is wanted, and the socket goes once 413 is out.
      req.pause();
      if (res.headersSent) {
        req.socket.destroy();
        return;
      }
      res.once('finish', () => req.socket.destroy());
      this.json(res, 413, { error: { code: err.code, message: err.message } }, { connection: 'close' });
      return;
    }
    if (err instanceof CcedgeError && (err.code === 'HTTP_BAD_REQUEST' || err.code === 'HTTP_NOT_FOUND')) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.json(res, err.code === 'HTTP_NOT_FOUND' ? 404 : 400, { error: { code: err.code, message: err.message } });
      return;
    }
    this.log.error({ err }, 'HTTP request failed');
    if (!res.headersSent) this.json(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
    else res.destroy();
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(text);
  }
}

function tooLarge(limit: number): CcedgeError {
  return new CcedgeError('HTTP_BODY_TOO_LARGE', `request body larger than ${limit} bytes`);
}

function hasBody(req: IncomingMessage): boolean {
  return Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads a body of at most `limit` bytes. The count is checked on every chunk as it arrives:
 * past the limit reading stops at once (HTTP_BODY_TOO_LARGE → 413, connection closed), so an
 * oversized body costs at most `limit` plus one socket buffer, never its whole size.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(new CcedgeError('HTTP_BAD_REQUEST', `request body not received: ${e.message}`));
    };
    const onAborted = (): void => onError(new Error('aborted'));
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('aborted', onAborted);
  });
}

/** Reads a small JSON body; anything else is a 400 with a reason, over the limit a 413. */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new CcedgeError('HTTP_BAD_REQUEST', 'Content-Type must be application/json');
  const body = await readBody(req, limit);
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new CcedgeError('HTTP_BAD_REQUEST', 'body is not valid JSON');
  }
}
