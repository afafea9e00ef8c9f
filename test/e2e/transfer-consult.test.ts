import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchChromium, openAgent, pageHears, startToneDetector, type AgentPage } from './browser';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { TestUas, type UasCall } from './test-uas';
import { checkHears, describeReport, HEARD, NOT_HEARD, PEER_TONES, ToneEar, type ToneReport } from './tones';
import { WeriftAgent } from './werift-agent';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';

/**
 * Consult from the agent page: the caller (TestUac, 1 kHz) is held while agent alice (Chromium,
 * 600 Hz) talks to extension 2001 (TestUas behind the call's trunk, 1400 Hz); then Complete
 * transfer, Conference or Cancel consult. Each party's ears say who is connected to whom.
 */
const PASSWORD = 'alice-secret';
const CALLER_HZ = 1000;
const ALICE_HZ = 600;
const EXT_HZ = 1400;
const BOB_HZ = 800;
const COMPLIANCE = 'compliance-token-0123456789';
/** Two seconds of audio at 8 kHz. */
const ENOUGH = 16_000;
/** The extension's ear judges 100 ms blocks: 20 of them are two seconds. */
const ENOUGH_BLOCKS = 20;

describe('consult, complete transfer, conference and cancel consult from the agent page', function () {
  let daemon: DaemonHandle;
  let browser: Browser;
  let ext: TestUas;
  let alice: AgentPage;
  const uacs: TestUac[] = [];
  let target: string;
  let n = 0;

  const statusIs = (re: RegExp): Promise<string> => eventually(async () => re.test(await alice.status()) && alice.status(), 20000);
  const button = (name: string) => alice.page.getByRole('button', { name, exact: true });

  /** A caller connected to alice (Available again first if needed). */
  async function callAlice(): Promise<TestUac> {
    const { page } = alice;
    if (!/^Available$/.test(await alice.status())) {
      await eventually(async () => (await page.getByRole('button', { name: 'Available' }).isEnabled()) || undefined, 20000);
      await page.getByRole('button', { name: 'Available' }).click();
    }
    await statusIs(/^Available$/);
    const uac = await TestUac.create({ codec: 'PCMU' });
    uacs.push(uac);
    assert.equal(await uac.call(target, { from: `555070${n++}` }), 200);
    await statusIs(/^Ringing$/);
    await page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(/^On call$/);
    return uac;
  }

  /** Transfer → Transfer to 2001 → Consult; resolves with the extension's call once alice talks to it. */
  async function consultTo(to: string): Promise<void> {
    const { page } = alice;
    if ((await button('Transfer').getAttribute('aria-expanded')) !== 'true') await button('Transfer').click();
    await page.getByRole('textbox', { name: 'Transfer to', exact: true }).fill(to);
    await button('Consult').click();
    await eventually(async () => (await button('Complete transfer').isEnabled()) || undefined, 20000);
    // The page's audio settles (its jitter buffer drains what it heard before the hold).
    await sleep(500);
  }

  async function consult(): Promise<UasCall> {
    const before = ext.calls.length;
    await consultTo('2001');
    const call = ext.calls[before];
    assert.ok(call, 'the extension was dialled');
    return call;
  }

  /** What each peer hears over the same stretch (two seconds or more of audio each). */
  async function listen(uac: TestUac, extCall: UasCall | null, withAlice = true): Promise<{ caller: ToneReport; alice: ToneReport | null; ext: UasCall['ear'] }> {
    if (withAlice) await eventually(() => startToneDetector(alice.page), 15000);
    uac.tones.reset();
    extCall?.ear?.reset();
    let r: { caller: ToneReport; alice: ToneReport | null; ext: UasCall['ear'] } = { caller: uac.tones.report(), alice: null, ext: undefined };
    await eventually(
      async () => {
        r = { caller: uac.tones.report(), alice: withAlice ? await pageHears(alice.page) : null, ext: extCall?.ear };
        return r.caller.samples >= ENOUGH && (!withAlice || (r.alice?.samples ?? 0) >= ENOUGH) && (!extCall || (extCall.ear?.blocks.judged ?? 0) >= ENOUGH_BLOCKS);
      },
      20000,
      250,
    );
    console.log(`      caller hears: ${describeReport(r.caller)}`);
    if (r.alice) console.log(`      alice hears: ${describeReport(r.alice)}`);
    if (extCall?.ear) console.log(`      extension hears: ${extCall.ear.describe()}`);
    return r;
  }

  /** The extension's ear: hears exactly `expected` of the caller and alice. */
  function extHears(call: UasCall, expected: readonly number[]): string | null {
    const ear = call.ear;
    if (!ear) return 'the extension has no ear';
    for (const hz of [CALLER_HZ, ALICE_HZ]) {
      const share = ear.share(hz);
      if (expected.includes(hz) && share < HEARD) return `the extension should hear ${hz} Hz: ${ear.describe()}`;
      if (!expected.includes(hz) && share >= NOT_HEARD) return `the extension should not hear ${hz} Hz: ${ear.describe()}`;
    }
    return null;
  }

  before(async () => {
    ext = await TestUas.create({ localIp: '127.0.0.2', toneHz: EXT_HZ, detect: PEER_TONES });
    daemon = await startDaemon({
      config: {
        site: { id: 'e2e', deviceId: 'edge-consult' },
        // Three parties: a conference of caller, alice and the extension is full.
        calls: { queue: 'support', maxDurationS: 600, maxParties: 3 },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32', '127.0.0.2/32'], codecs: ['PCMU', 'PCMA'], outbound: { host: '127.0.0.2', port: ext.sipPort } }],
        queues: [{ name: 'support', ringTimeoutS: 15, wrapUpS: 1 }],
        agents: [
          { name: 'alice', displayName: 'Alice', password: PASSWORD },
          { name: 'bob', displayName: 'Bob', password: 'bob-secret' },
        ],
        recording: { record: 'all', retentionDays: 30 },
        http: { tokens: [{ name: 'carla', token: COMPLIANCE, role: 'compliance' }] },
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
    target = `127.0.0.1:${daemon.sipPort}`;
    browser = await launchChromium({ toneHz: ALICE_HZ });
    alice = await openAgent(browser, daemon.httpPort, 'alice', PASSWORD);
  });
  afterEach(async () => {
    // A failed test must not leave alice on a call for the next one.
    const hangUp = alice.page.getByRole('button', { name: 'Hang up' });
    if (await hangUp.isEnabled().catch(() => false)) await hangUp.click();
    for (const u of uacs.splice(0)) {
      if (!u.byeReceived) await u.hangup().catch(() => 0);
      u.close();
    }
  });
  after(async () => {
    await alice?.context.close().catch(() => undefined);
    await browser?.close();
    await daemon?.stop();
    ext?.close();
  });

  it('consult → Complete transfer: while consulting the caller is held; then the caller and the extension hear each other, alice is gone', async () => {
    const uac = await callAlice();
    const extCall = await consult();
    const during = await listen(uac, extCall);
    assert.deepEqual(
      [checkHears('held caller', during.caller, []), checkHears('alice', during.alice as ToneReport, [EXT_HZ]), extHears(extCall, [ALICE_HZ])].filter((p) => p !== null),
      [],
    );
    await alice.shot('consult-connected');

    await button('Complete transfer').click();
    await statusIs(/^Wrap-up/);
    const after = await listen(uac, extCall, false);
    assert.deepEqual([checkHears('caller', after.caller, [EXT_HZ]), extHears(extCall, [CALLER_HZ])].filter((p) => p !== null), []);
    assert.equal(uac.byeReceived, false, 'the caller is still on the call');

    // The caller hangs up on the extension: it gets the BYE.
    uac.hangup();
    await eventually(async () => extCall.byeReceived || undefined, 10000);
    const calls = (await daemon.api<{ calls: Array<{ id: string; agent: string | null; endCause: string | null; state: string }> }>('/api/v1/calls?limit=5')).body.calls;
    const rec = calls[0];
    const detail = (await daemon.api<{ events: Array<{ type: string; data: Record<string, unknown> }> }>(`/api/v1/calls/${rec.id}`)).body;
    const types = detail.events.map((e) => e.type);
    for (const t of ['call.consult-started', 'call.consult-connected', 'call.transferred']) assert.ok(types.includes(t), `${t} in ${types.join(', ')}`);
    assert.equal(rec.agent, 'alice', 'the record keeps the agent who handled it');
  });

  it('consult → Conference: all three hear the other two; alice hangs up and the caller and the extension go on', async () => {
    const uac = await callAlice();
    const extCall = await consult();
    await button('Conference').click();
    await eventually(async () => (await alice.page.locator('#parties li').count()) === 3 || undefined, 10000);
    const conf = await listen(uac, extCall);
    assert.deepEqual(
      [checkHears('caller', conf.caller, [ALICE_HZ, EXT_HZ]), checkHears('alice', conf.alice as ToneReport, [CALLER_HZ, EXT_HZ]), extHears(extCall, [CALLER_HZ, ALICE_HZ])].filter((p) => p !== null),
      [],
    );
    await alice.shot('conference');
    // calls.maxParties (3) reached: a fourth party is refused, the conference goes on.
    await alice.page.getByRole('textbox', { name: 'Transfer to', exact: true }).fill('2002');
    await button('Consult').click();
    await alice.page.getByRole('alert').filter({ hasText: 'no more parties can join this call' }).waitFor();
    assert.equal(ext.calls.filter((c) => c.invite.uri.includes('2002')).length, 0, '2002 was not dialled');

    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    await statusIs(/^Wrap-up/);
    const after = await listen(uac, extCall, false);
    assert.deepEqual([checkHears('caller', after.caller, [EXT_HZ]), extHears(extCall, [CALLER_HZ])].filter((p) => p !== null), []);
    assert.equal(uac.byeReceived, false, 'the caller goes on after alice left');
    assert.equal(extCall.byeReceived, false, 'the extension goes on after alice left');
    // The extension hangs up: the caller, alone now, gets BYE.
    await ext.hangup(extCall);
    assert.ok(await uac.waitForBye(10000), 'the caller got BYE once the last other party left');
  });

  it('consult → Cancel consult: the extension gets BYE, the caller hears alice again', async () => {
    const uac = await callAlice();
    const extCall = await consult();
    await button('Cancel consult').click();
    await eventually(async () => extCall.byeReceived || undefined, 10000);
    await eventually(async () => (await button('Consult').isEnabled()) || undefined, 10000);
    const back = await listen(uac, null);
    assert.deepEqual([checkHears('caller', back.caller, [ALICE_HZ]), checkHears('alice', back.alice as ToneReport, [CALLER_HZ])].filter((p) => p !== null), []);
    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    assert.ok(await uac.waitForBye(10000));
    await statusIs(/^Wrap-up/);
    await sleep(1200); // wrap-up (1 s) ends before the next test or the daemon stops
  });

  it('consult agent:bob (werift) → Complete transfer: bob rings and talks to alice, then to the caller; ONE recording has alice and bob', async () => {
    const uac = await callAlice();
    const callId = (await daemon.api<{ calls: Array<{ id: string }> }>('/api/v1/calls?limit=1')).body.calls[0].id;
    const bob = await WeriftAgent.login(daemon.httpPort, 'bob', 'bob-secret');
    try {
      bob.toneHz = BOB_HZ;
      bob.available();
      await eventually(async () => (await daemon.api<{ agents: Array<{ name: string; state: string }> }>('/api/v1/agents')).body.agents.find((a) => a.name === 'bob')?.state === 'available' || undefined, 10000);
      await consultTo('agent:bob');
      const rang = await bob.waitFor<Extract<ServerMessage, { type: 'ringing' }>>((m) => m.type === 'ringing');
      assert.equal(rang.call.callId, callId, 'bob rang for the same call');
      await bob.waitFor((m) => m.type === 'callConnected');
      await eventually(async () => bob.peer(callId)?.connectionState === 'connected', 15000);

      let from = bob.receivedCount(callId);
      const during = await listen(uac, null);
      const bobDuring = bob.hears(callId, from);
      console.log(`      bob hears: ${describeReport(bobDuring)}`);
      assert.deepEqual(
        [checkHears('held caller', during.caller, []), checkHears('alice', during.alice as ToneReport, [BOB_HZ]), checkHears('bob', bobDuring, [ALICE_HZ])].filter((p) => p !== null),
        [],
      );

      await button('Complete transfer').click();
      await statusIs(/^Wrap-up/);
      from = bob.receivedCount(callId);
      const after = await listen(uac, null, false);
      await eventually(async () => bob.hears(callId, from).samples >= ENOUGH || undefined, 15000);
      const bobAfter = bob.hears(callId, from);
      console.log(`      bob hears: ${describeReport(bobAfter)}`);
      assert.deepEqual([checkHears('caller', after.caller, [BOB_HZ]), checkHears('bob', bobAfter, [CALLER_HZ])].filter((p) => p !== null), []);

      bob.hangup(callId);
      assert.ok(await uac.waitForBye(10000), 'bob hung up: the caller got BYE');
      const detail = (await daemon.api<{ call: { agent: string | null }; events: Array<{ type: string }> }>(`/api/v1/calls/${callId}`)).body;
      assert.ok(detail.events.some((e) => e.type === 'call.transferred'));

      // One recording of the call; what the caller heard (right channel) has alice's tone and bob's.
      const recs = await eventually(async () => {
        const r = (await daemon.api<{ recordings: Array<{ id: string; callId: string; state: string }> }>('/api/v1/recordings')).body.recordings.filter((x) => x.callId === callId);
        return r.length > 0 && r.every((x) => x.state === 'final') && r;
      }, 15000);
      assert.equal(recs.length, 1, 'one recording for the transferred call');
      const res = await fetch(`http://127.0.0.1:${daemon.httpPort}/api/v1/recordings/${recs[0].id}/audio`, { headers: { authorization: `Bearer ${COMPLIANCE}`, 'x-ccedge-reason': 'transfer check' } });
      assert.equal(res.status, 200);
      const wav = Buffer.from(await res.arrayBuffer());
      assert.equal(wav.readUInt16LE(22), 2, 'two channels');
      const codec = wav.readUInt16LE(20) === 7 ? 'PCMU' : 'PCMA';
      const data = wav.subarray(58);
      const right = Buffer.from(data.filter((_, i) => i % 2 === 1));
      const left = Buffer.from(data.filter((_, i) => i % 2 === 0));
      const ear = new ToneEar(PEER_TONES);
      for (let i = 0; i + 160 <= right.length; i += 160) ear.push(right.subarray(i, i + 160), codec);
      const callerEar = new ToneEar(PEER_TONES);
      for (let i = 0; i + 160 <= left.length; i += 160) callerEar.push(left.subarray(i, i + 160), codec);
      console.log(`      recording, caller's side: ${callerEar.describe()}`);
      console.log(`      recording, what the caller heard: ${ear.describe()}`);
      // Per 100 ms block: alice talks only until the hand-over, so her share of the whole file is
      // small (and Chromium's mic is ~20 dB lower); what matters is that her blocks are there.
      const blockShares = (hz: number): number => {
        let best = 0;
        for (let i = 0; i + 800 <= right.length; i += 800) {
          const block = new ToneEar(PEER_TONES);
          for (let j = i; j < i + 800; j += 160) block.push(right.subarray(j, j + 160), codec);
          best = Math.max(best, block.share(hz));
        }
        return best;
      };
      assert.ok(blockShares(ALICE_HZ) >= 0.5, `alice is in the recording (best block ${blockShares(ALICE_HZ).toFixed(2)}): ${ear.describe()}`);
      assert.ok(blockShares(BOB_HZ) >= 0.5, `bob is in the recording (best block ${blockShares(BOB_HZ).toFixed(2)}): ${ear.describe()}`);
      assert.ok(callerEar.share(CALLER_HZ) >= 0.5, `the caller is in the recording: ${callerEar.describe()}`);
    } finally {
      await bob.close();
    }
  });

  it('consult to a busy extension: the page says it could not reach it, the caller is back with alice', async () => {
    const uac = await callAlice();
    ext.answerWith = 486;
    try {
      if ((await button('Transfer').getAttribute('aria-expanded')) !== 'true') await button('Transfer').click();
      await alice.page.getByRole('textbox', { name: 'Transfer to', exact: true }).fill('2001');
      await button('Consult').click();
      await eventually(async () => /Could not reach 2001/.test((await alice.page.locator('#consult-status').textContent()) ?? '') || undefined, 15000);
    } finally {
      ext.answerWith = 200;
    }
    await eventually(async () => (await button('Consult').isEnabled()) || undefined, 10000);
    const back = await listen(uac, null);
    assert.deepEqual([checkHears('caller', back.caller, [ALICE_HZ]), checkHears('alice', back.alice as ToneReport, [CALLER_HZ])].filter((p) => p !== null), []);
    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    assert.ok(await uac.waitForBye(10000));
    await statusIs(/^Wrap-up/);
    await sleep(1200);
  });

  it('consult agent:bob → Conference: caller, alice and bob all hear the other two; alice hangs up, bob keeps the caller', async () => {
    const uac = await callAlice();
    const callId = (await daemon.api<{ calls: Array<{ id: string }> }>('/api/v1/calls?limit=1')).body.calls[0].id;
    const bob = await WeriftAgent.login(daemon.httpPort, 'bob', 'bob-secret');
    try {
      bob.toneHz = BOB_HZ;
      bob.available();
      await eventually(async () => (await daemon.api<{ agents: Array<{ name: string; state: string }> }>('/api/v1/agents')).body.agents.find((a) => a.name === 'bob')?.state === 'available' || undefined, 15000);
      await consultTo('agent:bob');
      await eventually(async () => bob.peer(callId)?.connectionState === 'connected', 15000);
      await button('Conference').click();
      await eventually(async () => (await alice.page.locator('#parties li').count()) === 3 || undefined, 10000);
      let from = bob.receivedCount(callId);
      const conf = await listen(uac, null);
      await eventually(async () => bob.hears(callId, from).samples >= ENOUGH || undefined, 15000);
      const bobConf = bob.hears(callId, from);
      console.log(`      bob hears: ${describeReport(bobConf)}`);
      assert.deepEqual(
        [checkHears('caller', conf.caller, [ALICE_HZ, BOB_HZ]), checkHears('alice', conf.alice as ToneReport, [CALLER_HZ, BOB_HZ]), checkHears('bob', bobConf, [CALLER_HZ, ALICE_HZ])].filter((p) => p !== null),
        [],
      );

      await alice.page.getByRole('button', { name: 'Hang up' }).click();
      await statusIs(/^Wrap-up/);
      from = bob.receivedCount(callId);
      const after = await listen(uac, null, false);
      await eventually(async () => bob.hears(callId, from).samples >= ENOUGH || undefined, 15000);
      const bobAfter = bob.hears(callId, from);
      assert.deepEqual([checkHears('caller', after.caller, [BOB_HZ]), checkHears('bob', bobAfter, [CALLER_HZ])].filter((p) => p !== null), []);
      assert.equal((await daemon.api<{ agents: Array<{ name: string; callId: string | null }> }>('/api/v1/agents')).body.agents.find((a) => a.name === 'bob')?.callId, callId, 'the call is bob\'s now');
      bob.hangup(callId);
      assert.ok(await uac.waitForBye(10000), 'bob hung up: the caller got BYE');
    } finally {
      await bob.close();
    }
  });
});
