import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import sip, { type SipRequest, type Stack } from 'sip';
import { UacDialog } from '../../sip/uac-dialog';

/*
 * UacDialog (our outbound calls) on a real sip.js stack; a plain UDP socket plays the first hop
 * (the SBC): it answers the INVITE with a 200 carrying Record-Route, and records the ACK and BYE
 * that follow. RFC 3261 §12.1.2: the route set is the Record-Route reversed.
 */

const HOST = '127.0.0.1';

function bind(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, HOST, () => resolve(s));
  });
}

class Hop {
  readonly got: Array<{ raw: string; rq: SipRequest }> = [];
  private waiters: Array<() => void> = [];
  constructor(readonly socket: Socket) {
    socket.on('message', (buf, rinfo) => {
      const raw = buf.toString('binary');
      const m = sip.parse(raw);
      if (!m || !('method' in m)) return;
      this.got.push({ raw, rq: m });
      if (m.method === 'INVITE' || m.method === 'BYE') this.onRequest(m, rinfo.port);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  recordRoute = '';
  private onRequest(rq: SipRequest, port: number): void {
    const head = rq.method === 'INVITE' ? [`Contact: <sip:far@10.9.9.9:5062>`, this.recordRoute, 'Content-Type: application/sdp'] : [];
    const body = rq.method === 'INVITE' ? 'v=0\r\no=far 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n' : '';
    const via = rq.headers.via.map((v) => `Via: SIP/2.0/${v.protocol} ${v.host}${v.port ? `:${v.port}` : ''};branch=${String(v.params.branch)}`);
    const text = [
      'SIP/2.0 200 OK',
      ...via,
      `From: <${rq.headers.from.uri}>;tag=${String(rq.headers.from.params.tag)}`,
      `To: <${rq.headers.to.uri}>;tag=far-tag`,
      `Call-ID: ${rq.headers['call-id']}`,
      `CSeq: ${rq.headers.cseq.seq} ${rq.headers.cseq.method}`,
      ...head.filter(Boolean),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
    this.socket.send(Buffer.from(text, 'binary'), port, HOST);
  }
  async waitFor(method: string, timeoutMs = 3000): Promise<SipRequest> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.got.find((g) => g.rq.method === method);
      if (hit) return hit.rq;
      if (Date.now() > end) throw new Error(`no ${method}; got ${this.got.map((g) => g.rq.method).join(',')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

const routeUris = (rq: SipRequest): string[] => (rq.headers.route ?? []).map((r) => (typeof r.uri === 'string' ? r.uri : sip.stringifyUri(r.uri)));

describe('UacDialog route sets (RFC 3261 §12.1.2)', function () {
  this.timeout(10_000);
  let stack: Stack;
  let hop: Hop;
  let port: number;

  beforeEach(async () => {
    hop = new Hop(await bind());
    const probe = await bind();
    port = probe.address().port;
    await new Promise<void>((r) => probe.close(() => r()));
    stack = sip.create({ address: HOST, port, udp: true, tcp: false }, () => undefined);
  });

  afterEach(async () => {
    stack.destroy();
    await new Promise<void>((r) => hop.socket.close(() => r()));
  });

  function dial(): UacDialog {
    const d = new UacDialog(stack, { host: HOST, port: hop.socket.address().port, transport: 'udp' }, { fromUser: 'ccedge', toUser: '5550199', localAddress: HOST, localPort: port, userAgent: 'unit' });
    d.start('v=0\r\no=ccedge 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n');
    return d;
  }

  it('loose routing: ACK and BYE go to the first hop with Request-URI = Contact and the reversed Record-Route', async () => {
    hop.recordRoute = 'Record-Route: <sip:far-proxy.invalid;lr>, <sip:127.0.0.3:5070;lr;r2=on>';
    const d = dial();
    const ack = await hop.waitFor('ACK');
    assert.equal(ack.uri, 'sip:far@10.9.9.9:5062');
    assert.deepEqual(routeUris(ack), ['sip:127.0.0.3:5070;lr;r2=on', 'sip:far-proxy.invalid;lr']);
    d.hangup();
    const bye = await hop.waitFor('BYE');
    assert.equal(bye.uri, 'sip:far@10.9.9.9:5062');
    assert.deepEqual(routeUris(bye), ['sip:127.0.0.3:5070;lr;r2=on', 'sip:far-proxy.invalid;lr']);
    assert.equal(bye.headers.to.params.tag, 'far-tag');
  });

  it('strict routing: the first route (no lr) is the Request-URI, the Contact goes last in Route', async () => {
    hop.recordRoute = 'Record-Route: <sip:far-proxy.invalid;lr>, <sip:strict.invalid:5080>';
    dial();
    const ack = await hop.waitFor('ACK');
    assert.equal(ack.uri, 'sip:strict.invalid:5080');
    assert.deepEqual(routeUris(ack), ['sip:far-proxy.invalid;lr', 'sip:far@10.9.9.9:5062']);
  });

  it('no Record-Route: no Route on the wire, Request-URI = Contact, still sent to the trunk address', async () => {
    dial();
    const ack = await hop.waitFor('ACK');
    assert.equal(ack.uri, 'sip:far@10.9.9.9:5062');
    assert.deepEqual(routeUris(ack), []);
  });

  it('an unusable Record-Route in the 2xx is ignored (the trunk peer is reached directly as before)', async () => {
    hop.recordRoute = 'Record-Route: <tel:+4930123;lr>';
    dial();
    const ack = await hop.waitFor('ACK');
    assert.deepEqual(routeUris(ack), []);
    assert.equal(ack.uri, 'sip:far@10.9.9.9:5062');
  });
});
