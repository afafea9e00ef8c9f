import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { configSchema } from '../../gateway/config/schema';
import { createLogger } from '../../gateway/logging';
import { Metrics } from '../../gateway/metrics';
import { referTargetForNumber } from '../../gateway/sip/refer';
import { SipServer, type IncomingInvite } from '../../gateway/sip/sip-server';
import type { UasDialog } from '../../gateway/sip/uas-dialog';
import { eventually, freePort } from './harness';
import { startKamailio, type KamailioHandle } from './kamailio';
import { TestUac } from './test-uac';
import { TestUas } from './test-uas';
import { sineFrames, TONES } from './tones';

/*
 * REFER to the PBX (trunks[].transferMode: refer), as far as it goes without the call model:
 * ccedge's SipServer runs in this process on 127.0.0.1 and answers the call itself, with a tone
 * standing in for the agent. Kamailio (record-routing) sits in front and is the only allowed
 * source. The PBX with its caller is TestUac: it carries out our REFER by calling the extension
 * (TestUas, its own tone) and reports over NOTIFY, as a PBX does. The checks are what each party
 * sees: the REFER at the PBX came along the route set with Refer-To / Referred-By, every NOTIFY is
 * answered, the dialog reports the progress, and after our BYE the caller and the extension hear
 * each other.
 */

const CCEDGE_IP = '127.0.0.1';
const PBX_IP = '127.0.0.2';
const KAMAILIO_IP = '127.0.0.3';
const EXTENSION_IP = '127.0.0.4';

/** The agent's side of the test call: a tone from 127.0.0.1 to the caller's RTP address. */
class AgentTone {
  private timer: NodeJS.Timeout | undefined;
  private constructor(
    readonly socket: Socket,
    readonly port: number,
  ) {}

  static async open(): Promise<AgentTone> {
    const port = await freePort();
    const socket = createSocket('udp4');
    socket.on('message', () => undefined);
    await new Promise<void>((resolve) => socket.bind(port, CCEDGE_IP, () => resolve()));
    return new AgentTone(socket, port);
  }

  start(to: { address: string; port: number }): void {
    const frames = sineFrames(TONES.agent, 'PCMU');
    const ssrc = randomBytes(4).readUInt32BE(0);
    const start = Date.now();
    let n = 0;
    const tick = (): void => {
      const header = Buffer.alloc(12);
      header[0] = 0x80;
      header[1] = n === 0 ? 0x80 : 0;
      header.writeUInt16BE((n + 1) & 0xffff, 2);
      header.writeUInt32BE((n * 160) >>> 0, 4);
      header.writeUInt32BE(ssrc, 8);
      this.socket.send(Buffer.concat([header, frames[n % frames.length]]), to.port, to.address);
      n++;
      this.timer = setTimeout(tick, Math.max(0, start + n * 20 - Date.now()));
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.stop();
    this.socket.close();
  }
}

function answerSdp(port: number): string {
  return ['v=0', `o=ccedge 1 1 IN IP4 ${CCEDGE_IP}`, 's=ccedge', `c=IN IP4 ${CCEDGE_IP}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
}

function offerMedia(sdp: string): { address: string; port: number } {
  const c = /^c=IN IP4 (\S+)/m.exec(sdp);
  const m = /^m=audio (\d+)/m.exec(sdp);
  assert.ok(c && m, `offer without media: ${sdp}`);
  return { address: c[1], port: Number(m[1]) };
}

for (const topoh of [false, true]) describe(`REFER to the PBX behind Kamailio${topoh ? ' with topology hiding (topoh)' : ''} (UasDialog.refer, in-process SipServer)`, function () {
  this.timeout(120_000);
  let server: SipServer;
  let metrics: Metrics;
  let kamailio: KamailioHandle | undefined;
  let proxy: string;
  const lines: Array<Record<string, unknown>> = [];
  const invites: IncomingInvite[] = [];
  const agents: AgentTone[] = [];
  const peers: Array<{ close(): void }> = [];

  before(async () => {
    const sipPort = await freePort();
    const config = configSchema.parse({
      site: { id: 's', deviceId: 'e2e' },
      sip: { host: CCEDGE_IP, port: sipPort, tcp: false },
      // Only the proxy may send to us: the PBX's own address is not allowed.
      trunks: [{ name: 'sbc', allow: [`${KAMAILIO_IP}/32`], transferMode: 'refer' }],
    });
    assert.equal(config.trunks[0].transferMode, 'refer');
    metrics = new Metrics();
    const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    server = new SipServer(config, log, metrics, {
      onInvite: (inv) => {
        invites.push(inv);
        void AgentTone.open().then((agent) => {
          agents.push(agent);
          inv.dialog.on('confirmed', () => agent.start(offerMedia(inv.rq.content ?? '')));
          inv.dialog.on('terminated', () => agent.stop());
          inv.dialog.accept(answerSdp(agent.port));
        });
      },
      onRejectedInvite: () => undefined,
    });
    await server.start();
    const kport = await freePort();
    kamailio = await startKamailio({ listen: [{ ip: KAMAILIO_IP, port: kport }], ccedge: { ip: CCEDGE_IP, port: sipPort }, topoh });
    proxy = `${KAMAILIO_IP}:${kport}`;
  });

  after(async () => {
    for (const p of peers) p.close();
    for (const a of agents) a.close();
    await server?.close();
    await kamailio?.stop();
  });

  /** Caller (PBX) + extension, a call up through Kamailio, the caller hearing the agent. */
  async function callUp(extension: TestUas): Promise<{ uac: TestUac; dialog: UasDialog }> {
    const uac = await TestUac.create({ localIp: PBX_IP, toneHz: TONES.caller });
    peers.push(uac);
    uac.handleRefer({ via: { host: EXTENSION_IP, port: extension.sipPort } });
    const before = invites.length;
    assert.equal(await uac.call(proxy), 200);
    const inv = await eventually(async () => invites[before], 10_000);
    await eventually(async () => inv.dialog.state === 'confirmed', 10_000);
    assert.ok(await uac.until(() => uac.ear.blocks.judged >= 10, 20_000), `the caller hears nothing: ${uac.ear.describe()}`);
    assert.deepEqual(uac.ear.heard(), [TONES.agent], `the caller hears the agent: ${uac.ear.describe()}`);
    return { uac, dialog: inv.dialog };
  }

  function progressOf(dialog: UasDialog): Array<[number, boolean]> {
    const seen: Array<[number, boolean]> = [];
    dialog.on('referProgress', (status, final) => seen.push([status, final]));
    return seen;
  }

  const badNotifies = async (status: number): Promise<number> => {
    const text = await metrics.registry.getSingleMetricAsString('ccedge_sip_rejections_total');
    const m = new RegExp(`ccedge_sip_rejections_total\\{status="${status}",code="SIP_BAD_NOTIFY"\\} (\\d+)`).exec(text);
    return m ? Number(m[1]) : 0;
  };

  it('the PBX gets REFER along the route set, connects the caller to the extension; NOTIFYs answered; after our BYE caller and extension hear each other', async () => {
    const extension = await TestUas.create({ localIp: EXTENSION_IP, toneHz: TONES.extension });
    peers.push(extension);
    const { uac, dialog } = await callUp(extension);
    const progress = progressOf(dialog);
    // topoh masks the PBX's Contact: the Refer-To host is then named (phase 2: the trunk's PBX host).
    if (topoh) assert.doesNotMatch(dialog.remoteTargetUri, new RegExp(PBX_IP.replace(/\./g, '\\.')), 'the Contact we see is masked');
    const target = topoh ? referTargetForNumber('2002', dialog.remoteTargetUri, PBX_IP) : referTargetForNumber('2002', dialog.remoteTargetUri);
    const finalSeen = new Promise<void>((resolve) => dialog.on('referProgress', (_s, final) => final && resolve()));

    assert.equal(await dialog.refer(target, { referredBy: `sip:alice@${CCEDGE_IP}` }), 202);
    await finalSeen;
    assert.deepEqual(progress, [[100, false], [200, true]]);

    // What the PBX saw: our REFER relayed by the proxy, its Request-URI our Contact for it.
    assert.equal(uac.refers.length, 1);
    const seen = uac.refers[0];
    assert.equal(seen.source.address, KAMAILIO_IP, 'the REFER came through the proxy');
    assert.match(seen.uri, new RegExp(`^sip:uac@${PBX_IP.replace(/\./g, '\\.')}:\\d+$`), 'Request-URI = the PBX Contact');
    assert.deepEqual(seen.route, [], 'the proxy consumed its own Route entry');
    assert.equal(seen.referTo, target);
    assert.match(target, new RegExp(`^sip:2002@${PBX_IP.replace(/\./g, '\\.')}(:\\d+)?$`));
    assert.equal(seen.referredBy, `<sip:alice@${CCEDGE_IP}>`);
    assert.equal(seen.transferStatus, 200);
    assert.ok(await uac.until(() => seen.notifies.every((n) => n.answer !== 0), 10_000));
    assert.deepEqual(seen.notifies, [{ sipfrag: 100, answer: 200 }, { sipfrag: 200, answer: 200 }]);
    assert.match(kamailio?.log() ?? '', /in-dialog REFER relayed/);
    assert.match(kamailio?.log() ?? '', /in-dialog NOTIFY relayed/, 'the PBX NOTIFYs follow the route set too');
    assert.equal(extension.calls.length, 1);
    assert.equal(extension.calls[0].invite.headers.to.uri, target, 'the PBX called the Refer-To target');

    // The transfer is done: we leave; the caller and the extension talk.
    assert.equal(await dialog.bye(), 200);
    assert.ok(await uac.waitForBye(5000), 'the PBX got our BYE');
    assert.match(kamailio?.log() ?? '', /in-dialog BYE relayed/);
    uac.resetMeasurement();
    const ext = extension.calls[0];
    ext.ear?.reset();
    assert.ok(await uac.until(() => uac.ear.blocks.judged >= 10 && (ext.ear?.blocks.judged ?? 0) >= 10, 20_000), `no audio: caller ${uac.ear.describe()}; extension ${ext.ear?.describe()}`);
    assert.deepEqual(uac.ear.heard(), [TONES.extension], `the caller hears the extension only: ${uac.ear.describe()}`);
    assert.deepEqual(ext.ear?.heard(), [TONES.caller], `the extension hears the caller: ${ext.ear?.describe()}`);
    assert.equal(uac.transferByeReceived, false);
    assert.equal(await badNotifies(400), 0);
    assert.equal(await uac.hangup(), 200);
    assert.ok(ext.byeReceived);
  });

  it('a busy extension: NOTIFY 486 is the final progress, the call stays with us; a malformed NOTIFY is answered 400, counted and logged', async () => {
    const extension = await TestUas.create({ localIp: EXTENSION_IP, toneHz: TONES.extension });
    peers.push(extension);
    extension.holdAnswers = true;
    extension.answerWith = 486;
    const { uac, dialog } = await callUp(extension);
    const progress = progressOf(dialog);
    const final = new Promise<number>((resolve) => dialog.on('referProgress', (s, f) => f && resolve(s)));
    const before400 = await badNotifies(400);

    assert.equal(await dialog.refer(referTargetForNumber('2003', dialog.remoteTargetUri, topoh ? PBX_IP : undefined)), 202);
    // The extension rings (held by the test): the subscription is live, so the NOTIFY is read.
    assert.ok(await uac.until(() => extension.calls.length === 1, 10_000), 'the PBX calls the extension');
    assert.equal(await uac.notify({ sipfrag: 'HTTP/1.1 200 OK\r\n' }), 400);
    assert.equal(await uac.notify({ sipfrag: 'SIP/2.0 180 Ringing\r\n', event: 'presence' }), 489);
    extension.releaseAnswers();
    assert.equal(await final, 486);
    assert.deepEqual(progress, [[100, false], [486, true]]);
    assert.equal(await badNotifies(400), before400 + 1);
    assert.ok(lines.some((l) => l.code === 'SIP_BAD_NOTIFY' && l.status === 400), 'one warn line for the bad NOTIFY');
    const seen = uac.refers[0];
    assert.ok(await uac.until(() => seen.notifies.every((n) => n.answer !== 0), 10_000));
    assert.deepEqual(seen.notifies, [{ sipfrag: 100, answer: 200 }, { sipfrag: 486, answer: 200 }]);

    // Nothing moved: the call is ours, the caller still hears the agent.
    assert.equal(dialog.state, 'confirmed');
    uac.resetMeasurement();
    assert.ok(await uac.until(() => uac.ear.blocks.judged >= 10, 20_000));
    assert.deepEqual(uac.ear.heard(), [TONES.agent], uac.ear.describe());
    // After the subscription ended a NOTIFY is 481.
    assert.equal(await uac.notify({ sipfrag: 'SIP/2.0 200 OK\r\n', state: 'terminated' }), 481);
    assert.equal(await dialog.bye(), 200);
    assert.ok(uac.byeReceived);
  });
});
