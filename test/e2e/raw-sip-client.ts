import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';

/**
 * A bare SIP/UDP client for hostile-input tests: it sends hand-written INVITEs and OPTIONS
 * (wrong digest responses by the hundred, replays, odd SDP) and matches responses by Call-ID,
 * ignoring provisional ones. sip.js would retransmit and build dialogs; here every byte is ours.
 */
export class RawSipClient {
  private readonly waiters = new Map<string, (r: RawResponse) => void>();
  /** Via/From/request line of pending INVITEs, to ACK their non-2xx final response. */
  private readonly invites = new Map<string, { uri: string; via: string; from: string }>();
  private constructor(
    private readonly sock: Socket,
    readonly localIp: string,
    readonly localPort: number,
    private readonly target: { host: string; port: number },
  ) {
    sock.on('message', (m) => this.onMessage(m.toString('latin1')));
  }

  static async open(localIp: string, target: { host: string; port: number }): Promise<RawSipClient> {
    const s = createSocket('udp4');
    s.bind(0, localIp);
    await once(s, 'listening');
    return new RawSipClient(s, localIp, s.address().port, target);
  }

  close(): void {
    this.sock.close();
  }

  /** Sends one request and resolves with its final response (or status 0 after `timeoutMs`). */
  request(method: 'INVITE' | 'OPTIONS', opts: { authorization?: string; sdp?: string; user?: string; timeoutMs?: number } = {}): Promise<RawResponse> {
    const callId = `${randomBytes(8).toString('hex')}@raw`;
    const user = opts.user ?? 'support';
    const uri = `sip:${user}@${this.target.host}:${this.target.port}`;
    const body = method === 'INVITE' ? (opts.sdp ?? sdpOffer(this.localIp, 40_000)) : '';
    const lines = [
      `${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${this.localIp}:${this.localPort};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70',
      `From: <sip:5550100@${this.localIp}>;tag=${randomBytes(4).toString('hex')}`,
      `To: <${uri}>`,
      `Call-ID: ${callId}`,
      `CSeq: 1 ${method}`,
      `Contact: <sip:raw@${this.localIp}:${this.localPort}>`,
      ...(opts.authorization ? [`Authorization: ${opts.authorization}`] : []),
      ...(body ? ['Content-Type: application/sdp'] : []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    const text = lines.join('\r\n');
    if (method === 'INVITE') this.invites.set(callId, { uri, via: lines[1], from: lines[3] });
    return new Promise((resolve) => {
      const started = process.hrtime.bigint();
      const timer = setTimeout(() => {
        this.waiters.delete(callId);
        resolve({ status: 0, reason: 'timeout', headers: '', body: '', ms: Number(process.hrtime.bigint() - started) / 1e6, uri });
      }, opts.timeoutMs ?? 3000);
      this.waiters.set(callId, (r) => {
        clearTimeout(timer);
        resolve({ ...r, ms: Number(process.hrtime.bigint() - started) / 1e6, uri });
      });
      this.sock.send(text, this.target.port, this.target.host);
    });
  }

  /** ACKs a non-2xx final response so the server stops retransmitting it (RFC 3261 §17.1.1.3). */
  private onMessage(text: string): void {
    const m = /^SIP\/2\.0 (\d{3}) ([^\r\n]*)\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text);
    if (!m) return;
    const status = Number(m[1]);
    if (status < 200) return;
    const callId = /^Call-ID:\s*(\S+)/im.exec(m[3])?.[1] ?? '';
    const inv = this.invites.get(callId);
    if (inv) {
      this.invites.delete(callId);
      if (status >= 300) {
        const to = /^To:\s*([^\r\n]*)/im.exec(m[3])?.[1] ?? '';
        const ack = [`ACK ${inv.uri} SIP/2.0`, inv.via, 'Max-Forwards: 70', inv.from, `To: ${to}`, `Call-ID: ${callId}`, 'CSeq: 1 ACK', 'Content-Length: 0', '', ''].join('\r\n');
        this.sock.send(ack, this.target.port, this.target.host);
      }
    }
    const w = this.waiters.get(callId);
    if (!w) return;
    this.waiters.delete(callId);
    w({ status, reason: m[2], headers: m[3], body: m[4], ms: 0, uri: '' });
  }
}

export interface RawResponse {
  status: number;
  reason: string;
  headers: string;
  body: string;
  /** Round trip in milliseconds. */
  ms: number;
  /** Request-URI of the request (what a digest response covers). */
  uri: string;
}

export function sdpOffer(connection: string, port: number, extra: string[] = []): string {
  return ['v=0', `o=raw 1 1 IN IP4 ${connection}`, 's=-', `c=IN IP4 ${connection}`, 't=0 0', `m=audio ${port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', ...extra, 'a=sendrecv', ''].join('\r\n');
}

/** The nonce and realm of a 401's WWW-Authenticate header. */
export function challengeOf(r: RawResponse): { realm: string; nonce: string; stale: boolean } {
  const h = /^WWW-Authenticate:\s*(.*)$/im.exec(r.headers)?.[1] ?? '';
  return { realm: /realm="([^"]*)"/.exec(h)?.[1] ?? '', nonce: /nonce="([^"]*)"/.exec(h)?.[1] ?? '', stale: /stale=true/i.test(h) };
}

/** An RFC 2617 qop=auth Authorization header, computed here independently of sip/digest. */
export function digestAuthorization(o: { realm: string; nonce: string; username: string; password: string; uri: string; nc?: number; method?: string }): string {
  const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
  const nc = (o.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = randomBytes(8).toString('hex');
  const ha1 = md5(`${o.username}:${o.realm}:${o.password}`);
  const ha2 = md5(`${o.method ?? 'INVITE'}:${o.uri}`);
  const response = md5(`${ha1}:${o.nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `Digest username="${o.username}", realm="${o.realm}", nonce="${o.nonce}", uri="${o.uri}", response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
}
