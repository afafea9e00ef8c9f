import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import sip, { type SipRequest, type SipResponse, type Stack } from 'sip';
import { freePort } from './harness';
import { sineFrames, ToneEar, TONE_CANDIDATES } from './tones';

export interface UasCall {
  invite: SipRequest;
  toTag: string;
  /** Where ccedge sends and expects our RTP (from its SDP offer). */
  remoteRtp: { address: string; port: number };
  offeredPayloadTypes: number[];
  acked: boolean;
  byeReceived: boolean;
  /** Own-tone mode: which test tones this call hears (undefined when echoing). */
  ear: ToneEar | undefined;
  /** Own-tone mode: the call's sender (stopped by BYE either way and by close()). */
  toneTimer: NodeJS.Timeout | undefined;
}

/**
 * The far end of a forwarded call (another PBX or the public network behind a trunk), or the
 * extension a call is transferred to: answers INVITEs with 200 (or a configured failure), and
 * either echoes RTP back to where it came from or, with `toneHz`, sends its own tone to each call
 * and reports which test tones it hears there (`call.ear`). Can hang up. One RTP socket for every call.
 */
export class TestUas {
  readonly calls: UasCall[] = [];
  /** Status to answer INVITEs with (200: answer). */
  answerWith = 200;
  /** true: new INVITEs get 180 Ringing and wait for releaseAnswers() (a phone ringing until the test says). */
  holdAnswers = false;
  private held: Array<() => void> = [];
  rtpPacketsEchoed = 0;
  private stack: Stack | undefined;
  private rtp: Socket | undefined;
  private cseq = 100;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly localIp: string,
    readonly sipPort: number,
    readonly rtpPort: number,
    /** Own-tone mode: the frequency sent to every call (undefined: echo). */
    readonly toneHz: number | undefined,
    private readonly candidates: readonly number[],
  ) {}

  static async create(opts: { localIp?: string; toneHz?: number; detect?: readonly number[] } = {}): Promise<TestUas> {
    const uas = new TestUas(opts.localIp ?? '127.0.0.2', await freePort(), await freePort(), opts.toneHz, opts.detect ?? TONE_CANDIDATES);
    uas.stack = sip.create({ address: uas.localIp, port: uas.sipPort, tcp: false, publicAddress: 'test-uas.invalid' }, (rq) => uas.onRequest(rq));
    const rtp = createSocket('udp4');
    uas.rtp = rtp;
    rtp.on('message', (msg, rinfo) => {
      if (uas.toneHz === undefined) {
        uas.rtpPacketsEchoed++;
        rtp.send(msg, rinfo.port, rinfo.address);
        return;
      }
      // Own-tone mode: the packet belongs to the call whose media comes from that address.
      const call = uas.calls.find((c) => c.remoteRtp.address === rinfo.address && c.remoteRtp.port === rinfo.port && !c.byeReceived);
      const pt = msg.length > 12 ? msg[1] & 0x7f : -1;
      if (call?.ear && (pt === 0 || pt === 8)) call.ear.push(msg.subarray(12), pt === 0 ? 'PCMU' : 'PCMA');
    });
    await new Promise<void>((resolve) => rtp.bind(uas.rtpPort, uas.localIp, () => resolve()));
    return uas;
  }

  /** Resolves once `pred` holds (checked after every SIP request). */
  async until(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end) throw new Error('TestUas: condition not met in time');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** The far end hangs up: BYE to ccedge; resolves with its final status. */
  hangup(call: UasCall): Promise<number> {
    const inv = call.invite;
    const contacts = inv.headers.contact;
    const contact = Array.isArray(contacts) ? contacts[0]?.uri : undefined;
    const rq: SipRequest = {
      method: 'BYE',
      uri: contact === undefined ? inv.headers.from.uri : typeof contact === 'string' ? contact : sip.stringifyUri(contact),
      version: '2.0',
      headers: {
        to: inv.headers.from,
        from: { uri: inv.headers.to.uri, params: { tag: call.toTag } },
        'call-id': inv.headers['call-id'],
        cseq: { method: 'BYE', seq: ++this.cseq },
        via: [],
        'max-forwards': 70,
      },
    };
    this.stopTone(call);
    return new Promise((resolve) => this.stack?.send(rq, (rs: SipResponse) => rs.status >= 200 && resolve(rs.status)));
  }

  close(): void {
    for (const c of this.calls) this.stopTone(c);
    this.stack?.destroy();
    this.rtp?.close();
    this.stack = undefined;
    this.rtp = undefined;
  }

  private onRequest(rq: SipRequest): void {
    const stack = this.stack;
    if (!stack) return;
    const call = this.calls.find((c) => c.invite.headers['call-id'] === rq.headers['call-id']);
    if (rq.method === 'INVITE' && !call) {
      const toTag = randomBytes(4).toString('hex');
      const sdp = rq.content ?? '';
      const c = /^c=IN IP4 (\S+)/m.exec(sdp);
      const m = /^m=audio (\d+) RTP\/AVP ([\d ]+)/m.exec(sdp);
      const pts = m ? m[2].trim().split(' ').map(Number) : [];
      const entry: UasCall = {
        invite: rq,
        toTag,
        remoteRtp: { address: c?.[1] ?? '', port: Number(m?.[1] ?? 0) },
        offeredPayloadTypes: pts,
        acked: false,
        byeReceived: false,
        ear: this.toneHz === undefined ? undefined : new ToneEar(this.candidates),
        toneTimer: undefined,
      };
      this.calls.push(entry);
      if (this.holdAnswers) {
        const ringing = sip.makeResponse(rq, 180, 'Ringing');
        ringing.headers.to = { ...rq.headers.to, params: { ...rq.headers.to.params, tag: toTag } };
        stack.send(ringing);
        this.held.push(() => this.answer(rq, entry, pts));
      } else {
        this.answer(rq, entry, pts);
      }
    } else if (rq.method === 'ACK') {
      if (call) call.acked = true;
    } else if (rq.method === 'BYE') {
      if (call) {
        call.byeReceived = true;
        this.stopTone(call);
      }
      stack.send(sip.makeResponse(rq, call ? 200 : 481, call ? 'OK' : 'Call/Transaction Does Not Exist'));
    } else if (rq.method === 'CANCEL') {
      stack.send(sip.makeResponse(rq, 200, 'OK'));
    } else if (rq.method !== 'INVITE') {
      stack.send(sip.makeResponse(rq, 200, 'OK'));
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Answers the INVITEs held by holdAnswers (with answerWith as it is now). */
  releaseAnswers(): void {
    this.holdAnswers = false;
    for (const a of this.held.splice(0)) a();
    for (const w of this.waiters.splice(0)) w();
  }

  private answer(rq: SipRequest, entry: UasCall, pts: number[]): void {
    const stack = this.stack;
    if (!stack) return;
    const rs = sip.makeResponse(rq, this.answerWith, this.answerWith === 200 ? 'OK' : 'Busy Here');
    rs.headers.to = { ...rq.headers.to, params: { ...rq.headers.to.params, tag: entry.toTag } };
    if (this.answerWith === 200) {
      const pt = pts.find((p) => p === 0 || p === 8) ?? 0;
      rs.headers.contact = [{ uri: `sip:far@${this.localIp}:${this.sipPort}`, params: {} }];
      rs.headers['content-type'] = 'application/sdp';
      rs.content = [
        'v=0',
        `o=far 1 1 IN IP4 ${this.localIp}`,
        's=-',
        `c=IN IP4 ${this.localIp}`,
        't=0 0',
        `m=audio ${this.rtpPort} RTP/AVP ${pt} 101`,
        `a=rtpmap:${pt} ${pt === 0 ? 'PCMU' : 'PCMA'}/8000`,
        'a=rtpmap:101 telephone-event/8000',
        'a=sendrecv',
        '',
      ].join('\r\n');
    }
    stack.send(rs);
    if (this.answerWith === 200) this.startTone(entry, pts.find((p) => p === 0 || p === 8) ?? 0);
  }

  /** Own-tone mode: this call gets our tone at 20 ms pacing until a BYE (either way) or close(). */
  private startTone(call: UasCall, pt: number): void {
    const hz = this.toneHz;
    if (hz === undefined) return;
    const frames = sineFrames(hz, pt === 8 ? 'PCMA' : 'PCMU');
    const ssrc = randomBytes(4).readUInt32BE(0);
    const start = Date.now();
    let n = 0;
    const tick = (): void => {
      if (!this.rtp || call.byeReceived) return;
      const header = Buffer.alloc(12);
      header[0] = 0x80;
      header[1] = pt | (n === 0 ? 0x80 : 0);
      header.writeUInt16BE((n + 1) & 0xffff, 2);
      header.writeUInt32BE((n * 160) >>> 0, 4);
      header.writeUInt32BE(ssrc, 8);
      this.rtp.send(Buffer.concat([header, frames[n % frames.length]]), call.remoteRtp.port, call.remoteRtp.address);
      n++;
      call.toneTimer = setTimeout(tick, Math.max(0, start + n * 20 - Date.now()));
    };
    tick();
  }

  private stopTone(call: UasCall): void {
    clearTimeout(call.toneTimer);
    call.toneTimer = undefined;
  }
}
