import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect as tcpConnect, createServer, isIPv6, type Server, type Socket } from 'node:net';
import type { X509Certificate } from 'node:crypto';
import { TLSSocket, type SecureContext } from 'node:tls';
import sip, { type Connection, type Flow, type SipMessage, type StackOptions, type Transport, type TransportTarget } from 'sip';
import { datagramStart, StreamFramer } from './framing';
import type { SourceGate } from './source-gate';

export type DropReason =
  | 'forbidden' | 'too-large' | 'malformed' | 'conn-limit' | 'source-conn-limit' | 'message-timeout' | 'idle-timeout'
  | 'tls-handshake' | 'tls-client-cert';
export type StreamProtocol = 'TCP' | 'TLS';
export type TransportName = 'udp' | 'tcp' | 'tls';

/** What the TLS listener needs per accepted connection (after the gate admitted its source). */
export interface TlsServerSettings {
  port: number;
  /**
   * The context for a connection from `address` (the site certificate; with the trunk's client CA
   * when it requires client certificates). Asked per connection, so a reloaded certificate applies
   * to the next handshake.
   */
  contextFor(address: string): { secureContext: SecureContext; requireClientCert: boolean; clientCa?: readonly X509Certificate[] };
}

export interface TransportLimits {
  /** A UDP datagram, or one message on a stream (headers and body). */
  maxMessageBytes: number;
  /** All SIP TCP connections at once, inbound and outbound. */
  maxConnections: number;
  /** Inbound connections from one address. */
  maxConnectionsPerSource: number;
  /** A message started on a stream (or a new connection's first) must be complete within this. */
  messageTimeoutMs: number;
  /** A connection with no traffic this long is closed unless a dialog still uses it. */
  idleTimeoutMs: number;
}

export interface TransportHooks {
  gate: SourceGate;
  limits: TransportLimits;
  /** Counted and (rate-limited) logged by the owner; never one log line per packet here. */
  onDrop(reason: DropReason, transport: TransportName, address: string): void;
  /** SIP over TLS: a second stream listener on its own port; unset: no TLS. */
  tls?: TlsServerSettings;
  /** A connection carries a live dialog: it is exempt from the idle timeout. */
  flowInUse(flow: Flow): boolean;
  onConnectionCount?(open: number): void;
  /** Socket-level errors (bind failures, EMFILE on accept) for the log. */
  onError(err: Error, where: string): void;
}

interface StreamEntry {
  protocol: StreamProtocol;
  socket: Socket;
  remote: Flow;
  refs: number;
  lastActivity: number;
  messageStartedAt: number;
  /** We closed it for a counted reason (timeout, framing): its close is no further drop. */
  dropped?: boolean;
}

/**
 * The client certificate is valid now and issued (and signed) directly by one of `cas`: a PBX's
 * certificate comes from the site CA or the CA file the installer configured for its trunk.
 */
function clientCertValid(socket: TLSSocket, cas: readonly X509Certificate[]): boolean {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return false;
  const now = Date.now();
  if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now) return false;
  return cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
}

/**
 * sip.js transports rebuilt around the checks an appliance needs before parsing: the source gate,
 * a size cap, linear framing, connection caps and timeouts. The stack gets this through the
 * `makeTransport` option (patches/sip+0.0.6.patch); transactions and dialogs are unchanged.
 *
 * Contract with sip.js's transaction layer: open/get return a Connection whose send() stringifies
 * and writes, with the top Via rewritten for requests; release() drops the transaction's reference.
 */
export function createTransportFactory(hooks: TransportHooks): NonNullable<StackOptions['makeTransport']> {
  return (options, onMessage) => new SipTransport(options, onMessage, hooks);
}

class SipTransport implements Transport {
  private readonly udp: UdpSocket | undefined;
  private readonly tcpServer: Server | undefined;
  /**
   * The TLS listener is a plain TCP server: the gate and the caps run at accept, and only an
   * admitted connection is wrapped in a TLSSocket, so an outsider never gets a handshake (the
   * costliest thing it could make us do before the parser).
   */
  private readonly tlsServer: Server | undefined;
  /** Stream connections by `protocol,address,port` of the remote end. */
  private readonly streams = new Map<string, StreamEntry>();
  private readonly perSource = new Map<string, number>();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly address: string;
  private readonly port: number;
  private destroyed = false;

  constructor(
    private readonly options: StackOptions,
    private readonly onMessage: (m: SipMessage, remote: Flow) => void,
    private readonly hooks: TransportHooks,
  ) {
    this.address = options.address ?? '0.0.0.0';
    this.port = options.port ?? 5060;
    if (options.udp !== false) {
      this.udp = createSocket(isIPv6(this.address) ? 'udp6' : 'udp4', (data, rinfo) => this.onDatagram(data, rinfo));
      this.udp.on('error', (err) => hooks.onError(err, 'udp'));
      this.udp.bind(this.port, this.address);
    }
    if (options.tcp !== false) {
      this.tcpServer = createServer((socket) => this.onAccept(socket));
      this.tcpServer.on('error', (err) => hooks.onError(err, 'tcp'));
      this.tcpServer.listen(this.port, this.address);
    }
    const tls = hooks.tls;
    if (tls) {
      this.tlsServer = createServer((socket) => this.onAccept(socket, tls));
      this.tlsServer.on('error', (err) => hooks.onError(err, 'tls'));
      this.tlsServer.listen(tls.port, this.address);
    }
    const sweepEvery = Math.max(200, Math.min(hooks.limits.messageTimeoutMs, hooks.limits.idleTimeoutMs) / 4);
    this.sweepTimer = setInterval(() => this.sweep(), sweepEvery);
    this.sweepTimer.unref();
  }

  open(target: TransportTarget, onError?: (e: Error) => void): Connection {
    const protocol = target.protocol.toUpperCase();
    if (protocol === 'UDP') return this.wrap(this.udpConnection(target));
    if (protocol === 'TLS') {
      // Responses and in-dialog requests go back over the connection the peer opened; dialling
      // out over TLS (verifying the PBX's certificate) is not offered yet.
      const existing = this.streams.get(remoteKey('TLS', target.address, target.port));
      if (existing) return this.wrap(this.streamConnection(existing, onError));
      throw new Error(`no SIP TLS connection to ${target.address}:${target.port}`);
    }
    if (protocol !== 'TCP') throw new Error(`SIP transport ${protocol} is not enabled`);
    const existing = this.streams.get(remoteKey('TCP', target.address, target.port));
    if (existing) return this.wrap(this.streamConnection(existing, onError));
    if (this.streams.size >= this.hooks.limits.maxConnections) {
      this.hooks.onDrop('conn-limit', 'tcp', target.address);
      throw new Error('SIP TCP connection limit reached');
    }
    const socket = tcpConnect(target.port, target.address);
    const entry = this.track('TCP', socket, { protocol: 'TCP', address: target.address, port: target.port, local: { address: '', port: 0 } }, false);
    socket.once('connect', () => {
      entry.remote.local = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    });
    return this.wrap(this.streamConnection(entry, onError));
  }

  get(target: TransportTarget, onError?: (e: Error) => void): Connection | undefined {
    const protocol = target.protocol.toUpperCase();
    if (protocol === 'UDP') return this.udp ? this.wrap(this.udpConnection(target)) : undefined;
    if (protocol !== 'TCP' && protocol !== 'TLS') return undefined;
    const entry = this.streams.get(remoteKey(protocol, target.address, target.port));
    return entry ? this.wrap(this.streamConnection(entry, onError)) : undefined;
  }

  send(target: TransportTarget, m: SipMessage): void {
    const cn = this.open(target);
    try {
      cn.send(m);
    } finally {
      cn.release();
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    clearInterval(this.sweepTimer);
    try {
      this.udp?.close();
    } catch {
      // Already closed after a bind error.
    }
    this.tcpServer?.close();
    this.tlsServer?.close();
    for (const e of this.streams.values()) e.socket.destroy();
    this.streams.clear();
  }

  private onDatagram(data: Buffer, rinfo: RemoteInfo): void {
    // Order matters: the cheapest checks first, nothing parsed before the gate.
    if (data.length > this.hooks.limits.maxMessageBytes) {
      this.hooks.onDrop('too-large', 'udp', rinfo.address);
      return;
    }
    if (this.hooks.gate.checkDatagram(rinfo.address, data) === 'forbidden') {
      this.hooks.onDrop('forbidden', 'udp', rinfo.address);
      return;
    }
    const start = datagramStart(data);
    if (start < 0) {
      // A lone CRLF keepalive is no error; anything else without a blank line is.
      if (data.length > 4 || data.toString('latin1').trim() !== '') this.hooks.onDrop('malformed', 'udp', rinfo.address);
      return;
    }
    const m = sip.parse(data.toString('latin1', start));
    if (!m || !isWellFormed(m)) {
      this.hooks.onDrop('malformed', 'udp', rinfo.address);
      return;
    }
    if ('method' in m) {
      const via = m.headers.via[0];
      via.params.received = rinfo.address;
      if (Object.prototype.hasOwnProperty.call(via.params, 'rport')) via.params.rport = rinfo.port;
    }
    this.deliver(m, { protocol: 'UDP', address: rinfo.address, port: rinfo.port, local: { address: this.address, port: this.port } });
  }

  /**
   * One accept path for TCP and TLS: gate, global and per-source caps on the raw connection;
   * `tls` set: only then is the socket wrapped and the handshake started. The handshake runs under
   * the message timeout (a new connection's first message must be complete within it).
   */
  private onAccept(raw: Socket, tls?: TlsServerSettings): void {
    const name: TransportName = tls ? 'tls' : 'tcp';
    const address = raw.remoteAddress ?? '';
    const port = raw.remotePort ?? 0;
    if (!address || this.hooks.gate.checkConnection(address) === 'forbidden') {
      this.hooks.onDrop('forbidden', name, address);
      raw.destroy();
      return;
    }
    if (this.streams.size >= this.hooks.limits.maxConnections) {
      this.hooks.onDrop('conn-limit', name, address);
      raw.destroy();
      return;
    }
    if ((this.perSource.get(address) ?? 0) >= this.hooks.limits.maxConnectionsPerSource) {
      this.hooks.onDrop('source-conn-limit', name, address);
      raw.destroy();
      return;
    }
    const local = { address: raw.localAddress ?? '', port: raw.localPort ?? 0 };
    if (!tls) {
      this.track('TCP', raw, { protocol: 'TCP', address, port, local }, true);
      return;
    }
    raw.setNoDelay(true);
    let settings: ReturnType<TlsServerSettings['contextFor']>;
    try {
      settings = tls.contextFor(address);
    } catch (e) {
      this.hooks.onError(e as Error, 'tls context');
      raw.destroy();
      return;
    }
    const socket = new TLSSocket(raw, {
      isServer: true,
      secureContext: settings.secureContext,
      requestCert: settings.requireClientCert,
      rejectUnauthorized: settings.requireClientCert,
    });
    let secure = false;
    socket.on('error', () => {
      // Handshake failures end in 'close' below; later errors are routine resets.
    });
    const entry = this.track('TLS', socket, { protocol: 'TLS', address, port, local }, true);
    socket.once('secure', () => {
      secure = true;
      // A TLSSocket outside a tls.Server does not judge the client certificate itself.
      if (settings.requireClientCert && !clientCertValid(socket, settings.clientCa ?? [])) {
        entry.dropped = true;
        this.hooks.onDrop('tls-client-cert', 'tls', address);
        socket.destroy();
      }
    });
    socket.once('close', () => {
      // A handshake that never completed (a client that does not trust the site CA, a missing
      // client certificate, a peer that gave up): counted once, unless a cap or timeout already was.
      if (!secure && !entry.dropped) this.hooks.onDrop(settings.requireClientCert ? 'tls-client-cert' : 'tls-handshake', 'tls', address);
    });
  }

  private track(protocol: StreamProtocol, socket: Socket, remote: Flow, inbound: boolean): StreamEntry {
    const key = remoteKey(protocol, remote.address, remote.port);
    const now = Date.now();
    const entry: StreamEntry = { protocol, socket, remote, refs: 0, lastActivity: now, messageStartedAt: inbound ? now : 0 };
    this.streams.set(key, entry);
    if (inbound) this.perSource.set(remote.address, (this.perSource.get(remote.address) ?? 0) + 1);
    this.hooks.onConnectionCount?.(this.streams.size);
    const framer = new StreamFramer({ maxMessageBytes: this.hooks.limits.maxMessageBytes });
    socket.setEncoding('latin1');
    if (protocol === 'TCP') socket.setNoDelay(true);
    const name: TransportName = protocol === 'TLS' ? 'tls' : 'tcp';
    let framingLost = false;
    socket.on('data', (chunk: string) => {
      if (framingLost) return;
      entry.lastActivity = Date.now();
      framer.push(chunk);
      for (;;) {
        const r = framer.next();
        if (r.kind === 'message') {
          entry.messageStartedAt = 0;
          this.onStreamMessage(r.text, entry);
          if (r.final) {
            framingLost = true;
            socket.end();
            return;
          }
          if (socket.destroyed) return;
          continue;
        }
        if (r.kind === 'keepalive') {
          socket.write('\r\n'); // RFC 5626 §4.4.1 pong
          continue;
        }
        if (r.kind === 'error') {
          entry.dropped = true;
          this.hooks.onDrop(r.reason, name, remote.address);
          socket.destroy();
          return;
        }
        if (r.started && entry.messageStartedAt === 0) entry.messageStartedAt = Date.now();
        return;
      }
    });
    socket.on('error', () => {
      // Reported to the transactions through their onError listeners; a reset peer is routine.
    });
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      if (this.streams.get(key) === entry) this.streams.delete(key);
      if (inbound) {
        const n = (this.perSource.get(remote.address) ?? 1) - 1;
        if (n > 0) this.perSource.set(remote.address, n);
        else this.perSource.delete(remote.address);
      }
      this.hooks.onConnectionCount?.(this.streams.size);
    });
    return entry;
  }

  private onStreamMessage(text: string, entry: StreamEntry): void {
    const m = sip.parse(text);
    if (!m || !isWellFormed(m)) {
      // A stream that yields garbage has lost framing: nothing after it can be trusted.
      entry.dropped = true;
      this.hooks.onDrop('malformed', entry.protocol === 'TLS' ? 'tls' : 'tcp', entry.remote.address);
      entry.socket.destroy();
      return;
    }
    if ('method' in m) m.headers.via[0].params.received = entry.remote.address;
    this.deliver(m, { protocol: entry.protocol, address: entry.remote.address, port: entry.remote.port, local: entry.remote.local });
  }

  private deliver(m: SipMessage, remote: Flow): void {
    this.options.logger?.recv?.(m, remote);
    this.onMessage(m, remote);
  }

  private sweep(): void {
    const now = Date.now();
    const { messageTimeoutMs, idleTimeoutMs } = this.hooks.limits;
    for (const e of this.streams.values()) {
      if (e.messageStartedAt !== 0 && now - e.messageStartedAt > messageTimeoutMs) {
        e.dropped = true;
        this.hooks.onDrop('message-timeout', e.protocol === 'TLS' ? 'tls' : 'tcp', e.remote.address);
        e.socket.destroy();
      } else if (now - e.lastActivity > idleTimeoutMs && e.refs === 0 && !this.hooks.flowInUse(e.remote)) {
        e.dropped = true;
        this.hooks.onDrop('idle-timeout', e.protocol === 'TLS' ? 'tls' : 'tcp', e.remote.address);
        e.socket.destroy();
      }
    }
  }

  private udpConnection(target: TransportTarget): Connection {
    const socket = this.udp;
    if (!socket) throw new Error('SIP UDP is not enabled');
    const onError = this.hooks.onError;
    return {
      protocol: 'UDP',
      send(m: SipMessage): void {
        const buf = Buffer.from(sip.stringify(m), 'latin1');
        socket.send(buf, target.port, target.address, (err) => {
          if (err) onError(err, 'udp send');
        });
      },
      release(): void {},
    };
  }

  private streamConnection(entry: StreamEntry, onError?: (e: Error) => void): Connection {
    entry.refs++;
    if (onError) entry.socket.on('error', onError);
    let released = false;
    return {
      protocol: entry.protocol,
      send(m: SipMessage): void {
        entry.lastActivity = Date.now();
        entry.socket.write(sip.stringify(m), 'latin1');
      },
      release(): void {
        if (released) return;
        released = true;
        if (onError) entry.socket.removeListener('error', onError);
        entry.refs--;
      },
    };
  }

  /** Requests leave with our Via (sip.js's wrap): host, port, transport and rport for UDP. */
  private wrap(cn: Connection): Connection {
    const o = this.options;
    return {
      protocol: cn.protocol,
      release: () => cn.release(),
      send: (m: SipMessage): void => {
        if ('method' in m) {
          const via = m.headers.via[0];
          via.host = o.publicAddress ?? o.address ?? o.hostname ?? '127.0.0.1';
          via.port = cn.protocol === 'TLS' && this.hooks.tls ? this.hooks.tls.port : o.port ?? 5060;
          via.protocol = cn.protocol;
          if (cn.protocol === 'UDP' && o.rport !== false) via.params.rport = null;
        }
        o.logger?.send?.(m, undefined);
        cn.send(m);
      },
    };
  }
}

function remoteKey(protocol: StreamProtocol, address: string, port: number): string {
  return `${protocol},${address},${port}`;
}

/** sip.js's checkMessage: what the transaction layer needs to exist. */
function isWellFormed(m: SipMessage): boolean {
  const h = m.headers;
  const startOk = 'method' in m ? Boolean(m.method) : m.status >= 100 && m.status <= 999;
  return startOk && Array.isArray(h.via) && h.via.length > 0 && Boolean(h['call-id']) && Boolean(h.to) && Boolean(h.from) && Boolean(h.cseq);
}
