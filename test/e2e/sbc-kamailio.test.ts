import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CallRecord } from '../../gateway/store/call-store';
import { eventually, freePort, runSipp, SIPP_DIR, sippFailure, startDaemon, type DaemonHandle, type SippResult } from './harness';
import { startKamailio, type KamailioHandle } from './kamailio';
import { udpExchange } from './sip-probe';
import { WeriftAgent } from './werift-agent';

/*
 * Kamailio (Debian) as a record-routing, stateful SBC between the PBX (sipp) and ccedge.
 * ccedge's trunk allow-list holds only the proxy's address, so nothing from the PBX can reach the
 * appliance except through Kamailio; and ccedge sends in-dialog requests only over the INVITE's
 * flow, i.e. to Kamailio, which relays them only when they carry the route set (`loose_route`),
 * else answers `404 Not here`.
 */

const KAMAILIO_IP = '127.0.0.3';
const PBX_IP = '127.0.0.2';
const CCEDGE_IP = '127.0.0.1';

type Ws = Awaited<ReturnType<typeof WeriftAgent.login>>;

function daemonConfig(extra: { rtp?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    calls: { queue: 'support' },
    rtp: extra.rtp ?? {},
    // The PBX itself is not allowed: only the proxy's address is.
    trunks: [{ name: 'sbc', allow: [`${KAMAILIO_IP}/32`] }],
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
    agents: [{ name: 'alice', password: 'alice-password' }],
  };
}

async function callRecord(daemon: DaemonHandle, id: string): Promise<CallRecord> {
  return eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=100')).body.calls.find((c) => c.id === id && c.endedAt !== null), 20_000);
}

/**
 * Waits for the agent to be connected to the next call and returns its ccedge call id; fails at
 * once with the PBX's account if sipp gives up first (e.g. our 200 had no Record-Route).
 */
async function connected(alice: Ws, from: number, pbx: Promise<SippResult>): Promise<string> {
  const gaveUp = pbx.then((r): never => {
    throw new Error(`the PBX ended before an agent was connected\n${sippFailure(r)}`);
  });
  const msg = await Promise.race([alice.waitFor((m) => m.type === 'callConnected', 30_000, from), gaveUp]);
  return msg.type === 'callConnected' ? msg.callId : '';
}

function ackTimeouts(daemon: DaemonHandle): number {
  return daemon.logs.filter((l) => JSON.stringify(l).includes('ack-timeout')).length;
}

for (const topoh of [false, true]) {
  describe(`Kamailio in front of ccedge on loopback${topoh ? ' with topology hiding (topoh)' : ''}`, function () {
    this.timeout(120_000);
    let daemon: DaemonHandle;
    let kamailio: KamailioHandle | undefined;
    let alice: Ws | undefined;
    let proxy: string;

    before(async () => {
      daemon = await startDaemon({ config: daemonConfig(), env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1', CCEDGE_SIP_HOST: CCEDGE_IP } });
      const kport = await freePort();
      kamailio = await startKamailio({ listen: [{ ip: KAMAILIO_IP, port: kport }], ccedge: { ip: CCEDGE_IP, port: daemon.sipPort }, topoh });
      proxy = `${KAMAILIO_IP}:${kport}`;
      alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
      alice.available();
      await alice.waitFor((m) => m.type === 'state' && m.state === 'available');
    });

    after(async () => {
      await alice?.close();
      await kamailio?.stop();
      await daemon?.stop();
    });

    it('the agent hangs up: our BYE reaches the PBX through Kamailio', async () => {
      const from = alice!.inbox.length;
      const sipp = runSipp({ scenario: 'proxy_uac_wait_bye.xml', target: proxy, localIp: PBX_IP, extra: ['-s', 'support', '-rtp_echo'], timeoutS: 60 });
      const callId = await connected(alice!, from, sipp);
      alice!.hangup(callId);
      const r = await sipp;
      assert.equal(r.code, 0, `the PBX did not get the BYE through Kamailio\n${sippFailure(r)}\n--- kamailio ---\n${kamailio!.log().slice(-2000)}`);
      const rec = await callRecord(daemon, callId);
      assert.equal(rec.endCause, 'agent-hangup');
      assert.equal(rec.remoteAddr.split(':')[0], KAMAILIO_IP, 'the call came from the proxy');
      assert.doesNotMatch(kamailio!.log(), /without route set/, 'Kamailio relayed every in-dialog request');
    });

    it('the PBX hangs up: its BYE reaches ccedge through Kamailio, the call ends and the agent leaves it', async () => {
      const from = alice!.inbox.length;
      const sipp = runSipp({ scenario: 'proxy_uac_bye.xml', target: proxy, localIp: PBX_IP, durationMs: 6000, extra: ['-s', 'support', '-rtp_echo'], timeoutS: 60 });
      const callId = await connected(alice!, from, sipp);
      const r = await sipp;
      assert.equal(r.code, 0, `${sippFailure(r)}\n--- kamailio ---\n${kamailio!.log().slice(-2000)}`);
      const ended = await alice!.waitFor((m) => m.type === 'callEnded' && m.callId === callId, 10_000, from);
      assert.equal(ended.type === 'callEnded' && ended.cause, 'caller-hangup');
      const rec = await callRecord(daemon, callId);
      assert.equal(rec.state, 'ended');
      assert.equal(rec.endCause, 'caller-hangup');
      assert.ok(rec.rtpPacketsReceived > 0, 'RTP from the PBX (echoed) arrived');
      assert.equal(ackTimeouts(daemon), 0);
      assert.doesNotMatch(kamailio!.log(), /without route set/);
    });

    if (!topoh) {
      it('an INVITE whose Record-Route we could not echo is refused with 400, counted, and the daemon carries on', async () => {
        const invite = (rr: string): Buffer => {
          const callId = `${randomBytes(6).toString('hex')}@hostile`;
          return Buffer.from(
            [
              `INVITE sip:support@${CCEDGE_IP}:${daemon.sipPort} SIP/2.0`,
              `Via: SIP/2.0/UDP ${KAMAILIO_IP}:5999;branch=z9hG4bK-${randomBytes(6).toString('hex')};rport`,
              `From: <sip:5550000@${KAMAILIO_IP}>;tag=${randomBytes(4).toString('hex')}`,
              `To: <sip:support@${CCEDGE_IP}>`,
              `Call-ID: ${callId}`,
              'CSeq: 1 INVITE',
              `Contact: <sip:pbx@${KAMAILIO_IP}:5999>`,
              rr,
              'Max-Forwards: 70',
              'Content-Length: 0',
              '',
              '',
            ].join('\r\n'),
            'latin1',
          );
        };
        const many = Array.from({ length: 40 }, (_, i) => `<sip:10.1.0.${i};lr>`).join(', ');
        for (const rr of [`Record-Route: ${many}`, 'Record-Route: <tel:+4930123;lr>', `Record-Route: <sip:${'x'.repeat(2000)}.invalid;lr>`]) {
          const lines = await udpExchange(daemon.sipPort, invite(rr), { fromIp: KAMAILIO_IP, waitMs: 500 });
          assert.ok(lines.includes('SIP/2.0 400 Bad Record-Route'), `${rr.slice(0, 60)} → ${lines.join(' | ')}`);
        }
        const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
        assert.match(metrics, /^ccedge_sip_rejections_total\{status="400",code="SIP_BAD_REQUEST"\} [3-9]/m);
        // Still answering through the proxy afterwards.
        const ok = await runSipp({ scenario: 'uac_options.xml', target: proxy, localIp: PBX_IP, timeoutS: 10 });
        assert.equal(ok.code, 0, sippFailure(ok));
      });
    }
  });
}

/* ---------- ccedge as the UAC: a forwarded call's far leg through Kamailio ---------- */

/** sipp as the far end (a UAS of our own scenario) until it has handled one call; killable. */
function sippUas(ipAddr: string, port: number): { done: Promise<SippResult>; kill(): void } {
  const args = ['-sf', path.join(SIPP_DIR, 'proxy_uas.xml'), '-i', ipAddr, '-p', String(port), '-mi', ipAddr, '-m', '1', '-nostdin', '-timeout', '90s', '-timeout_error', '-rtp_echo'];
  const proc = spawn('sipp', args, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const done = new Promise<SippResult>((resolve) => proc.once('exit', (code) => resolve({ code, stdout, stderr, unexpected: [] })));
  return { done, kill: () => void (proc.exitCode === null && proc.signalCode === null && proc.kill('SIGTERM')) };
}

for (const topoh of [false, true]) {
  describe(`forwarded call: ccedge's outbound leg through Kamailio${topoh ? ' with topoh' : ''}`, function () {
    this.timeout(120_000);
    const FAR_IP = '127.0.0.4';
    let daemon: DaemonHandle | undefined;
    let kamailio: KamailioHandle | undefined;
    let far: ReturnType<typeof sippUas> | undefined;

    after(async () => {
      far?.kill();
      await kamailio?.stop();
      await daemon?.stop();
    });

    it('the far end gets our ACK and, when the caller hangs up, our BYE, both relayed by Kamailio on the route set', async () => {
      const kport = await freePort();
      const farPort = await freePort();
      daemon = await startDaemon({
        config: {
          calls: { queue: 'support' },
          // One trunk: the SBC, for the PBX's calls in and for ours out.
          trunks: [{ name: 'sbc', allow: [`${KAMAILIO_IP}/32`], outbound: { host: KAMAILIO_IP, port: kport } }],
          queues: [{ name: 'support' }],
          routing: { forward: [{ match: '7001', trunk: 'sbc', number: '5550199' }] },
        },
        env: { CCEDGE_SIP_HOST: CCEDGE_IP },
      });
      kamailio = await startKamailio({ listen: [{ ip: KAMAILIO_IP, port: kport }], ccedge: { ip: CCEDGE_IP, port: daemon.sipPort }, pbx: { ip: FAR_IP, port: farPort }, topoh });
      far = sippUas(FAR_IP, farPort);
      await new Promise((r) => setTimeout(r, 300)); // sipp binds
      const caller = await runSipp({ scenario: 'proxy_uac_bye.xml', target: `${KAMAILIO_IP}:${kport}`, localIp: PBX_IP, durationMs: 3000, extra: ['-s', '7001', '-rtp_echo'], timeoutS: 60 });
      assert.equal(caller.code, 0, `caller: ${sippFailure(caller)}\n--- kamailio ---\n${kamailio.log().slice(-2000)}`);
      const r = await far.done;
      assert.equal(r.code, 0, `far end: ${sippFailure(r)}\n--- kamailio ---\n${kamailio.log().slice(-2000)}`);
      const rec = await eventually(async () => (await daemon!.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=10')).body.calls.find((c) => c.toUser === '7001' && c.endedAt !== null), 10_000);
      assert.equal(rec.endCause, 'caller-hangup');
      assert.doesNotMatch(kamailio.log(), /without route set/);
    });
  });
}

/* ---------- the PBX in a network namespace: ccedge is reachable only through Kamailio ---------- */

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

/** sipp run inside the namespace (same arguments runSipp uses). */
function sippInNs(ns: string, o: { scenario: string; target: string; localIp: string; durationMs?: number; extra?: string[]; timeoutS?: number }): Promise<SippResult> {
  const args = [
    'netns', 'exec', ns, 'sipp', o.target,
    '-sf', path.join(SIPP_DIR, o.scenario),
    '-i', o.localIp, '-p', '5062', '-mi', o.localIp, '-mp', '16000',
    '-t', 'u1', '-m', '1', '-r', '1', '-l', '1',
    '-d', String(o.durationMs ?? 500), '-s', 'support',
    '-nostdin', '-timeout', `${o.timeoutS ?? 30}s`, '-timeout_error', '-max_recv_loops', '1000',
    ...(o.extra ?? []),
  ];
  return new Promise((resolve, reject) => {
    const proc = spawn('ip', args, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    proc.once('error', reject);
    proc.once('exit', (code) => resolve({ code, stdout, stderr, unexpected: [] }));
  });
}

for (const topoh of [false, true]) {
  describe(`PBX in a network namespace, reaching ccedge only through Kamailio${topoh ? ' with topoh' : ''}`, function () {
    this.timeout(150_000);
    const tag = randomBytes(3).toString('hex');
    const ns = `ccedge-k14-${tag}`;
    const hostIf = `k14h${tag}`;
    const nsIf = `k14n${tag}`;
    const net = 1 + Math.floor(Math.random() * 250);
    const hostIp = `10.214.${net}.1`;
    const pbxIp = `10.214.${net}.2`;
    let daemon: DaemonHandle | undefined;
    let kamailio: KamailioHandle | undefined;
    let alice: Ws | undefined;
    let nsUp = false;

    before(async () => {
      ip('netns', 'add', ns);
      nsUp = true;
      ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
      ip('link', 'set', nsIf, 'netns', ns);
      ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
      ip('link', 'set', hostIf, 'up');
      ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${pbxIp}/30`, 'dev', nsIf);
      ip('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up');
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      // SIP on 127.0.0.1 only (unreachable from the namespace); RTP on every address, advertised
      // on the veth so the PBX's media can flow while its signalling must go through Kamailio.
      daemon = await startDaemon({
        config: daemonConfig({ rtp: { publicAddress: hostIp } }),
        env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1', CCEDGE_SIP_HOST: CCEDGE_IP },
      });
      const kport = await freePort();
      // Two sockets: the PBX side (veth) and the ccedge side (loopback); Kamailio record-routes both.
      kamailio = await startKamailio({ listen: [{ ip: hostIp, port: 5060 }, { ip: KAMAILIO_IP, port: kport }], ccedge: { ip: CCEDGE_IP, port: daemon.sipPort }, topoh });
      alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
      alice.available();
      await alice.waitFor((m) => m.type === 'state' && m.state === 'available');
    });

    after(async () => {
      await alice?.close();
      await kamailio?.stop();
      await daemon?.stop();
      if (nsUp) {
        spawnSync('ip', ['netns', 'del', ns]);
        spawnSync('ip', ['link', 'del', hostIf]); // normally gone with the namespace
      }
    });

    it('the PBX cannot reach ccedge directly, but OPTIONS through Kamailio are answered', async () => {
      const direct = await sippInNs(ns, { scenario: 'uac_options.xml', target: `${hostIp}:${daemon!.sipPort}`, localIp: pbxIp, timeoutS: 3 });
      assert.notEqual(direct.code, 0, 'ccedge answered the PBX directly: the topology is not what this test needs');
      const via = await sippInNs(ns, { scenario: 'uac_options.xml', target: `${hostIp}:5060`, localIp: pbxIp, timeoutS: 10 });
      assert.equal(via.code, 0, sippFailure(via));
    });

    it('the call reaches an agent (the ACK arrives via Kamailio, no ack-timeout), audio flows, and the caller hangs up cleanly', async () => {
      const from = alice!.inbox.length;
      const sipp = sippInNs(ns, { scenario: 'proxy_uac_bye.xml', target: `${hostIp}:5060`, localIp: pbxIp, durationMs: 6000, extra: ['-rtp_echo'], timeoutS: 60 });
      const callId = await connected(alice!, from, sipp);
      // Audio both ways across the namespace: what the agent says comes back through the PBX's echo.
      const peer = alice!.peer(callId);
      assert.ok(peer, 'the agent has a WebRTC peer for the call');
      for (let i = 0; i < 25; i++) {
        peer.sendAudio(Buffer.alloc(160, 0x2a), 1000 + i * 160);
        await new Promise((r) => setTimeout(r, 20));
      }
      await eventually(async () => peer.received.some((p) => p.payload[0] === 0x2a), 5_000, 50);
      const r = await sipp;
      assert.equal(r.code, 0, `${sippFailure(r)}\n--- kamailio ---\n${kamailio!.log().slice(-3000)}`);
      await alice!.waitFor((m) => m.type === 'callEnded' && m.callId === callId, 10_000, from);
      const rec = await callRecord(daemon!, callId);
      assert.equal(rec.endCause, 'caller-hangup');
      assert.ok(rec.answeredAt);
      assert.ok(rec.rtpPacketsReceived > 0, 'RTP from the PBX arrived over the veth');
      assert.equal(ackTimeouts(daemon!), 0, 'no ack-timeout');
    });

    it('the agent hangs up: the BYE reaches the PBX in the namespace through Kamailio', async () => {
      const from = alice!.inbox.length;
      const sipp = sippInNs(ns, { scenario: 'proxy_uac_wait_bye.xml', target: `${hostIp}:5060`, localIp: pbxIp, extra: ['-rtp_echo'], timeoutS: 60 });
      const callId = await connected(alice!, from, sipp);
      alice!.hangup(callId);
      const r = await sipp;
      assert.equal(r.code, 0, `${sippFailure(r)}\n--- kamailio ---\n${kamailio!.log().slice(-3000)}`);
      const rec = await callRecord(daemon!, callId);
      assert.equal(rec.endCause, 'agent-hangup');
      assert.equal(ackTimeouts(daemon!), 0);
    });
  });
}
