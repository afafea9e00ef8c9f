import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { assertSippOk, ROOT, runSipp, startDaemon, type DaemonHandle } from './harness';

interface Torture {
  name: string;
  file: string;
  valid: boolean;
  udpOk: boolean;
  tcpOk?: boolean;
  expect: string;
}

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'rfc4475');
const INDEX = JSON.parse(readFileSync(path.join(FIXTURES, 'index.json'), 'utf8')) as Torture[];

/**
 * What ccedge answers to each RFC 4475 message (first final status, or null for "dropped").
 * Where RFC 4475 allows a choice we list ours; where we are more liberal than the RFC suggests,
 * the reason is given. A request sip.js cannot parse is dropped, which the issue allows.
 */
const OURS: Record<string, number | null> = {
  wsinv: 481, // To-tag for a dialog we do not have: parsed fine, answered 481
  intmeth: 501,
  esc01: 200,
  escnull: 405, // REGISTER: not a registrar
  esc02: 405, // sip.js unescapes the method to REGISTER (RFC says it is an unknown method: 501)
  lwsdisp: 200,
  longreq: 200,
  dblreq: 405,
  semiuri: 200,
  transports: 200,
  mpart01: 405, // MESSAGE
  unreason: null, // responses with no transaction are dropped
  noreason: null,
  badinv01: 200, // liberal: sip.js ignores the empty Via/Contact parameters
  clerr: 400,
  ncl: 400,
  scalar02: 400,
  scalarlg: null,
  quotbal: 400,
  ltgtruri: 416,
  lwsruri: null,
  lwsstart: null,
  trws: 200,
  escruri: 200, // liberal: escaped URI headers are ignored, never turned into real headers
  baddate: 200, // liberal: Date is not used
  regbadct: 405,
  badaspec: 400,
  baddn: null,
  badvers: 505,
  mismatch01: 400,
  mismatch02: 400,
  bigcode: null,
  badbranch: 200,
  insuf: null, // no From/Call-ID: sip.js cannot build a response, dropped
  unkscm: 416,
  novelsc: 416,
  unksm2: 405,
  bext01: 420,
  invut: 415,
  regaut01: 405,
  multi01: 400,
  mcl01: 200, // liberal: sip.js keeps the last Content-Length (5) and the body is cut there
  bcast: null,
  zeromf: 200,
  cparam01: 405,
  cparam02: 405,
  regescrt: 405,
  sdp01: 406,
  inv2543: 200,
};

const QUIET_MS = 400;

function finalStatus(lines: string[]): number | null {
  for (const l of lines) {
    const m = /^SIP\/2\.0 (\d{3})/.exec(l);
    if (m && Number(m[1]) >= 200) return Number(m[1]);
  }
  return null;
}

function sendUdp(port: number, payload: Buffer): Promise<string[]> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const lines: string[] = [];
    s.on('message', (m) => lines.push(m.toString('latin1').split('\r\n')[0]));
    s.bind(0, '127.0.0.1', () => {
      s.send(payload, port, '127.0.0.1');
      setTimeout(() => s.close(() => resolve(lines)), QUIET_MS);
    });
  });
}

function sendTcp(port: number, payload: Buffer): Promise<string[]> {
  return new Promise((resolve) => {
    let data = '';
    const c = connect(port, '127.0.0.1', () => c.write(payload));
    c.on('data', (d) => (data += d.toString('latin1')));
    c.on('error', () => undefined);
    setTimeout(() => {
      c.destroy();
      resolve(data.split('\r\n').filter((l) => l.startsWith('SIP/')));
    }, QUIET_MS);
  });
}

let optionsSeq = 0;
function options(port: number): Buffer {
  const n = ++optionsSeq;
  return Buffer.from(
    [
      `OPTIONS sip:ccedge@127.0.0.1:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-alive-${n};rport`,
      `From: <sip:pbx@127.0.0.1>;tag=alive${n}`,
      `To: <sip:ccedge@127.0.0.1:${port}>`,
      `Call-ID: alive-${n}-${Date.now()}`,
      `CSeq: ${n} OPTIONS`,
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

for (const transport of ['UDP', 'TCP'] as const) {
  describe(`RFC 4475 torture messages over ${transport}`, function () {
    let daemon: DaemonHandle;
    const send = transport === 'UDP' ? sendUdp : sendTcp;
    before(async () => {
      daemon = await startDaemon();
    });
    after(async () => {
      await daemon?.stop();
    });

    for (const t of INDEX) {
      const applies = transport === 'UDP' ? t.udpOk : t.tcpOk !== false;
      if (!applies) continue;
      it(`${t.name} (${t.valid ? 'valid' : 'invalid'}): ${OURS[t.name] ?? 'dropped'}, then OPTIONS still answered`, async () => {
        assert.ok(t.name in OURS, `no expectation for ${t.name}`);
        const lines = await send(daemon.sipPort, readFileSync(path.join(FIXTURES, t.file)));
        assert.equal(finalStatus(lines), OURS[t.name], `responses: ${JSON.stringify(lines)} (RFC: ${t.expect})`);
        const alive = await send(daemon.sipPort, options(daemon.sipPort));
        assert.equal(finalStatus(alive), 200, 'daemon stopped answering OPTIONS');
      });
    }

    it('survives garbage: binary noise, a 60 KiB datagram, an endless header over TCP', async () => {
      await sendUdp(daemon.sipPort, Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 13, 10, 13, 10]));
      await sendUdp(daemon.sipPort, Buffer.alloc(60 * 1024, 'A'));
      await sendTcp(daemon.sipPort, Buffer.from(`INVITE sip:x@y SIP/2.0\r\nX-Long: ${'z'.repeat(100 * 1024)}`));
      const alive = await send(daemon.sipPort, options(daemon.sipPort));
      assert.equal(finalStatus(alive), 200);
      assert.equal(daemon.proc.exitCode, null, 'daemon still running');
      assert.deepEqual(
        daemon.logs.filter((l) => l.code === 'UNCAUGHT'),
        [],
        'no uncaught exceptions',
      );
    });

    it('after all of it, sipp as the PBX still gets 200 to OPTIONS', async () => {
      const r = await runSipp({ scenario: 'uac_options.xml', target: `127.0.0.1:${daemon.sipPort}`, transport: transport === 'UDP' ? 'u1' : 't1' });
      assertSippOk(r);
    });
  });
}
