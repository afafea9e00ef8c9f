import WebSocket from 'ws';
import type { MonitorMode, SupervisorServerMessage } from '../../gateway/supervisor/protocol';
import { WeriftAnswerer } from '../../media/test/helpers/werift-answerer';

/**
 * A supervisor without a browser: logs in at /supervisor/login, speaks the /supervisor/ws
 * protocol and answers each monitorOffer with a werift peer (like WeriftAgent for agents). For
 * tests where one Chromium per monitored call does not fit (lifecycle, load).
 */
export class WeriftSupervisor {
  readonly inbox: SupervisorServerMessage[] = [];
  private readonly peers = new Map<string, WeriftAnswerer>();
  private waiters: Array<() => void> = [];
  private refs = 0;

  private constructor(
    readonly name: string,
    private readonly ws: WebSocket,
  ) {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as SupervisorServerMessage;
      this.inbox.push(msg);
      void this.react(msg);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async login(httpPort: number, name: string, password: string): Promise<WeriftSupervisor> {
    const res = await fetch(`http://127.0.0.1:${httpPort}/supervisor/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ agent: name, password }),
    });
    if (res.status !== 200) throw new Error(`supervisor login ${name}: ${res.status}`);
    const { token } = (await res.json()) as { token: string };
    const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/supervisor/ws`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const sup = new WeriftSupervisor(name, ws);
    sup.send({ type: 'hello', token });
    await sup.waitFor((m) => m.type === 'welcome');
    return sup;
  }

  send(msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ v: 1, ref: `r${++this.refs}`, ...msg }));
  }

  monitor(callId: string, mode: MonitorMode): void {
    this.send({ type: 'monitor', callId, mode });
  }

  stop(callId: string): void {
    this.send({ type: 'stopMonitor', callId });
  }

  /** Resolves with the first message (already received or future) that matches. */
  async waitFor<T extends SupervisorServerMessage>(pred: (m: SupervisorServerMessage) => boolean, timeoutMs = 15_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.inbox.find(pred);
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

  /** Audio packets the monitoring peer of `callId` received so far. */
  receivedCount(callId: string): number {
    return this.peers.get(callId)?.received.length ?? 0;
  }

  /** Drops messages already handled (a long run keeps its inbox small). */
  forget(callId: string): void {
    for (let i = this.inbox.length - 1; i >= 0; i--) {
      const m = this.inbox[i];
      if ('callId' in m && m.callId === callId) this.inbox.splice(i, 1);
    }
  }

  /** The page goes away (tab closed, network gone): the socket closes without a logout. */
  drop(): void {
    this.ws.terminate();
  }

  async close(): Promise<void> {
    for (const p of this.peers.values()) await p.pc.close().catch(() => undefined);
    this.peers.clear();
    if (this.ws.readyState === this.ws.OPEN) this.send({ type: 'logout' });
    this.ws.close();
  }

  private async react(msg: SupervisorServerMessage): Promise<void> {
    if (msg.type === 'monitorOffer') {
      await this.peers.get(msg.callId)?.pc.close().catch(() => undefined);
      const peer = await WeriftAnswerer.answer(msg.sdp);
      this.peers.set(msg.callId, peer);
      this.send({ type: 'webrtcAnswer', callId: msg.callId, sdp: peer.answer });
    }
    if (msg.type === 'monitorEnded') {
      const peer = this.peers.get(msg.callId);
      this.peers.delete(msg.callId);
      await peer?.pc.close().catch(() => undefined);
    }
  }
}
