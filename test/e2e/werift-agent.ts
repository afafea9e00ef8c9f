import WebSocket from 'ws';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { WeriftAnswerer } from '../../media/test/helpers/werift-answerer';
import { g711Of, toneFrames, ToneMeter, type ToneReport } from './tones';

/**
 * An agent without a browser: logs in over HTTP, speaks the /ws protocol and answers the WebRTC
 * offer with a werift peer. For tests and load where one Chromium per call does not fit.
 */
export class WeriftAgent {
  readonly inbox: ServerMessage[] = [];
  private readonly peers = new Map<string, WeriftAnswerer>();
  private waiters: Array<() => void> = [];
  private refs = 0;
  autoAnswer = true;
  /**
   * A desk whose media never connects: it answers the WebRTC offer with a real SDP, then closes
   * its peer before ICE can run, so the appliance's ICE/DTLS times out (a blocked UDP path).
   */
  brokenMedia = false;
  /**
   * Tone peer: once a call's media connects, send this frequency (G.711, 20 ms pacing) until the
   * call ends; null sends nothing (the appliance then relays silence-free nothing to the caller).
   */
  toneHz: number | null = null;
  private readonly toneTimers = new Map<string, NodeJS.Timeout>();

  private constructor(
    readonly name: string,
    private readonly ws: WebSocket,
  ) {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as ServerMessage;
      this.inbox.push(msg);
      void this.react(msg);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /**
   * `opts.newPassword`: with a one-time password the box answers 403 AGENT_PASSWORD_CHANGE_REQUIRED;
   * the login is then sent again with this new password, as the agent page does.
   */
  static async login(httpPort: number, name: string, password: string, opts: { newPassword?: string } = {}): Promise<WeriftAgent> {
    const post = (body: Record<string, string>): Promise<Response> =>
      fetch(`http://127.0.0.1:${httpPort}/agent/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    let res = await post({ agent: name, password });
    if (res.status === 403 && opts.newPassword !== undefined) {
      const err = (await res.json()) as { error?: { code?: string } };
      if (err.error?.code !== 'AGENT_PASSWORD_CHANGE_REQUIRED') throw new Error(`login ${name}: 403 ${JSON.stringify(err)}`);
      res = await post({ agent: name, password, newPassword: opts.newPassword });
    }
    if (res.status !== 200) throw new Error(`login ${name}: ${res.status} ${await res.text()}`);
    const { token } = (await res.json()) as { token: string };
    const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/ws`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const agent = new WeriftAgent(name, ws);
    agent.send({ type: 'hello', token });
    await agent.waitFor((m) => m.type === 'welcome');
    return agent;
  }

  send(msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ v: 1, ref: `r${++this.refs}`, ...msg }));
  }

  available(): void {
    this.send({ type: 'setState', state: 'available' });
  }

  hangup(callId: string): void {
    this.send({ type: 'hangup', callId });
  }

  /** Resolves with the first message (already received or future) that matches. */
  async waitFor<T extends ServerMessage>(pred: (m: ServerMessage) => boolean, timeoutMs = 15_000, from = 0): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.inbox.slice(from).find(pred);
      if (found) return found as T;
      if (Date.now() > end) throw new Error(`${this.name}: no matching message in ${timeoutMs} ms; got ${this.inbox.map((m) => m.type).join(',')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  peer(callId: string): WeriftAnswerer | undefined {
    return this.peers.get(callId);
  }

  /** How many audio packets the call's peer has received so far: a mark for hears(). */
  receivedCount(callId: string): number {
    return this.peers.get(callId)?.received.length ?? 0;
  }

  /** The frequencies in the audio received on `callId` since packet `from` (a receivedCount()). */
  hears(callId: string, from = 0, candidates?: readonly number[]): ToneReport {
    const meter = new ToneMeter(candidates);
    for (const p of this.peers.get(callId)?.received.slice(from) ?? []) {
      const codec = g711Of(p.payloadType);
      if (codec) meter.push(p.payload, codec);
    }
    return meter.report();
  }

  async close(): Promise<void> {
    for (const t of this.toneTimers.values()) clearTimeout(t);
    this.toneTimers.clear();
    for (const p of this.peers.values()) await p.pc.close().catch(() => undefined);
    this.peers.clear();
    if (this.ws.readyState === this.ws.OPEN) this.send({ type: 'logout' });
    this.ws.close();
  }

  /** Sends `hz` on the call's peer every 20 ms (drift-corrected) from when its media connects. */
  private startTone(callId: string, peer: WeriftAnswerer, hz: number): void {
    const pt = Number(/^m=audio \d+ \S+ (\d+)/m.exec(peer.answer)?.[1]);
    const codec = g711Of(pt);
    if (!codec) throw new Error(`${this.name}: no G.711 codec in the answer (first PT ${pt})`);
    const frames = toneFrames(codec, hz);
    let n = 0;
    let start = 0;
    const tick = (): void => {
      if (this.peers.get(callId) !== peer) return;
      if (peer.connectionState !== 'connected') {
        // Not up yet: look again shortly (bounded by the call: callEnded or close() stops it).
        this.toneTimers.set(callId, setTimeout(tick, 20));
        return;
      }
      if (n === 0) start = Date.now();
      peer.sendAudio(frames[n % frames.length], n * 160, n === 0);
      n++;
      this.toneTimers.set(callId, setTimeout(tick, Math.max(0, start + n * 20 - Date.now())));
    };
    tick();
  }

  private async react(msg: ServerMessage): Promise<void> {
    if (msg.type === 'ringing' && this.autoAnswer) this.send({ type: 'answer', callId: msg.call.callId });
    if (msg.type === 'webrtcOffer') {
      const peer = await WeriftAnswerer.answer(msg.sdp);
      if (this.brokenMedia) await peer.pc.close().catch(() => undefined);
      else this.peers.set(msg.callId, peer);
      this.send({ type: 'webrtcAnswer', callId: msg.callId, sdp: peer.answer });
      if (!this.brokenMedia && this.toneHz !== null) this.startTone(msg.callId, peer, this.toneHz);
    }
    if (msg.type === 'callEnded') {
      clearTimeout(this.toneTimers.get(msg.callId));
      this.toneTimers.delete(msg.callId);
      const peer = this.peers.get(msg.callId);
      this.peers.delete(msg.callId);
      await peer?.pc.close().catch(() => undefined);
    }
  }
}
