import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import type { CallRecord } from '../../gateway/store/call-store';
import { assertSippOk, eventually, runSipp, sleep, startDaemon, type DaemonHandle } from './harness';
import { assertUnharmed, underAttack, WATCHDOG_INTERVAL_MS, WatchdogFifo } from './hostile-harness';
import { RawSipClient, challengeOf, digestAuthorization, sdpOffer } from './raw-sip-client';
import { TestUac } from './test-uac';
import { TestUas } from './test-uas';

const AUTH = { realm: 'ccedge-test', username: 'pbx', password: 's3cret' };
const MAX_FAILURES = 10;

/**
 * Issue 13, unauthenticated input against the real daemon: digest guessing is blocked per source
 * and costs a handful of log lines; SDP pointing media at a multicast group is refused; RTP sprayed
 * from the PBX's host on another port before the PBX's first packet does not take over the call.
 *
 * Addresses: 127.0.0.3 guesses, 127.0.0.4 is the legitimate PBX of the `secure` trunk; 127.0.0.1 is
 * the plain `pbx` trunk (and the RTP attacker); 127.0.0.2 the far end calls are forwarded to.
 */
describe('hostile input: digest guessing, SDP addresses, foreign RTP (issue 13)', function () {
  this.timeout(120_000);
  let daemon: DaemonHandle;
  let far: TestUas;
  const wd = new WatchdogFifo();
  const target = (): { host: string; port: number } => ({ host: '127.0.0.1', port: daemon.sipPort });

  before(async () => {
    far = await TestUas.create({ localIp: '127.0.0.2' });
    wd.start();
    daemon = await startDaemon({
      config: {
        hw: { watchdog: { device: wd.path, deviceIntervalMs: WATCHDOG_INTERVAL_MS } },
        calls: { queue: 'support' },
        trunks: [
          { name: 'secure', allow: ['127.0.0.3/32', '127.0.0.4/32'], auth: { ...AUTH, maxFailures: MAX_FAILURES, blockS: 60 } },
          // Ringing for a moment gives the RTP attacker its window before the PBX's first packet.
          { name: 'pbx', allow: ['127.0.0.1/32'], answerDelayMs: 1500 },
          { name: 'far', allow: ['127.0.0.2/32'], outbound: { host: '127.0.0.2', port: far.sipPort } },
        ],
        queues: [{ name: 'support' }],
        routing: { forward: [{ match: '7001', trunk: 'far', number: '7001' }] },
      },
    });
  });

  after(async () => {
    await daemon?.stop();
    far?.close();
    wd.close();
  });

  async function metric(name: string): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`);
    const text = await res.text();
    return text.split('\n').filter((l) => l.startsWith(name)).join('\n');
  }

  it('300 wrong digest responses: blocked (403) after the allowance, a handful of log lines, the PBX and OPTIONS unaffected', async () => {
    const attacker = await RawSipClient.open('127.0.0.3', target());
    const pbx = await RawSipClient.open('127.0.0.4', target());
    try {
      const first = await attacker.request('INVITE');
      assert.equal(first.status, 401);
      const ch = challengeOf(first);

      // Warm-up (first requests after start pay for JIT); then the PBX's OPTIONS, the admin API and
      // the watchdog are watched through the attack and one second after it.
      for (let i = 0; i < 20; i++) assert.equal((await pbx.request('OPTIONS')).status, 200);
      const u = await underAttack(daemon, wd, '127.0.0.4', async () => {
        // One nonce, 300 guesses, 20 in flight at a time (the measured attack on main).
        const statuses: number[] = [];
        const started = Date.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: 20 }, async () => {
            while (next < 300) {
              const i = next++;
              const r = await attacker.request('INVITE', { authorization: digestAuthorization({ ...ch, username: AUTH.username, password: `guess-${i}`, uri: first.uri, nc: i + 1 }) });
              statuses.push(r.status);
            }
          }),
        );
        return { statuses, attackMs: Date.now() - started };
      });
      const { statuses, attackMs } = u.result;
      const admitted = statuses.filter((s) => s === 401).length;
      const blocked = statuses.filter((s) => s === 403).length;
      console.log(`      digest: ${admitted} guesses answered 401, ${blocked} refused 403, in ${attackMs} ms`);
      assertUnharmed('300 wrong digest responses on one nonce', u);
      assert.equal(admitted, MAX_FAILURES, 'exactly the allowance is checked');
      assert.equal(blocked, 300 - MAX_FAILURES);

      const blockedReply = await attacker.request('INVITE');
      assert.equal(blockedReply.status, 403);
      assert.match(blockedReply.reason, /Too Many Failed Authentications/);

      // The right password from the other allowed address of the trunk still gets a call.
      const r = await runSipp({ scenario: 'uac_auth.xml', target: `127.0.0.1:${daemon.sipPort}`, localIp: '127.0.0.4', extra: ['-au', AUTH.username, '-ap', AUTH.password] });
      assertSippOk(r);

      const attackerLines = daemon.logs.filter((l) => l.peer === '127.0.0.3' && (l.level === 'warn' || l.level === 'error' || l.level === 'info'));
      console.log(`      log lines about the attacker: ${attackerLines.length} (${attackerLines.map((l) => String(l.code)).join(', ')})`);
      assert.ok(attackerLines.length <= 5, `${attackerLines.length} lines: ${JSON.stringify(attackerLines.slice(0, 8))}`);
      assert.equal(attackerLines.filter((l) => l.code === 'SIP_AUTH_BLOCKED').length, 1, 'one line for the block');

      assert.match(await metric('ccedge_sip_digest_failures_total'), new RegExp(`trunk="secure",reason="bad"\\} ${MAX_FAILURES}\\b`));
      assert.match(await metric('ccedge_sip_digest_blocks_total'), /trunk="secure"\} 1\b/);
      assert.match(await metric('ccedge_sip_digest_blocked_total'), /trunk="secure"\} 291\b/);
    } finally {
      attacker.close();
      pbx.close();
    }
  });

  it('an INVITE whose SDP points media at 224.0.0.1 is refused with 488 before any media', async () => {
    const c = await RawSipClient.open('127.0.0.1', target());
    try {
      const group = createSocket({ type: 'udp4', reuseAddr: true });
      let groupPackets = 0;
      group.on('message', () => groupPackets++);
      group.bind(45_678);
      await once(group, 'listening');
      try {
        group.addMembership('224.0.0.1');
      } catch {
        // No multicast route in this sandbox: the call record and the RTP metrics still judge.
      }
      const sentBefore = await metric('ccedge_rtp_packets_total{direction="sent"}');
      for (const sdp of [sdpOffer('224.0.0.1', 45_678), sdpOffer('255.255.255.255', 45_678), sdpOffer('0.0.0.0', 45_678)]) {
        const r = await c.request('INVITE', { sdp, user: 'support' });
        assert.equal(r.status, 488, `${sdp.split('\r\n')[3]}: ${r.status} ${r.reason}`);
        assert.match(r.headers, /^Warning: 399 ccedge ".*c= address/im);
      }
      const rec = await eventually(async () => {
        const calls = (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=50')).body.calls;
        const refused = calls.filter((x) => x.endCause === 'SDP_ADDRESS_REFUSED');
        return refused.length === 3 ? refused : undefined;
      });
      assert.ok(rec.every((x) => x.state === 'failed' && x.sipStatus === 488));
      await sleep(500);
      assert.equal(groupPackets, 0, 'nothing reached the group');
      assert.match(await metric('ccedge_rtp_ports_in_use'), /ccedge_rtp_ports_in_use 0\b/);
      assert.equal(await metric('ccedge_rtp_packets_total{direction="sent"}'), sentBefore, 'no call sent RTP');
      group.close();
    } finally {
      c.close();
    }
  });

  it('RTP sprayed from the PBX host on another port before its first packet: the PBX is still heard, one warn with the count', async () => {
    const spray: Socket = createSocket('udp4');
    spray.bind(0, '127.0.0.1');
    await once(spray, 'listening');
    const uac = await TestUac.create({ codec: 'PCMU' });
    let sprayTimer: NodeJS.Timeout | undefined;
    try {
      const answered = uac.call(`127.0.0.1:${daemon.sipPort}`, { to: '7001', from: '5550177' });
      // While it rings, the attacker learns the call's RTP port and sprays silence at it.
      const ringing = await eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=20')).body.calls.find((x) => x.fromUri.includes('5550177') && x.rtpLocalPort), 5000, 20);
      const rtpPort = Number(ringing.rtpLocalPort);
      const silence = Buffer.alloc(172, 0xff);
      silence[0] = 0x80;
      silence[1] = 0;
      let seq = 0;
      sprayTimer = setInterval(() => {
        silence.writeUInt16BE(seq++ & 0xffff, 2);
        spray.send(silence, rtpPort, '127.0.0.1');
      }, 5);
      assert.equal(await answered, 200);
      await far.until(() => far.calls.some((x) => x.acked));
      // The PBX's 1 kHz tone reaches the far leg and its echo comes back: the call did not latch
      // to the attacker (it would relay silence and send the echo to the attacker's port).
      await eventually(async () => uac.packetsReceived >= 25 && uac.receivedLevel > 1000, 10_000, 50);
      clearInterval(sprayTimer);
      const warn = await daemon.waitForLog((l) => l.code === 'RTP_FOREIGN_SOURCE', 5000);
      console.log(`      foreign RTP: ${String(warn.foreignPackets)} packets from ${String(warn.firstSource)} (expected ${String(warn.expected)}) in the one warn line`);
      assert.equal(warn.level, 'warn');
      assert.equal(warn.firstSource, `127.0.0.1:${spray.address().port}`);
      assert.ok(Number(warn.foreignPackets) > 10, String(warn.foreignPackets));
      assert.ok(typeof warn.callId === 'string');
      assert.equal(await uac.hangup(), 200);
      await sleep(300);
      assert.equal(daemon.logs.filter((l) => l.code === 'RTP_FOREIGN_SOURCE').length, 1, 'one warn per call');
      const foreignTotal = Number(/ccedge_rtp_foreign_packets_total (\d+)/.exec(await metric('ccedge_rtp_foreign_packets_total'))?.[1]);
      assert.ok(foreignTotal >= Number(warn.foreignPackets), `metric ${foreignTotal}`);
      assert.match(await metric('ccedge_rtp_foreign_source_calls_total'), /ccedge_rtp_foreign_source_calls_total 1\b/);
    } finally {
      clearInterval(sprayTimer);
      uac.close();
      spray.close();
    }
  });
});
