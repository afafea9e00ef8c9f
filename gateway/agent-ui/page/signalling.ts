/**
 * WebSocket client for /ws (protocol v1): sends `hello` on every (re)connect, reconnects with
 * backoff 1 s, 2 s, 4 s, 8 s, 10 s, 10 s … after an unexpected close, and pings once the session
 * is welcomed so a dead connection is noticed even when the browser does not report it.
 */
import type { Disposition } from '../../kpi/kpi';
import type { ClientMessage, ServerMessage } from '../protocol';

/** The protocol version this page speaks (checked against protocol.ts at type-check time). */
export const V = 1 satisfies ClientMessage['v'];

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/**
 * The agent's disposition of its last call (protocol.ts `disposition`). Spelled out here as well
 * so this page builds against a protocol.ts with or without it; the union is the same then.
 */
export type DispositionOutgoing = { type: 'disposition'; callId: string; disposition: Disposition };

/** A client message without the envelope fields the client adds (`v`, `ref`). */
export type Outgoing = DistributiveOmit<Exclude<ClientMessage, { type: 'hello' }>, 'v' | 'ref'> | DispositionOutgoing;

export interface SignallingHandlers<In = ServerMessage> {
  /** Socket is open and `hello` has been sent (the server answers `welcome` or `error`). */
  opened(): void;
  message(msg: In): void;
  /** The socket closed or went silent without stop(); a reconnect is scheduled in `retryInMs`. */
  down(retryInMs: number): void;
}

const BACKOFF_MS = [1000, 2000, 4000, 8000, 10000];
const PING_EVERY_MS = 15_000;
/** No frame at all for this long (pings are answered by `pong`) means the connection is dead. */
const SILENCE_LIMIT_MS = 40_000;

/**
 * `In`/`Out`: the server's and the page's messages; the agent protocol by default, the supervisor
 * page passes its own (same hello/ping/logout framing).
 */
export class Signalling<In = ServerMessage, Out extends { type: string } = Outgoing> {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private retryTimer: number | undefined;
  private beatTimer: number | undefined;
  private lastRx = 0;
  private welcomed = false;
  private stopped = true;
  private seq = 0;

  constructor(
    private readonly url: string,
    private readonly token: () => string | null,
    private readonly on: SignallingHandlers<In>,
  ) {}

  /** Connect (or reconnect now, skipping any pending backoff). */
  start(): void {
    this.stopped = false;
    window.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.ws) this.open();
  }

  /** Close for good (logout, session invalid): no reconnect. */
  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.drop(1000);
  }

  /** The server accepted `hello`: reset the backoff and start pinging. */
  markWelcomed(): void {
    this.attempt = 0;
    this.welcomed = true;
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Sends a message; returns its `ref`, or null if the socket is not open. */
  send(msg: Out): string | null {
    return this.sendFrame(msg);
  }

  private sendFrame(msg: { type: string }): string | null {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return null;
    const ref = `p${++this.seq}`;
    ws.send(JSON.stringify({ v: V, ref, ...msg }));
    return ref;
  }

  private open(): void {
    const token = this.token();
    if (!token) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    this.lastRx = Date.now();
    ws.onopen = () => {
      this.lastRx = Date.now();
      ws.send(JSON.stringify({ v: V, type: 'hello', token } satisfies ClientMessage));
      window.clearInterval(this.beatTimer);
      this.beatTimer = window.setInterval(() => this.heartbeat(), PING_EVERY_MS);
      this.on.opened();
    };
    ws.onmessage = (ev: MessageEvent) => {
      this.lastRx = Date.now();
      if (typeof ev.data !== 'string') return;
      let msg: unknown;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object' || typeof (msg as { type?: unknown }).type !== 'string') return;
      this.on.message(msg as In);
    };
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      window.clearInterval(this.beatTimer);
      this.scheduleReconnect();
    };
  }

  private heartbeat(): void {
    if (Date.now() - this.lastRx > SILENCE_LIMIT_MS) {
      this.drop(4000);
      this.scheduleReconnect();
      return;
    }
    if (this.welcomed) this.sendFrame({ type: 'ping' });
  }

  /** Detach and close the current socket without triggering its close handler. */
  private drop(code: number): void {
    window.clearInterval(this.beatTimer);
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close(code);
    } catch {
      /* already closed */
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)]!;
    this.attempt++;
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped && !this.ws) this.open();
    }, delay);
    this.on.down(delay);
  }
}
