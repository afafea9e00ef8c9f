import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { ulawToLinear } from '../../media/tones/g711';
import { Baresip, toneShare } from './baresip';
import { eventually, freePort, sleep, startDaemon, type DaemonHandle } from './harness';
import { WeriftAgent } from './werift-agent';

const PBX_TONE_HZ = 440;
const AGENT_TONE_HZ = 1000;

/** The best share of `hz` over half-second windows (robust to silence at the edges). */
function bestWindowShare(samples: ArrayLike<number>, hz: number): number {
  let best = 0;
  for (let start = 0; start + 4000 <= samples.length; start += 2000) {
    best = Math.max(best, toneShare(Array.prototype.slice.call(samples, start, start + 4000) as number[], hz));
  }
  return best;
}

function agentToneFrame(i: number): Buffer {
  // µ-law frames of a 1 kHz tone, made with the project's own G.711 encoder's inverse table.
  const frame = Buffer.alloc(160);
  for (let n = 0; n < 160; n++) {
    const x = Math.round(8000 * Math.sin((2 * Math.PI * AGENT_TONE_HZ * (i * 160 + n)) / 8000));
    frame[n] = ulawEncode(x);
  }
  return frame;
}

/** Inverse of ulawToLinear by search: the test then depends on one G.711 table only. */
const ULAW_BY_LINEAR = new Map<number, number>();
function ulawEncode(x: number): number {
  const key = Math.round(x / 8);
  const cached = ULAW_BY_LINEAR.get(key);
  if (cached !== undefined) return cached;
  let best = 0xff;
  for (let c = 0; c < 256; c++) if (Math.abs(ulawToLinear(c) - x) < Math.abs(ulawToLinear(best) - x)) best = c;
  ULAW_BY_LINEAR.set(key, best);
  return best;
}

interface Case {
  name: string;
  transport: 'udp' | 'tcp' | 'tls';
  srtp: boolean;
}

const CASES: Case[] = [
  { name: 'UDP, plain RTP', transport: 'udp', srtp: false },
  { name: 'TCP, plain RTP', transport: 'tcp', srtp: false },
  { name: 'TLS with SDES-SRTP', transport: 'tls', srtp: true },
];

describe('baresip as the PBX: UDP, TCP and TLS+SRTP, audio both ways', function () {
  let daemon: DaemonHandle;
  const scratch = mkdtempSync(path.join(tmpdir(), 'ccedge-baresip-'));
  let pbx: Baresip | undefined;
  let alice: WeriftAgent | undefined;

  before(async () => {
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support', maxDurationS: 60 },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], srtp: 'optional' }],
        queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
        agents: [{ name: 'alice', password: 'alice-password' }],
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
  });
  afterEach(async () => {
    await pbx?.stop();
    pbx = undefined;
    await alice?.close();
    alice = undefined;
  });
  after(async () => {
    await daemon?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  for (const c of CASES) {
    it(`${c.name}: the agent hears the PBX's tone, baresip hears the agent's, the call ends with BYE`, async () => {
      alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
      alice.available();
      const sipPort = await freePort();
      const rtpBase = 31000 + 2 * Math.floor(Math.random() * 4000);
      const target =
        c.transport === 'tls'
          ? `sip:support@127.0.0.1:${daemon.sipTlsPort};transport=tls`
          : `sip:support@127.0.0.1:${daemon.sipPort};transport=${c.transport}`;
      pbx = Baresip.start(
        {
          dir: path.join(scratch, c.transport),
          listen: `127.0.0.1:${sipPort}`,
          accountParams: c.srtp ? ';mediaenc=srtp-mand' : '',
          caFile: path.join(daemon.dataDir, 'keys', 'site-ca.crt'),
          toneHz: PBX_TONE_HZ,
          rtpPorts: `${rtpBase}-${rtpBase + 20}`,
          maxLifeS: 60,
        },
        target,
      );
      const connected = await alice.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected', 20_000).catch((e: Error) => {
        throw new Error(`${e.message}\nbaresip:\n${pbx?.output.slice(-40).join('\n')}`);
      });
      const peer = alice.peer(connected.callId);
      assert.ok(peer);
      await peer.waitConnected();
      for (let i = 0; i < 150; i++) {
        peer.sendAudio(agentToneFrame(i), 9000 + i * 160);
        await sleep(20);
      }
      // The PBX's tone reached the agent through ccedge (decrypted, bridged, re-encrypted by DTLS-SRTP).
      const heard = peer.received.filter((p) => p.payloadType === 0).flatMap((p) => Array.from(p.payload, ulawToLinear));
      assert.ok(heard.length > 8000, `agent received ${heard.length} samples\nbaresip:\n${pbx.output.slice(-60).join("\n")}\n${JSON.stringify(daemon.logs.filter((l) => /RTP|foreign|SRTP/i.test(String(l.msg))).slice(-5))}`);
      const pbxShare = bestWindowShare(heard, PBX_TONE_HZ);
      assert.ok(pbxShare > 0.5, `the agent hears the PBX's ${PBX_TONE_HZ} Hz tone (share ${pbxShare.toFixed(2)})`);

      // The agent hangs up: the PBX must get our BYE (baresip: "session closed: Connection reset by peer").
      alice.hangup(connected.callId);
      await eventually(async () => pbx?.output.some((l) => /: session closed: /.test(l)), 10_000).catch(() => {
        throw new Error(`baresip never saw the call end:\n${pbx?.output.slice(-40).join('\n')}`);
      });
      const got = pbx.received();
      const agentShare = bestWindowShare(got, AGENT_TONE_HZ);
      console.log(`      tone share (Goertzel): PBX→agent ${pbxShare.toFixed(2)}, agent→PBX ${agentShare.toFixed(2)}`);
      assert.ok(agentShare > 0.5, `baresip hears the agent's ${AGENT_TONE_HZ} Hz tone (share ${agentShare.toFixed(2)}, ${got.length} samples)`);

      const calls = (await daemon.api<{ calls: Array<{ id: string; state: string; endCause: string | null }> }>('/api/v1/calls?limit=50')).body.calls;
      assert.ok(calls.length > 0);
      if (c.srtp) {
        const line = await daemon.waitForLog((l) => l.msg === 'SRTP (SDES) negotiated with the PBX' && l.transport === 'TLS');
        assert.equal(line.suite, 'AES_CM_128_HMAC_SHA1_80');
      }
    });
  }
});
