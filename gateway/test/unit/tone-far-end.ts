import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import sip, { type SipRequest, type SipResponse, type Stack } from 'sip';
import { encodeFrame, type G711Codec } from '../../../media/tones/g711';
import { Goertzel } from '../../../media/tones/goertzel';

/** A free UDP port on `ip` (bound and released). */
export async function freeUdpPort(ip: string): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, ip, () => resolve());
  });
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A far end for outbound legs (an extension behind the PBX): answers ccedge's INVITE with 200
 * (or rings forever, or refuses), then talks its own tone at 20 ms pacing and measures what it
 * hears per frequency (Goertzel share of power), so a test can tell who hears whom.
 */
export class ToneFarEnd {
  /** 200: answer; 'ring': 180 and wait (for CANCEL); anything else: that final status. */
  answerWith: 200 | 'ring' | number = 200;
  readonly received: string[] = [];
  invites = 0;
  byes = 0;
  cancels = 0;
  acked = false;
  packetsReceived = 0;
  private stack: Stack | undefined;
  private rtp: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private invite: SipRequest | undefined;
  private toTag = '';
  private remote: { address: string; port: number } | undefined;
  private codec: G711Codec = 'PCMU';
  private n = 0;
  private seq = 1;
  private ts = 0;
  private readonly ssrc = randomBytes(4).readUInt32BE(0);
  private readonly detectors = new Map<number, Goertzel>();

  private constructor(
    readonly ip: string,
    readonly sipPort: number,
    readonly rtpPort: number,
    readonly hz: number,
  ) {}

  static async create(ip: string, hz: number): Promise<ToneFarEnd> {
    const far = new ToneFarEnd(ip, await freeUdpPort(ip), await freeUdpPort(ip), hz);
    far.stack = sip.create({ address: ip, port: far.sipPort, tcp: false, publicAddress: `far-${hz}.invalid` }, (rq) => far.onRequest(rq));
    const rtp = createSocket('udp4');
    far.rtp = rtp;
    rtp.on('message', (msg) => far.onRtp(msg));
    await new Promise<void>((resolve) => rtp.bind(far.rtpPort, ip, () => resolve()));
    return far;
  }

  /** Starts listening for these frequencies afresh. */
  listenFor(...hz: number[]): void {
    this.detectors.clear();
    for (const f of hz) this.detectors.set(f, new Goertzel(f));
  }

  /** Share of what was heard since listenFor() at `hz` (0..1). */
  heard(hz: number): number {
    return this.detectors.get(hz)?.share ?? 0;
  }

  /** RMS level of what was heard since listenFor(). */
  get level(): number {
    const first = this.detectors.values().next();
    return first.done ? 0 : first.value.rms;
  }

  /** The far end hangs up: BYE to ccedge. */
  hangup(): Promise<number> {
    const inv = this.invite;
    if (!inv) return Promise.resolve(0);
    this.stopTalking();
    const contacts = inv.headers.contact;
    const contact = Array.isArray(contacts) ? contacts[0]?.uri : undefined;
    const rq: SipRequest = {
      method: 'BYE',
      uri: contact === undefined ? inv.headers.from.uri : typeof contact === 'string' ? contact : sip.stringifyUri(contact),
      version: '2.0',
      headers: {
        to: inv.headers.from,
        from: { uri: inv.headers.to.uri, params: { tag: this.toTag } },
        'call-id': inv.headers['call-id'],
        cseq: { method: 'BYE', seq: 500 },
        via: [],
        'max-forwards': 70,
      },
    };
    return new Promise((resolve) => this.stack?.send(rq, (rs: SipResponse) => rs.status >= 200 && resolve(rs.status)));
  }

  close(): void {
    this.stopTalking();
    this.stack?.destroy();
    this.rtp?.close();
    this.stack = undefined;
    this.rtp = undefined;
  }

  private onRequest(rq: SipRequest): void {
    const stack = this.stack;
    if (!stack) return;
    this.received.push(rq.method);
    if (rq.method === 'INVITE') {
      this.invites++;
      this.invite = rq;
      this.toTag = randomBytes(4).toString('hex');
      const sdp = rq.content ?? '';
      const c = /^c=IN IP4 (\S+)/m.exec(sdp);
      const m = /^m=audio (\d+) RTP\/AVP ([\d ]+)/m.exec(sdp);
      const pt = Number((m?.[2] ?? '0').trim().split(' ')[0]);
      this.codec = pt === 8 ? 'PCMA' : 'PCMU';
      this.remote = { address: c?.[1] ?? '', port: Number(m?.[1] ?? 0) };
      const withTag = (rs: SipResponse): SipResponse => {
        rs.headers.to = { ...rq.headers.to, params: { ...rq.headers.to.params, tag: this.toTag } };
        return rs;
      };
      if (this.answerWith === 'ring') {
        stack.send(withTag(sip.makeResponse(rq, 180, 'Ringing')));
        return;
      }
      if (this.answerWith !== 200) {
        stack.send(withTag(sip.makeResponse(rq, this.answerWith, 'Busy Here')));
        return;
      }
      const rs = withTag(sip.makeResponse(rq, 200, 'OK'));
      rs.headers.contact = [{ uri: `sip:far@${this.ip}:${this.sipPort}`, params: {} }];
      rs.headers['content-type'] = 'application/sdp';
      rs.content = ['v=0', `o=far 1 1 IN IP4 ${this.ip}`, 's=-', `c=IN IP4 ${this.ip}`, 't=0 0', `m=audio ${this.rtpPort} RTP/AVP ${pt}`, `a=rtpmap:${pt} ${this.codec}/8000`, 'a=sendrecv', ''].join('\r\n');
      stack.send(rs);
    } else if (rq.method === 'ACK') {
      this.acked = true;
      this.startTalking();
    } else if (rq.method === 'CANCEL') {
      this.cancels++;
      stack.send(sip.makeResponse(rq, 200, 'OK'));
      if (this.invite) stack.send(sip.makeResponse(this.invite, 487, 'Request Terminated'));
    } else if (rq.method === 'BYE') {
      this.byes++;
      this.stopTalking();
      stack.send(sip.makeResponse(rq, 200, 'OK'));
    } else {
      stack.send(sip.makeResponse(rq, 200, 'OK'));
    }
  }

  private startTalking(): void {
    if (this.timer || !this.remote) return;
    const remote = this.remote;
    this.timer = setInterval(() => {
      const pcm = new Int16Array(160);
      for (let i = 0; i < 160; i++) pcm[i] = Math.round(6000 * Math.sin((2 * Math.PI * this.hz * this.n++) / 8000));
      const header = Buffer.alloc(12);
      header[0] = 0x80;
      header[1] = this.codec === 'PCMA' ? 8 : 0;
      header.writeUInt16BE(this.seq++ & 0xffff, 2);
      header.writeUInt32BE(this.ts >>> 0, 4);
      header.writeUInt32BE(this.ssrc, 8);
      this.ts += 160;
      this.rtp?.send(Buffer.concat([header, encodeFrame(this.codec, pcm)]), remote.port, remote.address);
    }, 20);
  }

  private stopTalking(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private onRtp(msg: Buffer): void {
    if (msg.length <= 12 || (msg[1] & 0x7f) >= 96) return;
    this.packetsReceived++;
    const payload = msg.subarray(12);
    for (const g of this.detectors.values()) g.pushG711(payload, this.codec);
  }
}
