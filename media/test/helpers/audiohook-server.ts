import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** How the test endpoint behaves once a session is open. */
export type AudioHookBehaviour =
  /** A correct AudioHook v2 server. */
  | 'good'
  /** Answers `opened`, then sends junk (text and binary) every 20 ms. */
  | 'garbage'
  /** Answers `opened`, then never reads the socket again (TCP backs up). */
  | 'slow'
  /** Answers `opened`, then drops the TCP connection after `disconnectAfterMs`. */
  | 'disconnect';

export interface ReceivedMessage {
  type: string;
  seq: number;
  position: string;
  parameters: Record<string, unknown>;
  /** Audio bytes received before this message. */
  audioBytesBefore: number;
}

/** One connection as the endpoint saw it. */
export class EndpointSession {
  readonly messages: ReceivedMessage[] = [];
  /** 'slow': starts reading the socket again. */
  resumeReading: () => void = () => undefined;
  /** mTLS: the CN of the client certificate the box presented. */
  clientCn: string | undefined;
  audioBytes = 0;
  audioFrames = 0;
  /** Left (external) and right (internal) samples, de-interleaved (stereo sessions). */
  readonly external: number[] = [];
  readonly internal: number[] = [];
  channels: string[] = [];
  closedSocket = false;
  private seq = 0;
  private clientseq = 0;

  constructor(
    readonly headers: IncomingMessage['headers'],
    private readonly ws: WebSocket,
  ) {}

  get open(): ReceivedMessage | undefined {
    return this.messages.find((m) => m.type === 'open');
  }

  send(type: string, parameters: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ version: '2', type, seq: ++this.seq, clientseq: this.clientseq, id: String(this.open?.parameters.conversationId ?? 'x'), parameters }));
  }

  /** A final transcript entity, as an AudioHook transcription endpoint sends it. */
  sendTranscript(channel: 'external' | 'internal', text: string, offsetS: number, durationS: number, extra: Record<string, unknown> = {}): void {
    this.send('event', {
      entities: [
        {
          type: 'transcript',
          data: {
            id: `t${this.seq}`,
            channel,
            isFinal: true,
            offset: `PT${offsetS}S`,
            duration: `PT${durationS}S`,
            alternatives: [{ confidence: 0.87, interpretations: [{ type: 'display', transcript: text }] }],
            ...extra,
          },
        },
      ],
    });
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  /** @internal */
  onText(text: string, reply: boolean): void {
    const m = JSON.parse(text) as { type: string; seq: number; position: string; parameters: Record<string, unknown> };
    this.clientseq = m.seq;
    this.messages.push({ type: m.type, seq: m.seq, position: m.position, parameters: m.parameters, audioBytesBefore: this.audioBytes });
    if (!reply) return;
    if (m.type === 'open') {
      const media = (m.parameters.media as Array<{ channels: string[] }>)[0];
      this.channels = media.channels;
      this.send('opened', { media: [media], startPaused: false });
    } else if (m.type === 'ping') {
      this.send('pong', {});
    } else if (m.type === 'close') {
      this.send('closed', {});
    }
  }

  /** @internal */
  onAudio(data: Buffer, keep: boolean): void {
    this.audioBytes += data.length;
    this.audioFrames++;
    if (!keep || this.channels.length !== 2) return;
    for (let i = 0; i + 1 < data.length; i += 2) {
      this.external.push(data[i]);
      this.internal.push(data[i + 1]);
    }
  }
}

/**
 * A small AudioHook v2 endpoint on loopback for tests: checks the API key, answers open/ping/close,
 * records what it receives (messages with the audio bytes before each, de-interleaved µ-law), and
 * can misbehave (garbage, a reader that stops reading, a dropped connection).
 */
export class TestAudioHookServer {
  readonly sessions: EndpointSession[] = [];
  behaviour: AudioHookBehaviour = 'good';
  /** false: only count audio bytes (benchmarks), do not keep the samples. */
  keepAudio = true;
  disconnectAfterMs = 1000;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly http: Server,
    readonly port: number,
    readonly apiKey: string,
    private readonly secure = false,
  ) {}

  /** `tls`: wss with this certificate; `ca` set: clients must present a certificate it signed (mTLS). */
  static async start(apiKey = 'fork-test-key-0123', tls?: { cert: Buffer; key: Buffer; ca?: Buffer }): Promise<TestAudioHookServer> {
    const refuse = (_req: IncomingMessage, res: { writeHead(s: number): { end(): void } }): void => res.writeHead(426).end();
    const http = tls ? createTlsServer({ cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: tls.ca !== undefined, rejectUnauthorized: tls.ca !== undefined }, refuse) : createServer(refuse);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const server = new TestAudioHookServer(http, (http.address() as AddressInfo).port, apiKey, tls !== undefined);
    http.on('upgrade', (req, socket: Socket, head) => server.onUpgrade(req, socket, head));
    return server;
  }

  get url(): string {
    return `${this.secure ? 'wss' : 'ws'}://127.0.0.1:${this.port}/audiohook`;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const s of this.sockets) s.destroy();
    this.wss.close();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    if (req.headers['x-api-key'] !== this.apiKey) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const s = new EndpointSession(req.headers, ws);
      if (this.secure) s.clientCn = (socket as TLSSocket).getPeerCertificate().subject?.CN as string | undefined;
      this.sessions.push(s);
      const behaviour = this.behaviour;
      ws.on('close', () => (s.closedSocket = true));
      ws.on('error', () => undefined);
      ws.on('message', (data: Buffer, isBinary) => {
        if (isBinary) return s.onAudio(data, this.keepAudio);
        const text = data.toString('utf8');
        const first = s.open === undefined;
        s.onText(text, behaviour === 'good' || first);
        if (!first) return;
        if (behaviour === 'garbage') {
          let n = 0;
          const t = setInterval(() => {
            if (ws.readyState !== ws.OPEN) return clearInterval(t);
            n++;
            ws.send(n % 3 === 0 ? Buffer.from([0xde, 0xad, 0xbe, 0xef]) : n % 3 === 1 ? '{"version":"2","type":"nonsense"' : JSON.stringify({ version: '2', type: 'event', seq: n, clientseq: 1, id: 'x', parameters: { entities: [{ type: 'transcript', data: { channel: 'sideways' } }] } }));
          }, 20);
          this.timers.add(t);
        } else if (behaviour === 'slow') {
          socket.pause();
          s.resumeReading = () => socket.resume();
        } else if (behaviour === 'disconnect') {
          const t = setTimeout(() => socket.destroy(), this.disconnectAfterMs);
          this.timers.add(t);
        }
      });
    });
  }
}
