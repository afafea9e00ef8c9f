import { randomBytes } from 'node:crypto';
import { sipSelfCheck } from './self-check';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import sip, { type Flow, type SipRequest, type Stack } from 'sip';
import type { Config, TrunkConfig } from '../config/schema';
import { compileAllowList } from '../config/schema';
import { CcedgeError } from '../errors';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import { advertisedAddress, normaliseAddress } from '../net/addresses';
import { FailureGuard } from '../net/failure-guard';
import { LogLimiter } from '../log-limiter';
import { DigestAuthenticator } from './digest-auth';
import { ALLOW_HEADER, SUPPORTED_HEADER, respond, newTag } from './messages';
import { recordRouteOf } from './route-set';
import { UacDialog } from './uac-dialog';
import { UasDialog } from './uas-dialog';
import { validateRequest } from './validate';
import { SourceGate } from './transport/source-gate';
import { createTransportFactory, type DropReason, type TlsServerSettings, type TransportName } from './transport/transport';
import type { SiteCertificates } from '../certs/site-certs';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';

export interface IncomingInvite {
  rq: SipRequest;
  flow: Flow;
  trunk: TrunkConfig;
  dialog: UasDialog;
  /** Address to put in our SDP for this peer. */
  peerAddress: string;
}

export interface RejectedInvite {
  rq: SipRequest;
  flow: Flow;
  trunk: TrunkConfig;
  status: number;
  reason: string;
}

export interface SipServerHandlers {
  onInvite(invite: IncomingInvite): void;
  onRejectedInvite(rejected: RejectedInvite): void;
}

interface Trunk {
  config: TrunkConfig;
  allow: ReturnType<typeof compileAllowList>;
  auth?: DigestAuthenticator;
  /** Wrong digest responses per source address (set with auth). */
  authGuard?: FailureGuard;
  active: number;
  /** trunks[].tls.requireClientCert: the CA bundle (PEM) and its certificates. */
  clientCa?: { pem: string; certs: X509Certificate[] };
}

const SHUTDOWN_BYE_WAIT_MS = 2000;

/**
 * The PBX-facing SIP endpoint: validation, trunk allow-lists, digest auth, capacity, and routing
 * of requests to dialogs. Calls themselves are the handlers' business.
 */
export class SipServer {
  private stack: Stack | undefined;
  private readonly trunks: Trunk[];
  private readonly dialogs = new Map<string, UasDialog | UacDialog>();
  private readonly pendingInvites = new Map<string, UasDialog>();
  private readonly log: Logger;
  /** Rejections and drops: the first few per kind and interval are logged, the rest summarised. */
  private readonly limitedLog: LogLimiter;
  private limitedLogTimer: NodeJS.Timeout | undefined;
  /** Digest failures and blocks: a guessing source must not cost one log line per guess. */
  private readonly authLog: LogLimiter;
  /** One line when a source is blocked; its refused INVITEs are only counted (and summarised). */
  private readonly blockLog: LogLimiter;

  constructor(
    private readonly config: Config,
    logger: Logger,
    private readonly metrics: Metrics,
    private readonly handlers: SipServerHandlers,
    /** The site certificate store; without one (or with sip.tls.enabled false) there is no TLS listener. */
    private readonly certs?: SiteCertificates,
  ) {
    this.log = logger.child({ component: 'sip' });
    this.trunks = config.trunks.map((t) => ({
      config: t,
      allow: compileAllowList(t.allow),
      auth: t.auth ? new DigestAuthenticator(t.auth) : undefined,
      authGuard: t.auth
        ? new FailureGuard({ maxFailures: t.auth.maxFailures, windowMs: t.auth.failureWindowS * 1000, blockMs: t.auth.blockS * 1000, maxBlockMs: t.auth.maxBlockS * 1000 })
        : undefined,
      active: 0,
    }));
    const { burst, intervalS } = config.sip.limits.log;
    this.limitedLog = new LogLimiter(this.log, { burst, intervalMs: intervalS * 1000 });
    this.authLog = new LogLimiter(this.log, { burst: 3, intervalMs: 60_000, maxKeys: 1000 });
    this.blockLog = new LogLimiter(this.log, { burst: 1, intervalMs: 60_000, maxKeys: 1000 });
  }

  /** Call-ID prefix of our own liveness probes: a per-process secret, so a peer cannot use it. */
  private readonly selfCheckId = `ccedge-selfcheck-${randomBytes(16).toString('hex')}`;

  /** Resolves when the listener answers an OPTIONS from this process (the watchdog's SIP check). */
  selfCheck(): Promise<void> {
    return sipSelfCheck({ host: this.config.sip.host, port: this.config.sip.port, udp: this.config.sip.udp, callIdPrefix: this.selfCheckId });
  }

  get activeDialogs(): number {
    return this.dialogs.size;
  }

  async start(): Promise<void> {
    const { host, port, udp, tcp } = this.config.sip;
    // sip.js binds without reporting errors (an unhandled 'error' would kill the daemon), so the
    // port is probed first to give a clear message.
    if (udp) await probeUdp(host, port);
    if (tcp) await probeTcp(host, port);
    const publicAddress = advertisedAddress({ publicAddress: this.config.sip.publicAddress, bound: host, peer: '' });
    const limits = this.config.sip.limits;
    const gate = new SourceGate(this.config.trunks, Buffer.from(this.selfCheckId, 'latin1'), host);
    const tls = this.tlsSettings();
    if (tls) await probeTcp(host, tls.port, 'TLS');
    this.stack = sip.create(
      {
        address: host,
        port,
        publicAddress,
        udp,
        tcp,
        makeTransport: createTransportFactory({
          gate,
          limits: {
            maxMessageBytes: limits.maxMessageBytes,
            maxConnections: limits.maxConnections,
            maxConnectionsPerSource: limits.maxConnectionsPerSource,
            messageTimeoutMs: limits.messageTimeoutS * 1000,
            idleTimeoutMs: limits.idleTimeoutS * 1000,
          },
          onDrop: (reason, transport, address) => this.onDrop(reason, transport, address),
          tls,
          flowInUse: (flow) => this.flowInUse(flow),
          onConnectionCount: (n) => this.metrics.sipTcpConnections.set(n),
          onError: (err, where) => this.limitedLog.warn(`transport-error:${where}`, { err, where }, 'SIP transport error'),
        }),
        logger: {
          error: (e) => this.log.error({ err: e }, 'sip stack error'),
          // sip.js swallows an ACK that reuses the INVITE's branch (RFC 2543 PBXs do this) inside
          // the INVITE transaction; every ACK is seen here first, so dialogs get them all.
          recv: (m) => {
            if ('method' in m && m.method === 'ACK') this.onAck(m);
          },
        },
      },
      (rq, flow) => this.onRequest(rq, flow),
    );
    // One timer writes the summaries of every limiter, so an attack that stopped is still reported.
    this.limitedLogTimer = setInterval(() => this.flushLimitedLogs(false), Math.min(10_000, limits.log.intervalS * 1000));
    this.limitedLogTimer.unref();
    this.log.info({ host, port, udp, tcp, tlsPort: tls?.port ?? null, publicAddress, limits }, 'SIP listening');
  }

  /**
   * sip.tls: on when enabled and the store has a certificate. Trunks that require client
   * certificates get a context with their CA (caFile, else the site CA) for their addresses.
   */
  private tlsSettings(): TlsServerSettings | undefined {
    const certs = this.certs;
    if (!this.config.sip.tls.enabled || !certs) return undefined;
    for (const t of this.trunks) {
      const cfg = t.config.tls;
      if (!cfg.requireClientCert) continue;
      const ca = cfg.caFile ? readFileSync(cfg.caFile, 'utf8') : certs.caPem();
      if (!ca) throw new CcedgeError('CONFIG_INVALID', `trunks.${t.config.name}.tls.requireClientCert needs tls.caFile with an installer certificate`);
      t.clientCa = { pem: ca, certs: pemCertificates(ca) };
    }
    return {
      port: this.config.sip.tls.port,
      contextFor: (address) => {
        const peer = normaliseAddress(address);
        const trunk = this.trunks.find((t) => t.allow.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4'));
        return trunk?.clientCa
          ? { secureContext: certs.getServerContext(trunk.clientCa.pem), requireClientCert: true, clientCa: trunk.clientCa.certs }
          : { secureContext: certs.getServerContext(), requireClientCert: false };
      },
    };
  }

  private flushLimitedLogs(force: boolean): void {
    this.limitedLog.flush(force);
    this.authLog.flush(force);
    this.blockLog.flush(force);
  }

  private onDrop(reason: DropReason, transport: TransportName, address: string): void {
    this.metrics.sipDropped.inc({ transport, reason });
    this.limitedLog.warn(
      `drop:${reason}`,
      { code: reason === 'forbidden' ? 'SIP_PEER_FORBIDDEN' : 'SIP_DROPPED', reason, transport, peer: normaliseAddress(address) },
      reason === 'forbidden' ? 'SIP from an address outside every trunk allow-list dropped before parsing' : `SIP ${transport.toUpperCase()} input dropped: ${reason}`,
    );
  }

  /** A TCP connection that a dialog's in-dialog requests go over must outlive idle periods. */
  private flowInUse(flow: Flow): boolean {
    for (const d of this.dialogs.values()) {
      if (d instanceof UasDialog && d.flow.address === flow.address && d.flow.port === flow.port && d.flow.protocol.toUpperCase() === flow.protocol.toUpperCase()) return true;
    }
    return false;
  }

  /**
   * An outbound call to `toUser` through `trunkName`'s outbound address (queued callbacks).
   * The dialog is registered so the callee's BYE finds it; call start(sdp) to send the INVITE.
   */
  createOutbound(trunkName: string, toUser: string): { dialog: UacDialog; localAddress: string; remote: string } {
    const stack = this.stack;
    const trunk = this.trunks.find((t) => t.config.name === trunkName)?.config;
    if (!stack || !trunk?.outbound) throw new CcedgeError('SIP_TRANSPORT_FAILED', `trunk ${trunkName} cannot place outbound calls`);
    const target = trunk.outbound;
    const localAddress = advertisedAddress({ publicAddress: this.config.sip.publicAddress, bound: this.config.sip.host, peer: target.host });
    const dialog = new UacDialog(stack, target, { fromUser: this.config.callbacks.fromUser, toUser, localAddress, localPort: this.config.sip.port, userAgent: this.config.sip.userAgent });
    const key = dialogKeyOf(dialog.callId, dialog.localTag);
    this.dialogs.set(key, dialog);
    dialog.on('terminated', () => this.dialogs.delete(key));
    return { dialog, localAddress, remote: `${target.host}:${target.port}` };
  }

  /** Ends every dialog with BYE (or 480 if unanswered), waits briefly for answers, closes sockets. */
  async close(): Promise<void> {
    const byes = [...this.dialogs.values()].map((d) => (d instanceof UasDialog ? d.bye('shutdown') : (d.hangup('shutdown'), Promise.resolve(0))));
    await Promise.race([Promise.allSettled(byes), new Promise((r) => setTimeout(r, SHUTDOWN_BYE_WAIT_MS))]);
    // A 480 sent just now is still in dgram's address lookup (a nextTick, which runs only after the
    // microtasks that brought us here): closing the socket in the same tick would drop it unsent.
    await new Promise((r) => setImmediate(r));
    this.stack?.destroy();
    this.stack = undefined;
    if (this.limitedLogTimer) clearInterval(this.limitedLogTimer);
    this.flushLimitedLogs(true);
  }

  private onRequest(rq: SipRequest, flow: Flow): void {
    const stack = this.stack;
    if (!stack) return;
    this.metrics.sipRequests.inc({ method: KNOWN_LABEL.has(rq.method) ? rq.method : 'other' });
    const peer = normaliseAddress(flow.address);
    try {
      if (rq.method === 'ACK') return; // handled in onAck, before transaction matching
      const rejection = validateRequest(rq);
      if (rejection) {
        this.reject(rq, rejection.status, rejection.reason, 'SIP_BAD_REQUEST', { peer, detail: rejection.detail }, rejection.headers);
        return;
      }
      if (rq.method === 'OPTIONS' && String(rq.headers['call-id']).startsWith(this.selfCheckId)) {
        // Our own watchdog probe (its Call-ID carries this process's secret): no allow-list, no log.
        stack.send(respond(rq, 200, 'OK', { toTag: newTag(), headers: { 'user-agent': this.config.sip.userAgent } }));
        return;
      }
      const trunk = this.trunks.find((t) => t.allow.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4'));
      if (!trunk) {
        this.reject(rq, 403, 'Forbidden', 'SIP_PEER_FORBIDDEN', { peer, method: rq.method });
        return;
      }
      if (rq.method === 'CANCEL') {
        const pending = this.pendingInvites.get(pendingKey(rq));
        if (pending) pending.onCancel(rq);
        else this.reject(rq, 481, 'Call/Transaction Does Not Exist', 'SIP_NO_DIALOG', { peer, method: rq.method });
        return;
      }
      if (rq.headers.to.params.tag) {
        const dialog = this.findDialog(rq);
        if (dialog) dialog.onRequest(rq);
        else this.reject(rq, 481, 'Call/Transaction Does Not Exist', 'SIP_NO_DIALOG', { peer, method: rq.method });
        return;
      }
      switch (rq.method) {
        case 'OPTIONS':
          stack.send(
            respond(rq, 200, 'OK', {
              toTag: newTag(),
              headers: { allow: ALLOW_HEADER, supported: SUPPORTED_HEADER, accept: 'application/sdp', 'user-agent': this.config.sip.userAgent },
            }),
          );
          return;
        case 'INVITE':
          this.onInvite(stack, rq, flow, peer, trunk);
          return;
        default:
          this.reject(rq, 481, 'Call/Transaction Does Not Exist', 'SIP_NO_DIALOG', { peer, method: rq.method });
      }
    } catch (e) {
      this.log.error({ err: e, peer, method: rq.method }, 'SIP request handling failed');
      try {
        stack.send(respond(rq, 500, 'Server Internal Error'));
      } catch {
        // The request itself may be what broke the response builder; nothing more to send.
      }
    }
  }

  private onInvite(stack: Stack, rq: SipRequest, flow: Flow, peer: string, trunk: Trunk): void {
    // The route set is echoed in every in-dialog request: one we could not send back is refused now.
    const routes = recordRouteOf(rq.headers);
    if (!routes.ok) {
      this.reject(rq, 400, 'Bad Record-Route', 'SIP_BAD_REQUEST', { peer, detail: routes.detail });
      return;
    }
    if (trunk.auth && trunk.authGuard) {
      const name = trunk.config.name;
      const guard = trunk.authGuard;
      const blockedMs = guard.blockedFor(peer);
      if (blockedMs > 0) {
        // No digest is computed for a blocked source: refusing costs a map lookup.
        this.metrics.digestBlocked.inc({ trunk: name });
        this.metrics.sipRejections.inc({ status: '403', code: 'SIP_AUTH_BLOCKED' });
        this.blockLog.warn(`block:${peer}`, { code: 'SIP_AUTH_BLOCKED', peer, trunk: name, retryAfterS: Math.ceil(blockedMs / 1000) }, 'INVITE from a blocked source refused: 403');
        stack.send(respond(rq, 403, 'Forbidden - Too Many Failed Authentications', { toTag: newTag(), headers: { 'retry-after': String(Math.ceil(blockedMs / 1000)), 'user-agent': this.config.sip.userAgent } }));
        return;
      }
      // Counted before the digest is computed (FailureGuard's rule), refunded when it was no guess.
      const counted = trunk.auth.hasCredentials(rq);
      const block = counted ? guard.fail(peer) : 0;
      const verdict = trunk.auth.verify(rq);
      if (verdict === 'ok') {
        guard.succeed(peer);
      } else {
        if (counted && verdict !== 'bad') guard.refund(peer);
        if (verdict === 'bad' || verdict === 'replay') {
          this.metrics.digestFailures.inc({ trunk: name, reason: verdict });
          this.authLog.warn(`failed:${peer}`, { code: verdict === 'bad' ? 'SIP_AUTH_FAILED' : 'SIP_AUTH_REPLAY', peer, trunk: name }, verdict === 'bad' ? 'digest authentication failed' : 'digest nonce count reused: challenged again');
        }
        if (verdict === 'bad' && block > 0) {
          this.metrics.digestBlocks.inc({ trunk: name });
          this.blockLog.warn(`block:${peer}`, { code: 'SIP_AUTH_BLOCKED', peer, trunk: name, blockS: Math.ceil(block / 1000) }, 'too many failed digest authentications: source blocked');
        }
        this.metrics.sipRejections.inc({ status: '401', code: verdict === 'bad' ? 'SIP_AUTH_FAILED' : verdict === 'replay' ? 'SIP_AUTH_REPLAY' : 'challenge' });
        stack.send(respond(rq, 401, 'Unauthorized', { toTag: newTag(), headers: { 'www-authenticate': [trunk.auth.challenge(verdict === 'stale')] } }));
        return;
      }
    }
    const overGlobal = this.dialogs.size + this.pendingInvites.size >= this.config.sip.maxCalls;
    const overTrunk = trunk.config.maxCalls !== undefined && trunk.active >= trunk.config.maxCalls;
    if (overGlobal || overTrunk) {
      this.reject(rq, 503, 'Service Unavailable', 'SIP_CAPACITY', { peer, trunk: trunk.config.name, limit: overGlobal ? 'sip.maxCalls' : 'trunk.maxCalls' }, {
        'retry-after': String(this.config.sip.retryAfterS),
      });
      this.handlers.onRejectedInvite({ rq, flow, trunk: trunk.config, status: 503, reason: 'capacity' });
      return;
    }

    const contactHost = advertisedAddress({ publicAddress: this.config.sip.publicAddress, bound: this.config.sip.host, peer });
    const protocol = flow.protocol.toUpperCase();
    // RFC 3261 §12.1.1: a sips Request-URI needs a sips Contact; plain sip over TLS names the transport.
    const contact =
      protocol === 'TLS'
        ? /^sips:/i.test(rq.uri)
          ? `sips:ccedge@${contactHost}:${this.config.sip.tls.port}`
          : `sip:ccedge@${contactHost}:${this.config.sip.tls.port};transport=tls`
        : `sip:ccedge@${contactHost}:${this.config.sip.port}${protocol === 'TCP' ? ';transport=tcp' : ''}`;
    const dialog = new UasDialog(stack, rq, flow, contact, this.config.sip.userAgent, { minSessionExpiresS: this.config.sip.minSessionExpiresS, sessionExpiresS: this.config.sip.sessionExpiresS });
    const dialogKey = dialogKeyOf(dialog.callId, dialog.localTag);
    const invKey = pendingKey(rq);
    this.dialogs.set(dialogKey, dialog);
    this.pendingInvites.set(invKey, dialog);
    trunk.active++;
    const forgetPending = (): void => {
      this.pendingInvites.delete(invKey);
    };
    dialog.on('confirmed', forgetPending);
    dialog.on('notifyRejected', (status, detail) => {
      this.metrics.sipRejections.inc({ status: String(status), code: 'SIP_BAD_NOTIFY' });
      this.limitedLog.warn('SIP_BAD_NOTIFY', { code: 'SIP_BAD_NOTIFY', status, detail, peer, sipCallId: dialog.callId.slice(0, 128) }, `in-dialog NOTIFY answered ${status}`);
    });
    dialog.on('terminated', () => {
      forgetPending();
      this.dialogs.delete(dialogKey);
      trunk.active--;
    });
    dialog.provisional(100, 'Trying');
    this.handlers.onInvite({ rq, flow, trunk: trunk.config, dialog, peerAddress: peer });
  }

  private onAck(ack: SipRequest): void {
    try {
      this.findDialog(ack)?.onRequest(ack);
    } catch (e) {
      this.log.error({ err: e }, 'ACK handling failed');
    }
  }

  private findDialog(rq: SipRequest): UasDialog | UacDialog | undefined {
    const tag = rq.headers.to.params.tag;
    return tag ? this.dialogs.get(dialogKeyOf(rq.headers['call-id'], String(tag))) : undefined;
  }

  private reject(
    rq: SipRequest,
    status: number,
    reason: string,
    code: string,
    context: Record<string, unknown>,
    headers: Record<string, unknown> = {},
  ): void {
    this.metrics.sipRejections.inc({ status: String(status), code });
    // Keyed by code, not by peer: an attacker rotating sources must not get a line each.
    this.limitedLog.warn(code, { code, status, ...context, sipCallId: String(rq.headers['call-id']).slice(0, 128) }, `SIP ${rq.method.slice(0, 32)} rejected: ${status} ${reason}`);
    this.stack?.send(respond(rq, status, reason, { toTag: newTag(), headers: { ...headers, 'user-agent': this.config.sip.userAgent } }));
  }
}

const KNOWN_LABEL = new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'INFO', 'REGISTER', 'UPDATE', 'PRACK', 'REFER', 'MESSAGE', 'SUBSCRIBE', 'NOTIFY']);

function dialogKeyOf(callId: string, localTag: string): string {
  return `${callId}\n${localTag}`;
}

function pendingKey(rq: SipRequest): string {
  return `${rq.headers['call-id']}\n${String(rq.headers.via[0]?.params.branch ?? '')}`;
}

function probeUdp(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', (e) => {
      s.close();
      reject(new CcedgeError('SIP_TRANSPORT_FAILED', `cannot bind SIP UDP ${host}:${port}: ${e.message}`));
    });
    s.bind(port, host, () => s.close(() => resolve()));
  });
}

function probeTcp(host: string, port: number, what = 'TCP'): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (e) => reject(new CcedgeError('SIP_TRANSPORT_FAILED', `cannot listen on SIP ${what} ${host}:${port}: ${e.message}`)));
    s.listen(port, host, () => s.close(() => resolve()));
  });
}

/** Every certificate of a PEM bundle (X509Certificate reads only the first block of a string). */
function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new CcedgeError('CONFIG_INVALID', 'a trunk client CA file holds no PEM certificate');
  return blocks.map((b) => new X509Certificate(b));
}
