/**
 * Client of rtpengine's ng control protocol: one UDP datagram per request, "COOKIE " + a bencoded
 * dictionary, answered with the same cookie + a bencoded dictionary. rtpengine caches answers by
 * cookie, so a request that timed out is resent with the same cookie (an offer is not applied twice).
 */
import { createSocket, type Socket } from 'node:dgram';
import { bdecode, bencode, type BValue } from './bencode';

export type NgDict = { [key: string]: BValue };

export class NgError extends Error {
  constructor(
    readonly code: 'timeout' | 'error-result' | 'bad-reply',
    message: string,
  ) {
    super(`rtpengine ng: ${message}`);
  }
}

interface Pending {
  resolve: (d: NgDict) => void;
  reject: (e: Error) => void;
}

export class NgClient {
  private readonly sock: Socket;
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  /** Replies that could not be parsed or matched no request (kept for the report, not logged per packet). */
  badReplies = 0;
  sendErrors = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs = 1000,
    private readonly tries = 3,
  ) {
    this.sock = createSocket('udp4');
    this.sock.on('message', (msg) => this.onReply(msg));
    // A send error (e.g. an ICMP error on a connected path) must not crash the bench: the request times out instead.
    this.sock.on('error', () => this.sendErrors++);
    this.sock.bind(0, '127.0.0.1');
  }

  private onReply(msg: Buffer): void {
    const sp = msg.indexOf(0x20);
    const cookie = sp > 0 ? msg.toString('latin1', 0, sp) : '';
    const p = this.pending.get(cookie);
    if (!p) {
      this.badReplies++;
      return;
    }
    this.pending.delete(cookie);
    try {
      const d = bdecode(msg, sp + 1);
      if (typeof d !== 'object' || Array.isArray(d)) throw new NgError('bad-reply', 'reply is not a dictionary');
      if (d.result !== 'ok' && d.result !== 'pong') {
        p.reject(new NgError('error-result', `${String(d.result)}: ${String(d['error-reason'] ?? '')}`));
        return;
      }
      p.resolve(d);
    } catch (e) {
      this.badReplies++;
      p.reject(e instanceof NgError ? e : new NgError('bad-reply', (e as Error).message));
    }
  }

  async request(cmd: NgDict): Promise<NgDict> {
    const cookie = `${process.pid}_${++this.seq}`;
    const packet = Buffer.concat([Buffer.from(`${cookie} `, 'latin1'), bencode(cmd)]);
    for (let attempt = 1; ; attempt++) {
      const reply = new Promise<NgDict>((resolve, reject) => this.pending.set(cookie, { resolve, reject }));
      this.sock.send(packet, this.port, this.host);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), this.timeoutMs)));
      const d = await Promise.race([reply, timeout]).finally(() => clearTimeout(timer));
      if (d) return d;
      this.pending.delete(cookie);
      if (attempt >= this.tries) throw new NgError('timeout', `no answer to ${String(cmd.command)} after ${this.tries} × ${this.timeoutMs} ms`);
    }
  }

  close(): void {
    for (const p of this.pending.values()) p.reject(new NgError('timeout', 'client closed'));
    this.pending.clear();
    this.sock.close();
  }
}
