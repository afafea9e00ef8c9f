import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';

/** An OPTIONS as a PBX sends it to check its trunk, from `fromIp:fromPort`. */
export function optionsMessage(target: { host: string; port: number }, from: { ip: string; port: number }, callId: string, cseq = 1): Buffer {
  return Buffer.from(
    [
      `OPTIONS sip:ccedge@${target.host}:${target.port} SIP/2.0`,
      `Via: SIP/2.0/UDP ${from.ip}:${from.port};branch=z9hG4bK-${randomBytes(6).toString('hex')};rport`,
      `From: <sip:pbx@${from.ip}>;tag=${randomBytes(4).toString('hex')}`,
      `To: <sip:ccedge@${target.host}:${target.port}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} OPTIONS`,
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

/** Sends one datagram from `fromIp` and collects the status lines answered within `waitMs`. */
export function udpExchange(port: number, payload: Buffer, opts: { fromIp?: string; host?: string; waitMs?: number } = {}): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const lines: string[] = [];
    s.on('message', (m) => lines.push(m.toString('latin1').split('\r\n')[0]));
    s.once('error', reject);
    s.bind(0, opts.fromIp ?? '127.0.0.1', () => {
      s.send(payload, port, opts.host ?? '127.0.0.1');
      setTimeout(() => s.close(() => resolve(lines)), opts.waitMs ?? 1000);
    });
  });
}

export interface ProbeStats {
  sent: number;
  answered: number;
  /** Not answered within the prober's deadline. */
  lost: number;
  /** Answered later than 1 s (what a PBX's trunk monitor would call down). */
  over1s: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * The PBX's trunk monitor: an OPTIONS every `intervalMs` from a trunk address, each timed from
 * send to answer. What the "trunk OPTIONS answered within 1 s throughout" means.
 */
export class OptionsProber {
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, number>();
  private readonly rtts: number[] = [];
  private sent = 0;
  private lost = 0;
  private seq = 0;

  constructor(private readonly opts: { port: number; fromIp: string; intervalMs?: number; deadlineMs?: number; host?: string }) {}

  async start(): Promise<void> {
    const s = createSocket('udp4');
    this.socket = s;
    s.on('message', (m) => {
      const text = m.toString('latin1');
      const id = /\r\nCall-ID:\s*(\S+)/i.exec(text)?.[1];
      const at = id ? this.pending.get(id) : undefined;
      if (id === undefined || at === undefined || !text.startsWith('SIP/2.0 200')) return;
      this.pending.delete(id);
      this.rtts.push(Number(process.hrtime.bigint() / 1000n) / 1000 - at);
    });
    await new Promise<void>((resolve) => s.bind(0, this.opts.fromIp, () => resolve()));
    const local = s.address();
    const host = this.opts.host ?? '127.0.0.1';
    const deadline = this.opts.deadlineMs ?? 5000;
    this.timer = setInterval(() => {
      const now = Number(process.hrtime.bigint() / 1000n) / 1000;
      for (const [id, at] of this.pending) {
        if (now - at > deadline) {
          this.pending.delete(id);
          this.lost++;
        }
      }
      const id = `probe-${++this.seq}-${randomBytes(4).toString('hex')}`;
      this.pending.set(id, now);
      this.sent++;
      s.send(optionsMessage({ host, port: this.opts.port }, { ip: this.opts.fromIp, port: local.port }, id, this.seq), this.opts.port, host);
    }, this.opts.intervalMs ?? 100);
  }

  /** Stops sending, waits for answers still in flight (up to the deadline), and reports. */
  async stop(): Promise<ProbeStats> {
    if (this.timer) clearInterval(this.timer);
    const deadline = this.opts.deadlineMs ?? 5000;
    const until = Date.now() + deadline;
    while (this.pending.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    this.lost += this.pending.size;
    this.pending.clear();
    await new Promise<void>((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
    this.socket = undefined;
    return this.stats();
  }

  stats(): ProbeStats {
    const sorted = [...this.rtts].sort((a, b) => a - b);
    const pct = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : Number.NaN);
    return {
      sent: this.sent,
      answered: sorted.length,
      lost: this.lost,
      over1s: sorted.filter((x) => x > 1000).length,
      p50Ms: round(pct(50)),
      p99Ms: round(pct(99)),
      maxMs: round(sorted.length ? sorted[sorted.length - 1] : Number.NaN),
    };
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
