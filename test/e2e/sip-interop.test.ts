import assert from 'node:assert/strict';
import type { CallRecord } from '../../gateway/store/call-store';
import { assertSippOk, eventually, runSipp, sleep, startDaemon, type DaemonHandle, type SippResult } from './harness';
import { TestUas } from './test-uas';
import { WeriftAgent } from './werift-agent';

type CallDetail = { call: CallRecord; events: Array<{ type: string; data: Record<string, unknown> }> };

/**
 * Issue 14, what real PBXs send (sipp as the PBX, scripts/sipp/uac_*.xml): delayed offer, RFC 4028
 * session timers with UPDATE and re-INVITE refreshes, P-Asserted-Identity/Privacy/Diversion,
 * tel: URIs, RTP timeout, REFER refused and accepted. The REFER target is a TestUas on 127.0.0.2.
 * Session intervals are seconds here (sip.minSessionExpiresS lowered by config; 90 is the RFC's).
 */
describe('SIP interop: delayed offer, session timers, identity, tel:, RTP timeout, REFER', function () {
  let daemon: DaemonHandle;
  let far: TestUas;
  let target: string;
  let alice: WeriftAgent | undefined;

  before(async () => {
    far = await TestUas.create({ localIp: '127.0.0.2' });
    daemon = await startDaemon({
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
      config: {
        site: { id: 'e2e', deviceId: 'edge-interop' },
        sip: { minSessionExpiresS: 2, sessionExpiresS: 4 },
        calls: { queue: 'support', maxDurationS: 60 },
        queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 1 }],
        agents: [{ name: 'alice', password: 'alice-password' }],
        intents: [
          { name: 'billing', queue: 'support' },
          { name: 'general', queue: 'support' },
        ],
        routing: { dnis: [{ match: '8005550100', intent: 'billing', on: 'original' }], defaultIntent: 'general' },
        trunks: [
          { name: 'pbx', allow: ['127.0.0.1/32', '127.0.0.2/32'], codecs: ['PCMU', 'PCMA'], trustIdentity: true, acceptRefer: true, outbound: { host: '127.0.0.2', port: far.sipPort } },
          { name: 'plain', allow: ['127.0.0.3/32'] },
        ],
      },
    });
    target = `127.0.0.1:${daemon.sipPort}`;
  });

  afterEach(async () => {
    await alice?.close();
    alice = undefined;
  });

  after(async () => {
    await daemon?.stop();
    far?.close();
  });

  async function calls(): Promise<CallRecord[]> {
    return (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=200')).body.calls;
  }

  /** The record and events of the newest call not in `before`, once it has ended. */
  async function ended(before: Set<string>): Promise<CallDetail> {
    const rec = await eventually(async () => (await calls()).find((c) => !before.has(c.id) && (c.state === 'ended' || c.state === 'failed')), 15_000);
    return (await daemon.api<CallDetail>(`/api/v1/calls/${rec.id}`)).body;
  }

  async function known(): Promise<Set<string>> {
    return new Set((await calls()).map((c) => c.id));
  }

  async function availableAgent(): Promise<WeriftAgent> {
    const a = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
    alice = a;
    a.available();
    // A session that was logged in before may come back already available (the welcome says so).
    await a.waitFor((m) => (m.type === 'state' || m.type === 'welcome') && m.state === 'available');
    return a;
  }

  it('delayed offer: our offer in the 200, the answer (PCMA) in the ACK; the call reaches an agent and audio flows both ways', async () => {
    const before = await known();
    const agent = await availableAgent();
    const sipp = runSipp({ scenario: 'uac_delayed_offer.xml', target, durationMs: 10_000, extra: ['-rtp_echo'] });
    const connected = await agent.waitFor((m) => m.type === 'callConnected', 20_000);
    const callId = connected.type === 'callConnected' ? connected.callId : '';
    const peer = agent.peer(callId);
    assert.ok(peer, 'the agent has a WebRTC peer for the call');
    // The agent's audio goes to the PBX leg with the codec from the ACK's answer; sipp echoes it back.
    for (let i = 0; i < 25; i++) {
      peer.sendAudio(Buffer.alloc(160, 0x2a), 1000 + i * 160);
      await sleep(20);
    }
    await eventually(async () => peer.received.some((p) => p.payloadType === 8 && p.payload[0] === 0x2a), 10_000, 50);
    assertSippOk(await sipp);
    const d = await ended(before);
    assert.equal(d.call.codec, 'PCMA');
    assert.equal(d.call.agent, 'alice');
    assert.equal(d.call.endCause, 'caller-hangup');
    const types = d.events.map((e) => e.type);
    assert.ok(types.indexOf('call.media-answered') >= 0 && types.indexOf('call.media-answered') < types.indexOf('call.queued'), types.join(','));
    assert.equal(d.events.find((e) => e.type === 'call.offered')?.data.delayedOffer, true);
  });

  it('delayed offer: an ACK without an SDP answer ends the call with BYE and a Reason header; it is never queued', async () => {
    const before = await known();
    assertSippOk(await runSipp({ scenario: 'uac_delayed_offer_no_answer.xml', target }));
    const d = await ended(before);
    assert.equal(d.call.endCause, 'no-sdp-answer');
    assert.equal(d.call.queue, null);
    assert.ok(d.events.some((e) => e.type === 'call.sdp-answer-failed'));
  });

  it('a re-INVITE without SDP: our offer in the 200, the answer from the ACK applied (the codec changes to PCMA)', async () => {
    const before = await known();
    assertSippOk(await runSipp({ scenario: 'uac_reinvite_no_sdp.xml', target, extra: ['-rtp_echo'] }));
    const d = await ended(before);
    assert.equal(d.call.endCause, 'caller-hangup');
    assert.ok(d.events.some((e) => e.type === 'call.resumed'), 'the new codec was taken into use');
  });

  it('session timers: Require: timer accepted, refreshes by UPDATE and re-INVITE keep the call past the interval', async () => {
    const before = await known();
    assertSippOk(await runSipp({ scenario: 'uac_timer_refresh.xml', target }));
    const d = await ended(before);
    assert.equal(d.call.endCause, 'caller-hangup', 'the PBX hung up, not the session timer');
  });

  it('session timers: as refresher ccedge refreshes with UPDATE when the PBX allows it', async () => {
    assertSippOk(await runSipp({ scenario: 'uac_timer_uas_refresher.xml', target }));
  });

  it('session timers: as refresher ccedge refreshes with re-INVITE when the PBX does not allow UPDATE', async () => {
    assertSippOk(await runSipp({ scenario: 'uac_timer_uas_reinvite.xml', target }));
  });

  it('session timers: a missed refresh ends the call with BYE + Reason, end cause session-expired', async () => {
    const before = await known();
    assertSippOk(await runSipp({ scenario: 'uac_timer_missed.xml', target }));
    const d = await ended(before);
    assert.equal(d.call.endCause, 'session-expired');
  });

  it('session timers: Session-Expires below sip.minSessionExpiresS gets 422 with Min-SE', async () => {
    const before = await known();
    assertSippOk(await runSipp({ scenario: 'uac_timer_422.xml', target }));
    const d = await ended(before);
    assert.equal(d.call.sipStatus, 422);
  });

  it('P-Asserted-Identity + Privacy: id + Diversion: the record has the asserted caller and the original number, routing matched it, the agent sees "Private"', async () => {
    const before = await known();
    const agent = await availableAgent();
    agent.autoAnswer = false;
    const sipp = runSipp({ scenario: 'uac_identity.xml', target, durationMs: 3000 });
    const ringing = await agent.waitFor((m) => m.type === 'ringing', 15_000);
    assert.equal(ringing.type === 'ringing' && ringing.call.caller, 'Private');
    assert.equal(ringing.type === 'ringing' && ringing.call.callerName, null);
    assert.ok(!JSON.stringify(agent.inbox).includes('5551234'), 'the number never reaches the agent page');
    assertSippOk(await sipp);
    const d = await ended(before);
    assert.equal(d.call.fromUser, '+49305551234');
    assert.equal(d.call.fromName, 'Jane Doe');
    assert.equal(d.call.callerSource, 'pai');
    assert.equal(d.call.assertedIdentity, 'sip:+49-30-555-1234@127.0.0.1');
    assert.equal(d.call.privacy, 'id');
    assert.equal(d.call.originalCalled, '8005550100');
    assert.equal(d.call.toUser, '2001');
    const queued = d.events.find((e) => e.type === 'call.queued')?.data ?? {};
    assert.equal(queued.intent, 'billing', JSON.stringify(queued));
    assert.equal(queued.source, 'dnis');
  });

  it('tel: Request-URI and From are accepted and normalised', async () => {
    const before = await known();
    assertSippOk(await runSipp({ scenario: 'uac_tel.xml', target }));
    const d = await ended(before);
    assert.equal(d.call.fromUser, '+49305550001');
    assert.equal(d.call.toUser, '+4930123456');
    assert.equal(d.call.endCause, 'caller-hangup');
  });

  it('REFER on a trunk without acceptRefer: 603, the call goes on', async () => {
    const before = await known();
    assertSippOk(await runSipp({ scenario: 'uac_refer_refused.xml', target, localIp: '127.0.0.3' }));
    const d = await ended(before);
    assert.equal(d.call.endCause, 'caller-hangup');
    assert.ok(d.events.some((e) => e.type === 'call.refer-refused'));
  });

  it('REFER accepted: the target gets the INVITE, the PBX NOTIFY 100 then 200 (sipfrag), the agent is released', async () => {
    const before = await known();
    const agent = await availableAgent();
    const legs = far.calls.length;
    let sipp: Promise<SippResult> | undefined;
    try {
      sipp = runSipp({ scenario: 'uac_refer.xml', target, durationMs: 6000 });
      const connected = await agent.waitFor((m) => m.type === 'callConnected', 20_000);
      assert.equal(connected.type, 'callConnected');
      await far.until(() => far.calls.length === legs + 1 && far.calls[legs].acked, 15_000);
      assert.ok(String(far.calls[legs].invite.uri).startsWith('sip:+15550199@127.0.0.2'), String(far.calls[legs].invite.uri));
      const endedMsg = await agent.waitFor((m) => m.type === 'callEnded', 10_000);
      assert.equal(endedMsg.type === 'callEnded' && endedMsg.cause, 'transferred');
      assertSippOk(await sipp);
      await far.until(() => far.calls[legs].byeReceived, 10_000);
    } finally {
      await sipp;
    }
    const d = await ended(before);
    const types = d.events.map((e) => e.type);
    for (const t of ['call.agent-connected', 'call.refer-accepted', 'call.refer-dialing', 'call.referred']) assert.ok(types.includes(t), `${t} in ${types.join(',')}`);
  });
});

describe('RTP timeout (calls.rtpTimeoutS)', function () {
  let daemon: DaemonHandle;
  before(async () => {
    daemon = await startDaemon({ config: { calls: { rtpTimeoutS: 2, queue: 'support' }, queues: [{ name: 'support' }], trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }] } });
  });
  after(async () => {
    await daemon?.stop();
  });

  it('no RTP from the PBX: BYE with Reason, end cause rtp-timeout', async () => {
    assertSippOk(await runSipp({ scenario: 'uac_rtp_timeout.xml', target: `127.0.0.1:${daemon.sipPort}` }));
    const rec = await eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls')).body.calls.find((c) => c.state === 'ended'), 10_000);
    assert.equal(rec.endCause, 'rtp-timeout');
  });

  it('a PBX that keeps sending RTP (sipp echoing ours) is not cut', async () => {
    const r = await runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, durationMs: 5000, extra: ['-rtp_echo'] });
    assertSippOk(r);
    const rec = await eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls')).body.calls.find((c) => c.state === 'ended' && c.endCause !== 'rtp-timeout'), 10_000);
    assert.equal(rec.endCause, 'caller-hangup');
  });
});
