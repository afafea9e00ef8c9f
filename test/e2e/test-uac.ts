import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import sip, { type Flow, type NameAddr, type SipRequest, type SipResponse, type Stack } from 'sip';
import { alawToLinear, ulawToLinear } from '../../media/tones/g711';
import { freePort } from './harness';
import { sineFrames, ToneEar, ToneMeter, TONE_CANDIDATES } from './tones';

/** One SIP dialog of ours (the call to ccedge, or the new call a REFER made us place). */
interface Leg {
  invite: SipRequest;
  toTag: string;
  /** Our CSeq in this dialog. */
  cseq: number;
  /** RFC 3261 §12.1.2: the 2xx's Record-Route, reversed (empty: none, requests go as before). */
  routeSet: string[];
  /** The 2xx's Contact: Request-URI of in-dialog requests when there is a route set. */
  remoteTarget: string | undefined;
  remoteRtp: { address: string; port: number } | undefined;
}

/** ccedge's REFER as this "PBX" saw it, and what became of it. */
export interface ReferSeen {
  referTo: string;
  referredBy: string | undefined;
  /** Request-URI and Route headers as they arrived (a proxy has consumed its own entries). */
  uri: string;
  route: string[];
  /** Where it came from (the proxy, when one is in front). */
  source: { address: string; port: number };
  /** Our answer to the REFER. */
  answered: number;
  /** Final status of the new call to the target (0 while it rings or when none was placed). */
  transferStatus: number;
  /** Our NOTIFYs: the sipfrag status we reported and ccedge's answer (0 until it comes). */
  notifies: Array<{ sipfrag: number; answer: number }>;
}

/** Opt-in REFER handling (TestUac.handleRefer): how this "PBX" carries out ccedge's REFER. */
export interface ReferHandling {
  /** Where the new call to the Refer-To target is sent (the extension: a TestUas, sipp...). */
  via: { host: string; port: number };
  /** Answer to the REFER (default 202); anything else ends the REFER there. */
  status?: number;
}

/**
 * A small caller for end-to-end tests where sipp cannot look at the audio: places one call over
 * SIP/UDP, streams its own G.711 tone (1 kHz unless told) at 20 ms pacing, and measures what
 * comes back: packet count, signal level, and which test tones it hears (test/e2e/tones.ts).
 *
 * It can also play the PBX that ccedge transfers a call back to (handleRefer): a REFER in the call
 * is answered 202, NOTIFY `100 Trying` follows, the same caller places a new call to the Refer-To
 * target, NOTIFY reports that call's outcome, and once answered the caller's audio (both ways) is
 * with the target, as if the PBX had connected them. In-dialog requests follow the route set.
 */
export class TestUac {
  readonly events: string[] = [];
  packetsReceived = 0;
  /** Which test tones the caller hears (reset with resetMeasurement). */
  readonly ear: ToneEar;
  /** Every REFER ccedge sent in our call (only with handleRefer). */
  readonly refers: ReferSeen[] = [];
  /** The frequencies in what the caller hears (tone peers: its own tone is 1 kHz); reset() starts a window. */
  readonly tones = new ToneMeter();
  /** Sum of squares and sample count of the received audio (for RMS). */
  private energy = 0;
  private samples = 0;
  private stack: Stack | undefined;
  private rtp: Socket | undefined;
  private sendTimer: NodeJS.Timeout | undefined;
  /** The call to ccedge. */
  private leg: Leg | undefined;
  /** Where the caller's audio is: the call to ccedge, or the call a REFER made. */
  private current: Leg | undefined;
  private referHandling: ReferHandling | undefined;
  /** After a transfer only the target's RTP counts (ccedge may send until its BYE). */
  private acceptRtpFrom: { address: string; port: number } | undefined;
  private byeResolvers: Array<() => void> = [];
  /** Frames to say instead of the idle sound (say()), and who waits for the end of them. */
  private voice: Buffer[] = [];
  private voiceDone: Array<() => void> = [];
  /** When the last loud packet arrived (waitForQuiet). */
  private lastLoudAt = 0;
  private waiters: Array<() => void> = [];
  /** ccedge hung up our call to it. */
  byeReceived = false;
  /** The target of a transfer hung up the new call. */
  transferByeReceived = false;
  finalStatus = 0;

  private constructor(
    readonly codec: 'PCMU' | 'PCMA',
    private readonly localIp: string,
    private readonly sipPort: number,
    private readonly rtpPort: number,
    /** The frequency the caller sends. */
    readonly toneHz: number,
    candidates: readonly number[],
    /** What the caller sends when not saying anything: its tone, or line silence (a caller listening to a speech menu). */
    private readonly idle: 'tone' | 'silence' = 'tone',
  ) {
    this.ear = new ToneEar(candidates);
  }

  static async create(opts: { codec?: 'PCMU' | 'PCMA'; localIp?: string; toneHz?: number; detect?: readonly number[]; idle?: 'tone' | 'silence' } = {}): Promise<TestUac> {
    const uac = new TestUac(opts.codec ?? 'PCMU', opts.localIp ?? '127.0.0.1', await freePort(), await freePort(), opts.toneHz ?? 1000, opts.detect ?? TONE_CANDIDATES, opts.idle);
    await uac.open();
    return uac;
  }

  private async open(): Promise<void> {
    // sip.js treats requests to its own hostname as flow tokens; a distinct name keeps it routing by address.
    this.stack = sip.create({ address: this.localIp, port: this.sipPort, tcp: false, publicAddress: 'test-uac.invalid' }, (rq, flow) => this.onRequest(rq, flow));
    const rtp = createSocket('udp4');
    this.rtp = rtp;
    rtp.on('message', (msg, rinfo) => this.onRtp(msg, rinfo.address, rinfo.port));
    await new Promise<void>((resolve) => rtp.bind(this.rtpPort, this.localIp, () => resolve()));
  }

  /** Opt-in: act as the PBX when ccedge sends REFER in our call (see the class comment). */
  handleRefer(opts: ReferHandling): void {
    this.referHandling = opts;
  }

  /** Sends the INVITE and resolves with the final status (200 once answered). */
  async call(target: string, opts: { from?: string; fromName?: string; to?: string; headers?: Record<string, string> } = {}): Promise<number> {
    const leg = this.newLeg(`sip:${opts.to ?? 'support'}@${target}`, `sip:${opts.to ?? 'support'}@${target}`, opts);
    this.leg = leg;
    const status = await this.invite(leg);
    this.finalStatus = status;
    if (status < 300) {
      this.current = leg;
      this.startTone();
    }
    return status;
  }

  /** RMS of the received audio (linear 16-bit), 0 if nothing was received. */
  get receivedLevel(): number {
    return this.samples ? Math.sqrt(this.energy / this.samples) : 0;
  }

  resetMeasurement(): void {
    this.energy = 0;
    this.samples = 0;
    this.packetsReceived = 0;
    this.ear.reset();
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

  /** Resolves once `pred` holds (checked on every SIP message and every 100 ms); false on timeout. */
  async until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return true;
  }

  /** The caller hangs up (after a transfer: on the target). */
  hangup(): Promise<number> {
    const leg = this.current ?? this.leg;
    if (!leg) throw new Error('no call');
    this.stopTone();
    return this.sendInDialog(leg, 'BYE');
  }

  /**
   * A NOTIFY of our own in the call to ccedge (the REFER subscription's Event), e.g. a malformed
   * one; resolves with ccedge's answer.
   */
  notify(opts: { sipfrag: string; state?: string; event?: string; contentType?: string }): Promise<number> {
    const leg = this.leg;
    if (!leg) throw new Error('no call');
    return this.sendInDialog(leg, 'NOTIFY', {
      event: opts.event ?? 'refer',
      'subscription-state': opts.state ?? 'active;expires=60',
      'content-type': opts.contentType ?? 'message/sipfrag;version=2.0',
      contact: [{ uri: `sip:uac@${this.localIp}:${this.sipPort}`, params: {} }],
    }, opts.sipfrag);
  }

  /**
   * Says something: these 20 ms frames (in the call's codec, e.g. a speech corpus clip) go out
   * instead of the idle sound, paced like the rest; resolves once the last one is sent.
   */
  say(frames: readonly Buffer[]): Promise<void> {
    if (!this.sendTimer) return Promise.reject(new Error('no call'));
    this.voice.push(...frames);
    return new Promise((resolve) => this.voiceDone.push(resolve));
  }

  /**
   * Resolves once something loud was heard and then nothing loud for `quietMs` (a prompt has
   * finished); rejects after timeoutMs.
   */
  async waitForQuiet(quietMs: number, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.lastLoudAt === 0 || Date.now() - this.lastLoudAt < quietMs) {
      if (Date.now() > end) throw new Error(`no prompt followed by ${quietMs} ms of quiet within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Forget what was heard so far (waitForQuiet waits for the next prompt). */
  resetQuiet(): void {
    this.lastLoudAt = 0;
  }

  /** Presses a key: RFC 4733 events (PT 101) on the RTP socket, 100 ms with three end packets. */
  async sendDtmf(digit: string): Promise<void> {
    const remote = this.current?.remoteRtp;
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
    for (const w of this.waiters.splice(0)) w();
  }

  private newLeg(requestUri: string, toUri: string, opts: { from?: string; fromName?: string; headers?: Record<string, string> } = {}): Leg {
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
    const invite: SipRequest = {
      method: 'INVITE',
      uri: requestUri,
      version: '2.0',
      headers: {
        to: { uri: toUri, params: {} },
        from: { name: opts.fromName ? `"${opts.fromName}"` : undefined, uri: `sip:${opts.from ?? '5550100'}@${this.localIp}:${this.sipPort}`, params: { tag: randomBytes(4).toString('hex') } },
        'call-id': `${randomBytes(8).toString('hex')}@test-uac`,
        cseq: { method: 'INVITE', seq: 1 },
        contact: [{ uri: `sip:uac@${this.localIp}:${this.sipPort}`, params: {} }],
        via: [],
        'content-type': 'application/sdp',
        'max-forwards': 70,
        ...opts.headers,
      },
      content: sdp,
    };
    return { invite, toTag: '', cseq: 1, routeSet: [], remoteTarget: undefined, remoteRtp: undefined };
  }

  /** Sends a leg's INVITE; on 2xx: ACK, dialog state, remote media. Resolves with the final status. */
  private invite(leg: Leg): Promise<number> {
    return new Promise((resolve) => {
      let done = false;
      this.stack?.send(leg.invite, (rs: SipResponse) => {
        if (leg === this.leg) this.events.push(`${rs.status}`);
        if (rs.status < 200) return;
        if (rs.status < 300) {
          // Every 2xx (retransmissions too) gets an ACK; the dialog state is taken from the first.
          if (!done) {
            leg.toTag = String(rs.headers.to.params.tag ?? '');
            leg.routeSet = (rs.headers['record-route'] ?? []).map((r) => uriText(r.uri)).reverse();
            const contact = Array.isArray(rs.headers.contact) ? rs.headers.contact[0] : undefined;
            leg.remoteTarget = contact ? uriText(contact.uri) : undefined;
            leg.remoteRtp = parseMedia(rs.content ?? '');
          }
          this.stack?.send(this.inDialog(leg, 'ACK', rs.headers.cseq.seq));
        }
        if (done) return;
        done = true;
        resolve(rs.status);
      });
    });
  }

  private sendInDialog(leg: Leg, method: string, headers: Record<string, unknown> = {}, content?: string): Promise<number> {
    const rq = this.inDialog(leg, method);
    Object.assign(rq.headers, headers);
    if (content !== undefined) rq.content = content;
    return new Promise((resolve) => {
      let done = false;
      this.stack?.send(rq, (rs) => {
        if (rs.status < 200 || done) return;
        done = true;
        resolve(rs.status);
      });
    });
  }

  /**
   * A request in `leg`'s dialog. With a route set (a proxy record-routed): Request-URI = the
   * remote target, Route = the route set (RFC 3261 §12.2.1.1, loose routing); without one, as this
   * caller always did: to the address it called.
   */
  private inDialog(leg: Leg, method: string, ackSeq?: number): SipRequest {
    const invite = leg.invite;
    const routed = leg.routeSet.length > 0 && leg.remoteTarget !== undefined;
    return {
      method,
      uri: routed ? (leg.remoteTarget as string) : invite.uri,
      version: '2.0',
      headers: {
        to: { uri: invite.headers.to.uri, params: { tag: leg.toTag } },
        from: invite.headers.from,
        'call-id': invite.headers['call-id'],
        cseq: { method, seq: ackSeq ?? ++leg.cseq },
        via: [],
        'max-forwards': 70,
        ...(routed ? { route: leg.routeSet.map((uri) => ({ uri, params: {} })) } : {}),
      },
    };
  }

  private onRequest(rq: SipRequest, flow: Flow): void {
    try {
      this.handleRequest(rq, flow);
    } finally {
      for (const w of this.waiters.splice(0)) w();
    }
  }

  private handleRequest(rq: SipRequest, flow: Flow): void {
    const callId = rq.headers['call-id'];
    const leg = [this.leg, this.current].find((l) => l?.invite.headers['call-id'] === callId);
    if (rq.method === 'BYE') {
      this.stack?.send(sip.makeResponse(rq, leg ? 200 : 481, leg ? 'OK' : 'Call/Transaction Does Not Exist'));
      if (!leg) return;
      if (leg === this.current) this.stopTone();
      if (leg === this.leg) {
        this.byeReceived = true;
        for (const r of this.byeResolvers.splice(0)) r();
      } else {
        this.transferByeReceived = true;
      }
      return;
    }
    if (rq.method === 'REFER' && leg === this.leg && this.referHandling) {
      this.onRefer(rq, flow, this.referHandling);
      return;
    }
    if (rq.method !== 'ACK') this.stack?.send(sip.makeResponse(rq, 200, 'OK'));
  }

  /** RFC 3515 as a PBX does it: 202, NOTIFY 100, the new call, NOTIFY with its outcome. */
  private onRefer(rq: SipRequest, flow: Flow, how: ReferHandling): void {
    const referTo = rq.headers['refer-to'];
    const target = referTo && typeof referTo === 'object' && 'uri' in referTo ? uriText((referTo as NameAddr).uri) : typeof referTo === 'string' ? referTo : '';
    const referredBy = typeof rq.headers['referred-by'] === 'string' ? rq.headers['referred-by'] : undefined;
    const answered = how.status ?? (target ? 202 : 400);
    const seen: ReferSeen = {
      referTo: target,
      referredBy,
      uri: rq.uri,
      route: (rq.headers.route ?? []).map((r) => uriText(r.uri)),
      source: { address: flow.address, port: flow.port },
      answered,
      transferStatus: 0,
      notifies: [],
    };
    this.refers.push(seen);
    this.stack?.send(sip.makeResponse(rq, answered, answered < 300 ? 'Accepted' : 'Refused'));
    if (answered >= 300 || !this.leg) return;
    const referSeq = rq.headers.cseq.seq;
    const original = this.leg;
    const notify = (status: number, reason: string, final: boolean): void => {
      const entry = { sipfrag: status, answer: 0 };
      seen.notifies.push(entry);
      void this.sendInDialog(original, 'NOTIFY', {
        event: `refer;id=${referSeq}`,
        'subscription-state': final ? 'terminated;reason=noresource' : 'active;expires=60',
        'content-type': 'message/sipfrag;version=2.0',
        contact: [{ uri: `sip:uac@${this.localIp}:${this.sipPort}`, params: {} }],
      }, `SIP/2.0 ${status} ${reason}\r\n`).then((s) => {
        entry.answer = s;
        for (const w of this.waiters.splice(0)) w();
      });
    };
    notify(100, 'Trying', false);
    const parsed = sip.parseUri(target);
    const user = parsed?.user ?? 'target';
    const leg = this.newLeg(`sip:${user}@${how.via.host}:${how.via.port}`, target, { from: uriUser(original.invite.headers.from.uri) });
    void this.invite(leg).then((status) => {
      seen.transferStatus = status;
      if (status < 300) {
        // The PBX connected the caller to the target: from now on the caller talks to it.
        this.current = leg;
        this.acceptRtpFrom = leg.remoteRtp;
        notify(200, 'OK', true);
      } else {
        notify(status, 'Failed', true);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  private startTone(): void {
    if (this.sendTimer) return;
    const frames = this.idle === 'tone' ? sineFrames(this.toneHz, this.codec) : [Buffer.alloc(160, this.codec === 'PCMU' ? 0xff : 0xd5)];
    const pt = this.codec === 'PCMU' ? 0 : 8;
    const ssrc = randomBytes(4).readUInt32BE(0);
    let seq = 1;
    let ts = 0;
    let n = 0;
    const start = Date.now();
    const tick = (): void => {
      // Read per packet: after a transfer the same stream goes on to the target.
      const remote = this.current?.remoteRtp;
      if (!remote || !this.rtp) return;
      const header = Buffer.alloc(12);
      header[0] = 0x80;
      header[1] = pt | (n === 0 ? 0x80 : 0);
      header.writeUInt16BE(seq & 0xffff, 2);
      header.writeUInt32BE(ts >>> 0, 4);
      header.writeUInt32BE(ssrc, 8);
      const spoken = this.voice.shift();
      this.rtp.send(Buffer.concat([header, spoken ?? frames[n % frames.length]]), remote.port, remote.address);
      if (spoken && this.voice.length === 0) for (const done of this.voiceDone.splice(0)) done();
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

  private onRtp(msg: Buffer, address: string, port: number): void {
    if (msg.length < 12 || msg[0] >> 6 !== 2) return;
    const from = this.acceptRtpFrom;
    if (from && (from.address !== address || from.port !== port)) return;
    const pt = msg[1] & 0x7f;
    if (pt !== 0 && pt !== 8) return;
    this.packetsReceived++;
    const codec = pt === 0 ? 'PCMU' : 'PCMA';
    this.tones.push(msg.subarray(12), codec);
    const decode = pt === 0 ? ulawToLinear : alawToLinear;
    let packetEnergy = 0;
    for (let i = 12; i < msg.length; i++) {
      const s = decode(msg[i]);
      this.energy += s * s;
      packetEnergy += s * s;
      this.samples++;
    }
    // RMS above ~-40 dBFS: a prompt or tone, not line silence.
    if (msg.length > 12 && Math.sqrt(packetEnergy / (msg.length - 12)) > 300) this.lastLoudAt = Date.now();
    this.ear.push(msg.subarray(12), codec);
  }
}

function uriText(u: unknown): string {
  return typeof u === 'string' ? u : sip.stringifyUri(u as Parameters<typeof sip.stringifyUri>[0]);
}

function uriUser(uri: string): string {
  return sip.parseUri(uri)?.user ?? '5550100';
}

function parseMedia(sdp: string): { address: string; port: number } | undefined {
  const c = /^c=IN IP4 (\S+)/m.exec(sdp);
  const m = /^m=audio (\d+)/m.exec(sdp);
  return c && m ? { address: c[1], port: Number(m[1]) } : undefined;
}
