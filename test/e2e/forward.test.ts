import assert from 'node:assert/strict';
import type { CallRecord } from '../../gateway/store/call-store';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { TestUas } from './test-uas';

type CallDetail = { call: CallRecord; events: Array<{ type: string; data: Record<string, unknown> }> };

/**
 * routing.forward: calls to matching numbers are answered and bridged RTP↔RTP to an outbound call
 * on another trunk (B2BUA), with no agent and no transcoding. The PBX is a TestUac on 127.0.0.1,
 * the far end a TestUas on 127.0.0.2 that echoes RTP.
 */
describe('forward to a trunk number (RTP↔RTP relay)', function () {
  let daemon: DaemonHandle;
  let far: TestUas;

  before(async () => {
    far = await TestUas.create({ localIp: '127.0.0.2' });
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support' },
        trunks: [
          { name: 'pbx', allow: ['127.0.0.1/32'] },
          { name: 'far', allow: ['127.0.0.2/32'], codecs: ['PCMU', 'PCMA'], outbound: { host: '127.0.0.2', port: far.sipPort } },
        ],
        queues: [{ name: 'support' }],
        routing: { forward: [{ match: '7001', trunk: 'far', number: '+15550199' }, { match: '72*', trunk: 'far' }] },
      },
    });
  });

  after(async () => {
    await daemon?.stop();
    far?.close();
  });

  async function detail(sipCallIdOf: (c: CallRecord) => boolean): Promise<CallDetail> {
    const rec = await eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=50')).body.calls.find((c) => sipCallIdOf(c) && c.state === 'ended'), 10_000);
    return (await daemon.api<CallDetail>(`/api/v1/calls/${rec.id}`)).body;
  }

  it('relays audio both ways without transcoding; the caller hanging up ends the far leg', async () => {
    const uac = await TestUac.create({ codec: 'PCMA' });
    try {
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { to: '7001', from: '5550101' }), 200);
      await far.until(() => far.calls.length === 1 && far.calls[0].acked);
      const leg = far.calls[0];
      assert.equal(String(leg.invite.uri).startsWith('sip:+15550199@127.0.0.2'), true, String(leg.invite.uri));
      assert.deepEqual(leg.offeredPayloadTypes.filter((p) => p < 96), [8], 'only the caller\'s codec is offered');
      // The caller's tone goes to the far end and its echo comes back through the daemon.
      await eventually(async () => uac.packetsReceived >= 25 && uac.receivedLevel > 1000, 10_000, 50);
      assert.equal(await uac.hangup(), 200);
      await far.until(() => leg.byeReceived);
      const d = await detail((c) => c.toUser === '7001');
      assert.equal(d.call.endCause, 'caller-hangup');
      assert.equal(d.call.queue, null);
      const types = d.events.map((e) => e.type);
      for (const t of ['call.forward-dialing', 'call.forward-connected', 'call.ended']) assert.ok(types.includes(t), `${t} in ${types.join(',')}`);
      const ended = d.events.find((e) => e.type === 'call.ended')?.data ?? {};
      assert.ok(Number(ended.bridgedToAgent) > 0 && Number(ended.bridgedToCaller) > 0, JSON.stringify(ended));
    } finally {
      uac.close();
    }
  });

  it('the far end hanging up ends the caller leg; the called number is dialled when the rule names none', async () => {
    const uac = await TestUac.create({ codec: 'PCMU' });
    try {
      const before = far.calls.length;
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { to: '7299' }), 200);
      await far.until(() => far.calls.length === before + 1 && far.calls[before].acked);
      const leg = far.calls[before];
      assert.ok(String(leg.invite.uri).startsWith('sip:7299@'), String(leg.invite.uri));
      await eventually(async () => uac.packetsReceived >= 10, 10_000, 50);
      assert.equal(await far.hangup(leg), 200);
      assert.ok(await uac.waitForBye(5000), 'the caller gets BYE');
      const d = await detail((c) => c.toUser === '7299');
      assert.equal(d.call.endCause, 'forward-hangup');
    } finally {
      uac.close();
    }
  });

  it('a refused forward releases the caller with forward-failed', async () => {
    const uac = await TestUac.create({ codec: 'PCMU' });
    far.answerWith = 486;
    try {
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { to: '7201' }), 200);
      assert.ok(await uac.waitForBye(5000), 'the caller gets BYE');
      const d = await detail((c) => c.toUser === '7201');
      assert.equal(d.call.endCause, 'forward-failed');
      assert.ok(d.events.some((e) => e.type === 'call.forward-failed' && e.data.status === 486));
    } finally {
      far.answerWith = 200;
      uac.close();
    }
  });

  it('other numbers are queued as before', async () => {
    const uac = await TestUac.create({ codec: 'PCMU' });
    try {
      const before = far.calls.length;
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { to: 'support' }), 200);
      await sleep(500);
      assert.equal(far.calls.length, before);
      const rec = await eventually(async () => (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=50')).body.calls.find((c) => c.toUser === 'support' && c.queue === 'support'), 5000);
      assert.ok(rec);
    } finally {
      uac.close();
    }
  });
});
