import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import sip, { type SipRequest, type SipResponse, type Stack } from 'sip';
import { alawToLinear, encodeFrame, ulawToLinear } from '../../media/tones/g711';
import { freePort } from './harness';
import { ToneMeter } from './tones';

/**
 * A small caller for end-to-end tests where sipp cannot look at the audio: places one call over
 * SIP/UDP, streams a 1 kHz G.711 tone at 20 ms pacing, and measures what comes back (packet count
 * and signal level), so a test can prove audio from the browser's microphone reached the caller.
 */
export class TestUac {
  readonly events: string[] = [];
  packetsReceived = 0;
  /** The frequencies in what the caller hears (tone peers: its own tone is 1 kHz); reset() starts a window. */
  readonly tones = new ToneMeter();
  /** Sum of squares and sample count of the received audio (for RMS). */
  private energy = 0;
  private samples = 0;
  private stack: Stack | undefined;
  private rtp: Socket | undefined;
  private sendTimer: NodeJS.Timeout | undefined;
  private invite: SipRequest | undefined;
  private toTag = '';
  private cseq = 1;
  private remoteRtp: { address: string; port: number } | undefined;
  private byeResolvers: Array<() => void> = [];
  byeReceived = false;
  finalStatus = 0;

  private constructor(
    readonly codec: 'PCMU' | 'PCMA',
    private readonly localIp: string,
    private readonly sipPort: number,
    private readonly rtpPort: number,
  ) {}

  static async create(opts: { codec?: 'PCMU' | 'PCMA'; localIp?: string } = {}): Promise<TestUac> {
    const uac = new TestUac(opts.codec ?? 'PCMU', opts.localIp ?? '127.0.0.1', await freePort(), await freePort());
    await uac.open();
    return uac;
  }

  private async open(): Promise<void> {
    // sip.js treats requests to its own hostname as flow tokens; a distinct name keeps it routing by address.
    this.stack = sip.create({ address: this.localIp, port: this.sipPort, tcp: false, publicAddress: 'test-uac.invalid' }, (rq) => this.onRequest(rq));
    const rtp = createSocket('udp4');
    this.rtp = rtp;
    rtp.on('message', (msg) => this.onRtp(msg));
    await new Promise<void>((resolve) => rtp.bind(this.rtpPort, this.localIp, () => resolve()));
  }

  /** Sends the INVITE and resolves with the final status (200 once answered). */
  call(target: string, opts: { from?: string; fromName?: string; to?: string; headers?: Record<string, string> } = {}): Promise<number> {
    const pt = this.codec === 'PCMU' ? 0 : 8;
    const sdp = [
      'v=0',
      `o=uac 1 1 IN IP4 ${this.localIp}`,
      's=-',
      `c=IN IP4 ${this.localIp}`,
      't=0 0',
      `m=audio ${this.rtpPort} RTP/AVP ${pt} 101`,
      `a=rtpmap:${pt} ${this.codec}/8000`,
      'a=rtpmap:101 telephone-event/8000',
      'a=ptime:20',
      'a=sendrecv',
      '',
    ].join('\r\n');
    const rq: SipRequest = {
      method: 'INVITE',
      uri: `sip:${opts.to ?? 'support'}@${target}`,
      version: '2.0',
      headers: {
        to: { uri: `sip:${opts.to ?? 'support'}@${target}`, params: {} },
        from: { name: opts.fromName ? `"${opts.fromName}"` : undefined, uri: `sip:${opts.from ?? '5550100'}@${this.localIp}:${this.sipPort}`, params: { tag: randomBytes(4).toString('hex') } },
        'call-id': `${randomBytes(8).toString('hex')}@test-uac`,
        cseq: { method: 'INVITE', seq: this.cseq },
        contact: [{ uri: `sip:uac@${this.localIp}:${this.sipPort}`, params: {} }],
        via: [],
        'content-type': 'application/sdp',
        'max-forwards': 70,
        ...opts.headers,
      },
      content: sdp,
    };
    this.invite = rq;
    return new Promise((resolve) => {
      this.stack?.send(rq, (rs: SipResponse) => {
        this.events.push(`${rs.status}`);
        if (rs.status < 200) return;
        this.finalStatus = rs.status;
        if (rs.status >= 300) {
          resolve(rs.status);
          return;
        }
        this.toTag = String(rs.headers.to.params.tag ?? '');
        this.sendAck(rs);
        this.remoteRtp = parseMedia(rs.content ?? '');
        this.startTone();
        resolve(rs.status);
      });
    });
  }

  /** RMS of the received audio (linear 16-bit), 0 if nothing was received. */
  get receivedLevel(): number {
    return this.samples ? Math.sqrt(this.energy / this.samples) : 0;
  }

  resetMeasurement(): void {
    this.energy = 0;
    this.samples = 0;
    this.packetsReceived = 0;
  }

  /** Resolves when ccedge sends BYE (or at once if it already did). */
  waitForBye(timeoutMs: number): Promise<boolean> {
    if (this.byeReceived) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.byeResolvers.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** The caller hangs up. */
  hangup(): Promise<number> {
    const rq = this.inDialog('BYE');
    this.stopTone();
    return new Promise((resolve) => this.stack?.send(rq, (rs) => rs.status >= 200 && resolve(rs.status)));
  }

  /** Presses a key: RFC 4733 events (PT 101) on the RTP socket, 100 ms with three end packets. */
  async sendDtmf(digit: string): Promise<void> {
    const remote = this.remoteRtp;
    if (!remote || !this.rtp) throw new Error('no media yet');
    const code = '0123456789*#ABCD'.indexOf(digit);
    const ssrc = randomBytes(4).readUInt32BE(0);
    const ts = randomBytes(4).readUInt32BE(0);
    for (let i = 0; i < 8; i++) {
      const end = i >= 5;
      const duration = Math.min(i + 1, 5) * 160;
      const pkt = Buffer.alloc(16);
      pkt[0] = 0x80;
      pkt[1] = 101 | (i === 0 ? 0x80 : 0);
      pkt.writeUInt16BE((1000 + i) & 0xffff, 2);
      pkt.writeUInt32BE(ts, 4);
      pkt.writeUInt32BE(ssrc, 8);
      pkt[12] = code;
      pkt[13] = (end ? 0x80 : 0) | 10;
      pkt.writeUInt16BE(duration, 14);
      this.rtp.send(pkt, remote.port, remote.address);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Closes sockets without signalling (the test is done with this caller). */
  close(): void {
    this.stopTone();
    this.stack?.destroy();
    this.rtp?.close();
    this.stack = undefined;
    this.rtp = undefined;
  }

  private inDialog(method: string): SipRequest {
    const invite = this.invite;
    if (!invite) throw new Error('no call');
    return {
      method,
      uri: invite.uri,
      version: '2.0',
      headers: {
        to: { uri: invite.headers.to.uri, params: { tag: this.toTag } },
        from: invite.headers.from,
        'call-id': invite.headers['call-id'],
        cseq: { method, seq: method === 'ACK' ? this.cseq : ++this.cseq },
        via: [],
        'max-forwards': 70,
      },
    };
  }

  private sendAck(rs: SipResponse): void {
    const ack = this.inDialog('ACK');
    ack.headers.cseq = { method: 'ACK', seq: rs.headers.cseq.seq };
    this.stack?.send(ack);
  }

  private onRequest(rq: SipRequest): void {
    if (rq.method === 'BYE') {
      this.byeReceived = true;
      this.stopTone();
      this.stack?.send(sip.makeResponse(rq, 200, 'OK'));
      for (const r of this.byeResolvers.splice(0)) r();
      return;
    }
    if (rq.method !== 'ACK') this.stack?.send(sip.makeResponse(rq, 200, 'OK'));
  }

  private startTone(): void {
    const frames: Buffer[] = [];
    for (let f = 0; f < 50; f++) {
      const pcm = new Int16Array(160);
      for (let i = 0; i < 160; i++) pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 1000 * (f * 160 + i)) / 8000));
      frames.push(encodeFrame(this.codec, pcm));
    }
    const pt = this.codec === 'PCMU' ? 0 : 8;
    const ssrc = randomBytes(4).readUInt32BE(0);
    let seq = 1;
    let ts = 0;
    let n = 0;
    const start = Date.now();
    const tick = (): void => {
      const remote = this.remoteRtp;
      if (!remote || !this.rtp) return;
      const header = Buffer.alloc(12);
      header[0] = 0x80;
      header[1] = pt | (n === 0 ? 0x80 : 0);
      header.writeUInt16BE(seq & 0xffff, 2);
      header.writeUInt32BE(ts >>> 0, 4);
      header.writeUInt32BE(ssrc, 8);
      this.rtp.send(Buffer.concat([header, frames[n % frames.length]]), remote.port, remote.address);
      seq++;
      ts += 160;
      n++;
      this.sendTimer = setTimeout(tick, Math.max(0, start + n * 20 - Date.now()));
    };
    tick();
  }

  private stopTone(): void {
    clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
  }

  private onRtp(msg: Buffer): void {
    if (msg.length < 12 || msg[0] >> 6 !== 2) return;
    const pt = msg[1] & 0x7f;
    if (pt !== 0 && pt !== 8) return;
    this.packetsReceived++;
    this.tones.push(msg.subarray(12), pt === 0 ? 'PCMU' : 'PCMA');
    const decode = pt === 0 ? ulawToLinear : alawToLinear;
    for (let i = 12; i < msg.length; i++) {
      const s = decode(msg[i]);
      this.energy += s * s;
      this.samples++;
    }
  }
}

function parseMedia(sdp: string): { address: string; port: number } | undefined {
  const c = /^c=IN IP4 (\S+)/m.exec(sdp);
  const m = /^m=audio (\d+)/m.exec(sdp);
  return c && m ? { address: c[1], port: Number(m[1]) } : undefined;
}
