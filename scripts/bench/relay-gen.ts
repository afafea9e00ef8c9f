/**
 * Load generator for the relay and WebRTC benchmarks, run as its own process (child_process.fork)
 * so the daemon's CPU is measured apart from it. It is the PBX (a SIP UAC placing N calls to the
 * daemon, one RTP socket per call) and, for forwarded calls, the far end behind the trunk (a SIP
 * UAS on another loopback address answering the daemon's outbound INVITEs). Every leg sends G.711
 * frames at real 20 ms pacing, spread over ten 2 ms phases like independent phones; each payload
 * carries its stream id, sequence and send time, so the receiving side measures loss, one-way
 * latency through the daemon and RFC 3550 jitter. A baseline phase sends the same load from
 * socket to socket without the daemon, so the latency the daemon adds can be told apart from the
 * generator's own. In 'peer' mode there is no SIP: the same streams are relayed by rtpengine,
 * set up over its ng control protocol (offer/answer/delete), so the two relays carry the same load.
 *
 * Protocol (IPC messages): parent → {type:'start', config}; gen → {type:'ready', setup};
 * parent → {type:'measure', seconds}; gen → {type:'measured', stats};
 * parent → {type:'teardown'}; gen → {type:'done', teardown}.
 */
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import sip, { type SipRequest, type SipResponse, type Stack } from 'sip';
import { NgClient } from './ng-client';

export interface GenConfig {
  /**
   * 'relay': calls are forwarded by the daemon to our far end; 'echo': something echoes our audio (WebRTC agents);
   * 'peer': rtpengine relays caller and far streams, set up over ng (no SIP; daemon/caller/far SIP ports unused).
   */
  mode: 'relay' | 'echo' | 'peer';
  /** rtpengine's ng control address ('peer' mode). */
  ng?: { host: string; port: number };
  calls: number;
  daemon: { host: string; port: number };
  /** Called number (To user) of the calls. */
  to: string;
  callerIp: string;
  callerSipPort: number;
  farIp: string;
  farSipPort: number;
  setupRatePerS: number;
  baselineS: number;
}

export interface LatencyStats {
  packets: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface MeasuredStats {
  windowS: number;
  streams: number;
  sent: number;
  received: number;
  lost: number;
  lossPct: number;
  /** Packets received that were none of ours (e.g. hold tone) or duplicates. */
  foreign: number;
  latency: LatencyStats;
  jitterMeanMs: number;
  jitterMaxMs: number;
  /** Packets per second per stream actually sent (pacing check). */
  sendPpsPerStream: number;
  /** The generator's own CPU over the window (percent of one core). */
  generatorCpuPct: number;
  /** Worst lateness of the send loop behind its 20 ms schedule (ms). */
  sendLateMaxMs: number;
}

/**
 * The RTP engine (rtp-engine.c, compiled on first use): sockets, 20 ms pacing, payload stamps and
 * the receive-side measurements, in C so the generator leaves the cores to the daemon.
 */
export const ENGINE_SOURCE = path.join(__dirname, '..', '..', '..', 'scripts', 'bench', 'rtp-engine.c');
export const ENGINE_BINARY = path.join(__dirname, 'rtp-engine');

export function buildEngine(): string {
  const fresh = existsSync(ENGINE_BINARY) && statSync(ENGINE_BINARY).mtimeMs >= statSync(ENGINE_SOURCE).mtimeMs;
  if (!fresh) execFileSync('cc', ['-O2', '-o', ENGINE_BINARY, ENGINE_SOURCE, '-lm'], { stdio: 'inherit' });
  return ENGINE_BINARY;
}

class Engine {
  private readonly proc: ChildProcessByStdio<Writable, Readable, null>;
  private buf = '';
  private readonly ports = new Map<number, (port: number) => void>();
  private statsWaiter: ((s: MeasuredStats) => void) | undefined;

  constructor() {
    this.proc = spawn(buildEngine(), [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const port = /^port (\d+) (\d+)$/.exec(line);
        if (port) {
          this.ports.get(Number(port[1]))?.(Number(port[2]));
          this.ports.delete(Number(port[1]));
        } else if (line.startsWith('stats ')) {
          this.statsWaiter?.(JSON.parse(line.slice(6)) as MeasuredStats);
          this.statsWaiter = undefined;
        } else if (line) process.stderr.write(`rtp-engine: ${line}\n`);
      }
    });
  }

  private cmd(line: string): void {
    this.proc.stdin.write(`${line}\n`);
  }

  open(id: number, ip: string): Promise<number> {
    return new Promise((resolve) => {
      this.ports.set(id, resolve);
      this.cmd(`open ${id} ${ip}`);
    });
  }

  remote(id: number, ip: string, port: number): void {
    this.cmd(`remote ${id} ${ip} ${port}`);
  }

  active(id: number, on: boolean): void {
    this.cmd(`active ${id} ${on ? 1 : 0}`);
  }

  window(seconds: number): Promise<MeasuredStats> {
    return new Promise((resolve) => {
      this.statsWaiter = resolve;
      this.cmd(`window ${seconds}`);
    });
  }

  close(): void {
    this.cmd('quit');
  }
}

interface Stream {
  id: number;
  ip: string;
  port: number;
  remoteIp: string;
  remotePort: number;
  active: boolean;
}

function sdpOf(ip: string, port: number, pt = 0): string {
  return [
    'v=0',
    `o=gen 1 1 IN IP4 ${ip}`,
    's=-',
    `c=IN IP4 ${ip}`,
    't=0 0',
    `m=audio ${port} RTP/AVP ${pt} 101`,
    `a=rtpmap:${pt} ${pt === 0 ? 'PCMU' : 'PCMA'}/8000`,
    'a=rtpmap:101 telephone-event/8000',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

function parseSdp(sdp: string | undefined): { ip: string; port: number } | null {
  const c = /^c=IN IP4 (\S+)/m.exec(sdp ?? '');
  const m = /^m=audio (\d+)/m.exec(sdp ?? '');
  return c && m ? { ip: c[1], port: Number(m[1]) } : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface UacCall {
  invite: SipRequest;
  toTag: string;
  stream: Stream;
  status: number;
  byeStatus: number;
}

class Generator {
  private readonly engine = new Engine();
  private uac: Stack | undefined;
  private uas: Stack | undefined;
  private readonly callerStreams: Stream[] = [];
  private readonly farStreams: Stream[] = [];
  private farNext = 0;
  private readonly farByCallId = new Map<string, Stream>();
  private readonly uacCalls: UacCall[] = [];
  farByes = 0;
  farInvites = 0;
  private ng: NgClient | undefined;
  /** 'peer' mode: the ng call-id of call i, once offered. */
  private readonly peerCalls: string[] = [];
  private peerAnswered = 0;

  constructor(private readonly cfg: GenConfig) {}

  /** Both ends are ours (caller and far streams), relayed by the daemon or by rtpengine. */
  private get twoSided(): boolean {
    return this.cfg.mode === 'relay' || this.cfg.mode === 'peer';
  }

  private setRemote(s: Stream, ip: string, port: number): void {
    s.remoteIp = ip;
    s.remotePort = port;
    this.engine.remote(s.id, ip, port);
  }

  private setActive(s: Stream, on: boolean): void {
    s.active = on;
    this.engine.active(s.id, on);
  }

  async open(): Promise<void> {
    if (this.cfg.mode === 'peer') {
      if (!this.cfg.ng) throw new Error("'peer' mode needs the ng address");
      this.ng = new NgClient(this.cfg.ng.host, this.cfg.ng.port);
      return this.openStreams();
    }
    // SIP sockets first: the engine's RTP sockets take ephemeral ports that could be the SIP ports picked for us.
    this.uac = sip.create({ address: this.cfg.callerIp, port: this.cfg.callerSipPort, tcp: false, publicAddress: 'gen-uac.invalid' }, (rq) => this.onUacRequest(rq));
    if (this.cfg.mode === 'relay') {
      this.uas = sip.create({ address: this.cfg.farIp, port: this.cfg.farSipPort, tcp: false, publicAddress: 'gen-uas.invalid' }, (rq) => this.onUasRequest(rq));
    }
    await sleep(100);
    return this.openStreams();
  }

  private async openStreams(): Promise<void> {
    const n = this.cfg.calls;
    for (let i = 0; i < n; i++) {
      this.callerStreams.push({ id: i, ip: this.cfg.callerIp, port: await this.engine.open(i, this.cfg.callerIp), remoteIp: '', remotePort: 0, active: false });
      if (this.twoSided) this.farStreams.push({ id: n + i, ip: this.cfg.farIp, port: await this.engine.open(n + i, this.cfg.farIp), remoteIp: '', remotePort: 0, active: false });
    }
  }

  /** The same load from socket to socket, without the daemon: the generator's own latency. */
  async baseline(seconds: number): Promise<MeasuredStats> {
    const relay = this.twoSided;
    for (let i = 0; i < this.callerStreams.length; i++) {
      const a = this.callerStreams[i];
      const b = relay ? this.farStreams[i] : this.callerStreams[(i + 1) % this.callerStreams.length];
      this.setRemote(a, b.ip, b.port);
      this.setActive(a, true);
      if (relay) {
        this.setRemote(b, a.ip, a.port);
        this.setActive(b, true);
      }
    }
    await sleep(1000);
    const stats = await this.measure(seconds);
    for (const s of [...this.callerStreams, ...this.farStreams]) this.setActive(s, false);
    await sleep(200);
    return stats;
  }

  async setup(): Promise<{ placed: number; answered: number; failed: number; farAnswered: number; wallS: number }> {
    if (this.cfg.mode === 'peer') return this.setupPeer();
    const t0 = performance.now();
    const gap = 1000 / this.cfg.setupRatePerS;
    const pending: Array<Promise<void>> = [];
    for (let i = 0; i < this.cfg.calls; i++) {
      pending.push(this.placeCall(this.callerStreams[i]));
      await sleep(gap);
    }
    await Promise.race([Promise.all(pending), sleep(30_000)]);
    // Far legs answer after the daemon's INVITE; give the last ones a moment.
    const deadline = Date.now() + 10_000;
    while (this.cfg.mode === 'relay' && this.farStreams.filter((s) => s.active).length < this.uacCalls.filter((c) => c.status === 200).length && Date.now() < deadline) await sleep(100);
    return {
      placed: this.uacCalls.length,
      answered: this.uacCalls.filter((c) => c.status === 200).length,
      failed: this.uacCalls.filter((c) => c.status >= 300 || c.status === 0).length,
      farAnswered: this.farStreams.filter((s) => s.active).length,
      wallS: Math.round((performance.now() - t0) / 100) / 10,
    };
  }

  /**
   * Each call as a SIP proxy would drive rtpengine: offer with the caller stream's SDP (rtpengine
   * answers with the SDP for the far side: where the far stream sends), answer with the far
   * stream's SDP (rtpengine answers with the SDP for the caller: where the caller stream sends).
   */
  private async setupPeer(): Promise<{ placed: number; answered: number; failed: number; farAnswered: number; wallS: number }> {
    const ng = this.ng;
    if (!ng) throw new Error('ng client not open');
    const t0 = performance.now();
    const gap = 1000 / this.cfg.setupRatePerS;
    let failed = 0;
    for (let i = 0; i < this.cfg.calls; i++) {
      const a = this.callerStreams[i];
      const b = this.farStreams[i];
      const callId = `${randomBytes(8).toString('hex')}@gen`;
      const fromTag = `a${a.id}`;
      const toTag = `b${b.id}`;
      this.peerCalls.push(callId);
      try {
        const offer = await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': fromTag, sdp: sdpOf(a.ip, a.port) });
        const towardB = parseSdp(typeof offer.sdp === 'string' ? offer.sdp : undefined);
        const answer = await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': fromTag, 'to-tag': toTag, sdp: sdpOf(b.ip, b.port) });
        const towardA = parseSdp(typeof answer.sdp === 'string' ? answer.sdp : undefined);
        if (!towardA || !towardB) throw new Error(`no media address in rtpengine's SDP for call ${i}`);
        this.setRemote(b, towardB.ip, towardB.port);
        this.setRemote(a, towardA.ip, towardA.port);
        this.setActive(a, true);
        this.setActive(b, true);
        this.peerAnswered++;
      } catch (e) {
        failed++;
        if (failed <= 3) process.stderr.write(`relay-gen: call ${i} via rtpengine: ${(e as Error).message}\n`);
      }
      await sleep(gap);
    }
    return { placed: this.cfg.calls, answered: this.peerAnswered, failed, farAnswered: this.peerAnswered, wallS: Math.round((performance.now() - t0) / 100) / 10 };
  }

  private placeCall(stream: Stream): Promise<void> {
    const target = `${this.cfg.daemon.host}:${this.cfg.daemon.port}`;
    const port = stream.port;
    const rq: SipRequest = {
      method: 'INVITE',
      uri: `sip:${this.cfg.to}@${target}`,
      version: '2.0',
      headers: {
        to: { uri: `sip:${this.cfg.to}@${target}`, params: {} },
        from: { uri: `sip:${5550000 + stream.id}@${this.cfg.callerIp}:${this.cfg.callerSipPort}`, params: { tag: randomBytes(4).toString('hex') } },
        'call-id': `${randomBytes(8).toString('hex')}@gen`,
        cseq: { method: 'INVITE', seq: 1 },
        contact: [{ uri: `sip:gen@${this.cfg.callerIp}:${this.cfg.callerSipPort}`, params: {} }],
        via: [],
        'content-type': 'application/sdp',
        'max-forwards': 70,
      },
      content: sdpOf(this.cfg.callerIp, port),
    };
    const call: UacCall = { invite: rq, toTag: '', stream, status: 0, byeStatus: 0 };
    this.uacCalls.push(call);
    return new Promise((resolve) => {
      this.uac?.send(rq, (rs: SipResponse) => {
        if (rs.status < 200) return;
        if (call.status === 0) {
          call.status = rs.status;
          if (rs.status < 300) {
            call.toTag = String(rs.headers.to.params.tag ?? '');
            const media = parseSdp(rs.content);
            if (media) {
              this.setRemote(stream, media.ip, media.port);
              this.setActive(stream, true);
            }
          }
          resolve();
        }
        if (rs.status < 300) this.uac?.send(this.inDialog(call, 'ACK', 1));
      });
    });
  }

  private inDialog(call: UacCall, method: string, seq: number): SipRequest {
    const inv = call.invite;
    return {
      method,
      uri: inv.uri,
      version: '2.0',
      headers: {
        to: { uri: inv.headers.to.uri, params: { tag: call.toTag } },
        from: inv.headers.from,
        'call-id': inv.headers['call-id'],
        cseq: { method, seq },
        via: [],
        'max-forwards': 70,
      },
    };
  }

  private onUacRequest(rq: SipRequest): void {
    // BYE from the daemon (a failed forward) or anything else in a dialog: just accept it.
    if (rq.method === 'BYE') {
      const call = this.uacCalls.find((c) => c.invite.headers['call-id'] === rq.headers['call-id']);
      if (call) this.setActive(call.stream, false);
    }
    if (rq.method !== 'ACK') this.uac?.send(sip.makeResponse(rq, 200, 'OK'));
  }

  private onUasRequest(rq: SipRequest): void {
    const uas = this.uas;
    if (!uas) return;
    const callId = rq.headers['call-id'];
    if (rq.method === 'INVITE') {
      let s = this.farByCallId.get(callId);
      if (!s) {
        this.farInvites++;
        s = this.farStreams[this.farNext++];
        if (!s) {
          uas.send(sip.makeResponse(rq, 486, 'Busy Here'));
          return;
        }
        this.farByCallId.set(callId, s);
        const media = parseSdp(rq.content);
        if (media) this.setRemote(s, media.ip, media.port);
      }
      const rs = sip.makeResponse(rq, 200, 'OK');
      rs.headers.to = { ...rq.headers.to, params: { ...rq.headers.to.params, tag: `far${s.id}` } };
      rs.headers.contact = [{ uri: `sip:far@${this.cfg.farIp}:${this.cfg.farSipPort}`, params: {} }];
      rs.headers['content-type'] = 'application/sdp';
      rs.content = sdpOf(this.cfg.farIp, s.port);
      uas.send(rs);
      return;
    }
    if (rq.method === 'ACK') {
      const s = this.farByCallId.get(callId);
      if (s && s.remotePort && !s.active) this.setActive(s, true);
      return;
    }
    if (rq.method === 'BYE') {
      const s = this.farByCallId.get(callId);
      if (s) {
        this.setActive(s, false);
        this.farByes++;
      }
    }
    uas.send(sip.makeResponse(rq, 200, 'OK'));
  }

  measure(seconds: number): Promise<MeasuredStats> {
    return this.engine.window(seconds);
  }

  async teardown(): Promise<{ byeOk: number; byeFailed: number; farByes: number; farInvites: number }> {
    if (this.cfg.mode === 'peer') return this.teardownPeer();
    const gap = 1000 / this.cfg.setupRatePerS;
    const byes: Array<Promise<void>> = [];
    for (const call of this.uacCalls) {
      if (call.status !== 200) continue;
      this.setActive(call.stream, false);
      byes.push(
        new Promise((resolve) => {
          this.uac?.send(this.inDialog(call, 'BYE', 2), (rs: SipResponse) => {
            if (rs.status >= 200) {
              call.byeStatus = rs.status;
              resolve();
            }
          });
        }),
      );
      await sleep(gap);
    }
    await Promise.race([Promise.all(byes), sleep(35_000)]);
    const answered = this.uacCalls.filter((c) => c.status === 200).length;
    const deadline = Date.now() + 5000;
    while (this.cfg.mode === 'relay' && this.farByes < answered && Date.now() < deadline) await sleep(100);
    return {
      byeOk: this.uacCalls.filter((c) => c.byeStatus === 200).length,
      byeFailed: this.uacCalls.filter((c) => c.status === 200 && c.byeStatus !== 200).length,
      farByes: this.farByes,
      farInvites: this.farInvites,
    };
  }

  /** ng delete of every call; byeOk/byeFailed count the deletes. */
  private async teardownPeer(): Promise<{ byeOk: number; byeFailed: number; farByes: number; farInvites: number }> {
    const gap = 1000 / this.cfg.setupRatePerS;
    let ok = 0;
    let failed = 0;
    for (let i = 0; i < this.peerCalls.length; i++) {
      this.setActive(this.callerStreams[i], false);
      this.setActive(this.farStreams[i], false);
      try {
        await this.ng?.request({ command: 'delete', 'call-id': this.peerCalls[i], 'from-tag': `a${this.callerStreams[i].id}` });
        ok++;
      } catch {
        failed++;
      }
      await sleep(gap);
    }
    return { byeOk: ok, byeFailed: failed, farByes: 0, farInvites: 0 };
  }

  close(): void {
    this.ng?.close();
    this.uac?.destroy();
    this.uas?.destroy();
    this.engine.close();
  }
}

type ParentMessage = { type: 'start'; config: GenConfig } | { type: 'measure'; seconds: number } | { type: 'teardown' };

if (require.main === module) {
  let gen: Generator | undefined;
  const reply = (m: Record<string, unknown>): void => {
    process.send?.(m);
  };
  process.on('message', (msg: ParentMessage) => {
    void (async () => {
      try {
        if (msg.type === 'start') {
          gen = new Generator(msg.config);
          await gen.open();
          const baseline = msg.config.baselineS > 0 ? await gen.baseline(msg.config.baselineS) : null;
          const setup = await gen.setup();
          reply({ type: 'ready', setup, baseline });
        } else if (msg.type === 'measure' && gen) {
          reply({ type: 'measured', stats: await gen.measure(msg.seconds) });
        } else if (msg.type === 'teardown' && gen) {
          const teardown = await gen.teardown();
          gen.close();
          reply({ type: 'done', teardown });
          setTimeout(() => process.exit(0), 100);
        }
      } catch (e) {
        reply({ type: 'error', error: (e as Error).stack ?? String(e) });
      }
    })();
  });
}
