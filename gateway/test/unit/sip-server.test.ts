import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { configSchema } from '../../config/schema';
import { createLogger } from '../../logging';
import { Metrics } from '../../metrics';
import { ALLOW_HEADER } from '../../sip/messages';
import { SipServer, type IncomingInvite, type RejectedInvite } from '../../sip/sip-server';
import { freePort } from '../../../test/e2e/harness';

/*
 * SipServer as a PBX sees it: a real server on loopback, raw SIP text over real UDP sockets,
 * and the responses (status, reason, headers) that come back. Sources: 127.0.0.1 is the trunk's
 * PBX; 127.0.0.3 is only the trunk's outbound target (the transport gate admits it, the trunk's
 * allow-list does not); 127.0.0.2 is nobody's.
 */

interface Response {
  status: number;
  reason: string;
  raw: string;
  header(name: string): string | undefined;
}

function parseResponse(text: string): Response | undefined {
  const m = /^SIP\/2\.0 (\d{3}) ([^\r\n]*)\r\n([\s\S]*?)\r\n\r\n/.exec(text);
  if (!m) return undefined;
  const lines = m[3].split('\r\n');
  return {
    status: Number(m[1]),
    reason: m[2],
    raw: text,
    header: (name) => lines.find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.replace(/^[^:]+:\s*/, ''),
  };
}

/** One UDP socket of a peer: sends what it is given, keeps every response. */
class Peer {
  readonly responses: Response[] = [];
  private readonly waiters: Array<{ pred: (r: Response) => boolean; resolve: (r: Response) => void }> = [];

  private constructor(
    private readonly sock: Socket,
    readonly ip: string,
    readonly port: number,
    private readonly target: number,
  ) {
    sock.on('message', (m) => {
      const r = parseResponse(m.toString('latin1'));
      if (!r) return;
      this.responses.push(r);
      for (const w of [...this.waiters]) {
        if (!w.pred(r)) continue;
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(r);
      }
    });
  }

  static async open(ip: string, target: number): Promise<Peer> {
    const s = createSocket('udp4');
    s.bind(0, ip);
    await once(s, 'listening');
    return new Peer(s, ip, s.address().port, target);
  }

  send(text: string): void {
    this.sock.send(text, this.target, '127.0.0.1');
  }

  /** The first response (already received or to come) for `callId` with a status matching `status`. */
  response(callId: string, status: (s: number) => boolean = (s) => s >= 200): Promise<Response> {
    const pred = (r: Response): boolean => r.header('call-id') === callId && status(r.status);
    const seen = this.responses.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (r: Response) => (clearTimeout(timer), resolve(r)) };
      // A safety net so a missing answer fails with a message instead of the mocha timeout.
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no matching response for ${callId}; got: ${this.responses.map((r) => `${r.status} ${r.reason}`).join(', ')}`));
      }, 10_000);
      this.waiters.push(w);
    });
  }

  close(): void {
    this.sock.close();
  }
}

interface RequestOpts {
  method: string;
  user?: string;
  uri?: string;
  callId?: string;
  branch?: string;
  toTag?: string;
  cseq?: string;
  maxForwards?: string;
  extra?: string[];
  body?: string;
}

const SDP = ['v=0', 'o=pbx 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 40000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');

/** A request as a PBX writes it; `callId` and `branch` come back for matching and CANCEL. */
function request(peer: Peer, serverPort: number, o: RequestOpts): { text: string; callId: string; branch: string; uri: string } {
  const callId = o.callId ?? `${randomBytes(8).toString('hex')}@pbx`;
  const branch = o.branch ?? `z9hG4bK${randomBytes(6).toString('hex')}`;
  const uri = o.uri ?? `sip:${o.user ?? 'support'}@127.0.0.1:${serverPort}`;
  const body = o.body ?? (o.method === 'INVITE' ? SDP : '');
  const lines = [
    `${o.method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${peer.ip}:${peer.port};branch=${branch};rport`,
    `Max-Forwards: ${o.maxForwards ?? '70'}`,
    `From: <sip:5550100@${peer.ip}>;tag=pbx${randomBytes(3).toString('hex')}`,
    `To: <sip:${o.user ?? 'support'}@127.0.0.1>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${callId}`,
    `CSeq: ${o.cseq ?? `1 ${o.method}`}`,
    `Contact: <sip:pbx@${peer.ip}:${peer.port}>`,
    ...(o.extra ?? []),
    ...(body ? ['Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ];
  return { text: lines.join('\r\n'), callId, branch, uri };
}

async function until(what: string, pred: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`not met: ${what}`);
}

async function metricValue(metrics: Metrics, name: string, labels: string): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function newServer(port: number, metrics: Metrics, invites: IncomingInvite[], rejected: RejectedInvite[]): Promise<SipServer> {
  const config = configSchema.parse({
    site: { id: 's', deviceId: 'unit' },
    sip: { host: '127.0.0.1', port, tcp: false, tls: { enabled: false }, userAgent: 'ccedge-unit' },
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], maxCalls: 1, outbound: { host: '127.0.0.3', port: 5060 } }],
  });
  const server = new SipServer(config, createLogger('silent'), metrics, {
    onInvite: (inv) => {
      invites.push(inv);
      // "busy" is refused at once; anything else is left ringing for the test to end.
      if (inv.rq.uri.startsWith('sip:busy@')) inv.dialog.reject(486, 'Busy Here');
    },
    onRejectedInvite: (r) => void rejected.push(r),
  });
  await server.start();
  return server;
}

describe('SipServer on the wire (raw UDP from loopback peers)', function () {
  this.timeout(30_000);
  let server: SipServer;
  let port: number;
  let metrics: Metrics;
  let pbx: Peer;
  const invites: IncomingInvite[] = [];
  const rejected: RejectedInvite[] = [];
  const peers: Peer[] = [];

  before(async () => {
    port = await freePort();
    metrics = new Metrics();
    server = await newServer(port, metrics, invites, rejected);
    pbx = await Peer.open('127.0.0.1', port);
    peers.push(pbx);
  });
  after(async () => {
    for (const p of peers) p.close();
    await server.close();
  });

  async function ask(peer: Peer, o: RequestOpts): Promise<Response> {
    const rq = request(peer, port, o);
    peer.send(rq.text);
    return peer.response(rq.callId);
  }

  it('answers OPTIONS with 200, a To-tag, and Allow/Supported/Accept of what it implements', async () => {
    const r = await ask(pbx, { method: 'OPTIONS' });
    assert.equal(r.status, 200);
    assert.equal(r.header('allow'), ALLOW_HEADER);
    assert.equal(r.header('supported'), 'timer');
    assert.equal(r.header('accept'), 'application/sdp');
    assert.equal(r.header('user-agent'), 'ccedge-unit');
    assert.match(r.header('to') ?? '', /;tag=[0-9a-f]+/);
    assert.match(r.header('via') ?? '', /received=127\.0\.0\.1/);
  });

  it('answers Max-Forwards 0 normally (a UAS is no proxy: no 483), but refuses Max-Forwards 300 with 400', async () => {
    assert.equal((await ask(pbx, { method: 'OPTIONS', maxForwards: '0' })).status, 200);
    const bad = await ask(pbx, { method: 'OPTIONS', maxForwards: '300' });
    assert.equal(bad.status, 400);
    assert.equal(bad.reason, 'Bad Max-Forwards');
    assert.ok((await metricValue(metrics, 'ccedge_sip_rejections_total', 'status="400",code="SIP_BAD_REQUEST"')) >= 1);
  });

  it('refuses methods it does not take: REGISTER 405 and an unknown method 501, both with Allow; a mailto: URI 416', async () => {
    const register = await ask(pbx, { method: 'REGISTER' });
    assert.equal(register.status, 405);
    assert.equal(register.header('allow'), ALLOW_HEADER);
    const unknown = await ask(pbx, { method: 'FROBNICATE' });
    assert.equal(unknown.status, 501);
    assert.equal(unknown.header('allow'), ALLOW_HEADER);
    const mailto = await ask(pbx, { method: 'OPTIONS', uri: 'mailto:support@example.com' });
    assert.equal(mailto.status, 416);
  });

  it('answers 481 to a CANCEL of no transaction, a BYE of no dialog, and an out-of-dialog INFO', async () => {
    const before = await metricValue(metrics, 'ccedge_sip_rejections_total', 'status="481",code="SIP_NO_DIALOG"');
    const cancel = await ask(pbx, { method: 'CANCEL', user: 'support' });
    assert.equal(cancel.status, 481);
    assert.equal(cancel.reason, 'Call/Transaction Does Not Exist');
    assert.equal((await ask(pbx, { method: 'BYE', toTag: 'nosuchdialog' })).status, 481);
    assert.equal((await ask(pbx, { method: 'INFO' })).status, 481);
    assert.equal(await metricValue(metrics, 'ccedge_sip_rejections_total', 'status="481",code="SIP_NO_DIALOG"'), before + 3);
  });

  it('drops a datagram from outside every allow-list before parsing: no answer, counted as forbidden', async () => {
    const stranger = await Peer.open('127.0.0.2', port);
    peers.push(stranger);
    const before = await metricValue(metrics, 'ccedge_sip_dropped_total', 'transport="udp",reason="forbidden"');
    stranger.send(request(stranger, port, { method: 'OPTIONS' }).text);
    await until('the drop is counted', async () => (await metricValue(metrics, 'ccedge_sip_dropped_total', 'transport="udp",reason="forbidden"')) === before + 1);
    // The drop is decided on receipt, before anything could be sent: the server still answers the PBX.
    assert.equal((await ask(pbx, { method: 'OPTIONS' })).status, 200);
    assert.deepEqual(stranger.responses, []);
  });

  it("answers 403 to a trunk's outbound target that is not in its allow-list (the gate admits it, the trunk does not)", async () => {
    const target = await Peer.open('127.0.0.3', port);
    peers.push(target);
    const r = await ask(target, { method: 'OPTIONS' });
    assert.equal(r.status, 403);
    assert.equal(await metricValue(metrics, 'ccedge_sip_rejections_total', 'status="403",code="SIP_PEER_FORBIDDEN"'), 1);
  });

  it('drops malformed datagrams without an answer (counted), ignores a CRLF keepalive, and keeps serving', async () => {
    const label = 'transport="udp",reason="malformed"';
    const before = await metricValue(metrics, 'ccedge_sip_dropped_total', label);
    const answered = pbx.responses.length;
    pbx.send('this is not SIP\r\n\r\n');
    // Parsable, but without Via, Call-ID, From and To: no response can be addressed.
    pbx.send('OPTIONS sip:support@127.0.0.1 SIP/2.0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n');
    pbx.send('no blank line at all');
    pbx.send('\r\n\r\n');
    await until('three malformed datagrams are counted', async () => (await metricValue(metrics, 'ccedge_sip_dropped_total', label)) === before + 3);
    assert.equal(pbx.responses.length, answered, 'nothing was answered');
    assert.equal((await ask(pbx, { method: 'OPTIONS' })).status, 200, 'the server lives on');
    assert.equal(await metricValue(metrics, 'ccedge_sip_dropped_total', label), before + 3, 'the keepalive is no drop');
  });

  it('refuses an INVITE whose Record-Route it could not echo with 400, before any handler sees it', async () => {
    const n = invites.length;
    const r = await ask(pbx, { method: 'INVITE', extra: ['Record-Route: <mailto:proxy@example.com>'] });
    assert.equal(r.status, 400);
    assert.equal(r.reason, 'Bad Record-Route');
    assert.equal(invites.length, n);
  });

  it('hands an INVITE to the handler with its trunk and peer; the handler\'s 486 reaches the PBX after 100 Trying', async () => {
    const rq = request(pbx, port, { method: 'INVITE', user: 'busy' });
    pbx.send(rq.text);
    const trying = await pbx.response(rq.callId, (s) => s === 100);
    assert.doesNotMatch(trying.header('to') ?? '', /tag=/, '100 Trying carries no To-tag');
    const final = await pbx.response(rq.callId);
    assert.equal(final.status, 486);
    const inv = invites.at(-1);
    assert.ok(inv);
    assert.equal(inv.trunk.name, 'pbx');
    assert.equal(inv.peerAddress, '127.0.0.1');
    assert.equal(inv.rq.headers['call-id'], rq.callId);
    await until('the refused dialog is forgotten', () => server.activeDialogs === 0);
  });

  it('trunk maxCalls: a second INVITE gets 503 with Retry-After; CANCEL of the first gets 200 and 487; then a call fits again', async () => {
    const first = request(pbx, port, { method: 'INVITE' });
    pbx.send(first.text);
    await pbx.response(first.callId, (s) => s === 100);
    await until('the first INVITE is pending', () => server.activeDialogs === 1);

    const second = request(pbx, port, { method: 'INVITE' });
    pbx.send(second.text);
    const full = await pbx.response(second.callId);
    assert.equal(full.status, 503);
    assert.equal(full.header('retry-after'), '5');
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0].status, 503);
    assert.equal(rejected[0].reason, 'capacity');
    assert.equal(rejected[0].rq.headers['call-id'], second.callId);

    // CANCEL matches the pending INVITE by Call-ID and branch (RFC 3261 §9.1).
    const cancel = request(pbx, port, { method: 'CANCEL', callId: first.callId, branch: first.branch, body: '' });
    pbx.send(cancel.text);
    const cancelled = await pbx.response(first.callId, (s) => s === 487);
    assert.equal(cancelled.reason, 'Request Terminated');
    assert.ok(pbx.responses.some((r) => r.status === 200 && r.header('call-id') === first.callId && /CANCEL/.test(r.header('cseq') ?? '')), 'the CANCEL itself got 200');
    assert.equal(server.activeDialogs, 0);

    const third = request(pbx, port, { method: 'INVITE', user: 'busy' });
    pbx.send(third.text);
    assert.equal((await pbx.response(third.callId)).status, 486, 'the trunk slot was given back');
  });

  it("answers its own watchdog probe (selfCheck resolves)", async () => {
    await server.selfCheck();
  });
});

describe('SipServer close()', function () {
  this.timeout(30_000);

  it('refuses a ringing INVITE with 480 and releases the UDP port', async () => {
    const port = await freePort();
    const invites: IncomingInvite[] = [];
    const server = await newServer(port, new Metrics(), invites, []);
    const pbx = await Peer.open('127.0.0.1', port);
    try {
      const rq = request(pbx, port, { method: 'INVITE' });
      pbx.send(rq.text);
      await pbx.response(rq.callId, (s) => s === 100);
      assert.equal(invites.length, 1);
      await server.close();
      const final = await pbx.response(rq.callId);
      assert.equal(final.status, 480);
      assert.equal(server.activeDialogs, 0);
      // The port is free again: a socket can bind it.
      const probe = createSocket('udp4');
      probe.bind(port, '127.0.0.1');
      await once(probe, 'listening');
      probe.close();
    } finally {
      pbx.close();
      await server.close();
    }
  });
});
