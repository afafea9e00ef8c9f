import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import sip, { type SipRequest, type SipResponse, type Stack } from 'sip';
import { freePort } from './harness';

export interface UasCall {
  invite: SipRequest;
  toTag: string;
  /** Where ccedge sends and expects our RTP (from its SDP offer). */
  remoteRtp: { address: string; port: number };
  offeredPayloadTypes: number[];
  acked: boolean;
  byeReceived: boolean;
}

/**
 * The far end of a forwarded call (another PBX or the public network behind a trunk): answers
 * ccedge's outbound INVITEs with 200 (or a configured failure), echoes RTP back to where it came
 * from, and can hang up. One RTP socket for every call.
 */
export class TestUas {
  readonly calls: UasCall[] = [];
  /** Status to answer INVITEs with (200: answer). */
  answerWith = 200;
  rtpPacketsEchoed = 0;
  private stack: Stack | undefined;
  private rtp: Socket | undefined;
  private cseq = 100;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly localIp: string,
    readonly sipPort: number,
    readonly rtpPort: number,
  ) {}

  static async create(opts: { localIp?: string } = {}): Promise<TestUas> {
    const uas = new TestUas(opts.localIp ?? '127.0.0.2', await freePort(), await freePort());
    uas.stack = sip.create({ address: uas.localIp, port: uas.sipPort, tcp: false, publicAddress: 'test-uas.invalid' }, (rq) => uas.onRequest(rq));
    const rtp = createSocket('udp4');
    uas.rtp = rtp;
    rtp.on('message', (msg, rinfo) => {
      uas.rtpPacketsEchoed++;
      rtp.send(msg, rinfo.port, rinfo.address);
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
    return new Promise((resolve) => this.stack?.send(rq, (rs: SipResponse) => rs.status >= 200 && resolve(rs.status)));
  }

  close(): void {
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
      const entry: UasCall = { invite: rq, toTag, remoteRtp: { address: c?.[1] ?? '', port: Number(m?.[1] ?? 0) }, offeredPayloadTypes: pts, acked: false, byeReceived: false };
      this.calls.push(entry);
      const rs = sip.makeResponse(rq, this.answerWith, this.answerWith === 200 ? 'OK' : 'Busy Here');
      rs.headers.to = { ...rq.headers.to, params: { ...rq.headers.to.params, tag: toTag } };
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
    } else if (rq.method === 'ACK') {
      if (call) call.acked = true;
    } else if (rq.method === 'BYE') {
      if (call) call.byeReceived = true;
      stack.send(sip.makeResponse(rq, call ? 200 : 481, call ? 'OK' : 'Call/Transaction Does Not Exist'));
    } else if (rq.method === 'CANCEL') {
      stack.send(sip.makeResponse(rq, 200, 'OK'));
    } else if (rq.method !== 'INVITE') {
      stack.send(sip.makeResponse(rq, 200, 'OK'));
    }
    for (const w of this.waiters.splice(0)) w();
  }
}
