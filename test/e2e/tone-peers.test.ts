import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { launchChromium, openAgent, pageHears, startToneDetector, type AgentPage } from './browser';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { checkHears, describeReport, type ToneReport } from './tones';
import { WeriftAgent } from './werift-agent';

const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret' };
const CONFIG = {
  site: { id: 'e2e', deviceId: 'edge-tones' },
  calls: { queue: 'support', maxDurationS: 600 },
  trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMA', 'PCMU'] }],
  queues: [{ name: 'support', ringTimeoutS: 15, wrapUpS: 1 }],
  agents: [
    { name: 'alice', displayName: 'Alice', password: PASSWORDS.alice },
    { name: 'bob', displayName: 'Bob', password: PASSWORDS.bob },
  ],
};

/** The caller's own tone (test-uac), the Chromium agent's and the werift agent's. */
const CALLER_HZ = 1000;
const CHROMIUM_HZ = 600;
const WERIFT_HZ = 800;
/** Two seconds of audio at 8 kHz: enough for a clear share per frequency. */
const ENOUGH = 16_000;

describe('tone test peers: each party sends its own frequency and hears the others', function () {
  let daemon: DaemonHandle;
  let browser: Browser;
  const uacs: TestUac[] = [];
  const pages: AgentPage[] = [];
  const agents: WeriftAgent[] = [];
  let target: string;

  const caller = async (codec: 'PCMU' | 'PCMA', from: string): Promise<TestUac> => {
    const uac = await TestUac.create({ codec });
    uacs.push(uac);
    assert.equal(await uac.call(target, { from }), 200, 'the queue answers the caller');
    return uac;
  };
  const statusIs = (p: AgentPage, re: RegExp): Promise<string> => eventually(async () => re.test(await p.status()) && p.status(), 15000);

  before(async () => {
    daemon = await startDaemon({ config: CONFIG, env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
    target = `127.0.0.1:${daemon.sipPort}`;
    browser = await launchChromium({ toneHz: CHROMIUM_HZ });
  });
  afterEach(async () => {
    for (const u of uacs.splice(0)) u.close();
    for (const p of pages.splice(0)) await p.context.close().catch(() => undefined);
    for (const a of agents.splice(0)) await a.close().catch(() => undefined);
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  it('caller (1 kHz) ↔ Chromium agent (600 Hz) and caller (1 kHz) ↔ werift agent (800 Hz): each hears the other, nobody a wrong tone', async () => {
    // Call 1 to the Chromium agent (PCMA), call 2 to the werift agent (PCMU), both up at once.
    const alice = await openAgent(browser, daemon.httpPort, 'alice', PASSWORDS.alice);
    pages.push(alice);
    await alice.page.getByRole('button', { name: 'Available' }).click();
    await statusIs(alice, /^Available$/);
    const toAlice = await caller('PCMA', '5550601');
    await statusIs(alice, /^Ringing$/);
    await alice.page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(alice, /^On call$/);

    const bob = await WeriftAgent.login(daemon.httpPort, 'bob', PASSWORDS.bob);
    agents.push(bob);
    bob.toneHz = WERIFT_HZ;
    bob.available();
    const toBob = await caller('PCMU', '5550802');
    const connected = await bob.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected');
    const bobCall = connected.callId;
    await eventually(async () => bob.peer(bobCall)?.connectionState === 'connected', 15000);

    // Measure from now: every party's audio is flowing.
    await eventually(() => startToneDetector(alice.page), 15000);
    toAlice.tones.reset();
    toBob.tones.reset();
    const bobFrom = bob.receivedCount(bobCall);
    let reports: Record<string, ToneReport> = {};
    await eventually(async () => {
      reports = {
        'caller of alice': toAlice.tones.report(),
        'alice (Chromium)': await pageHears(alice.page),
        'caller of bob': toBob.tones.report(),
        'bob (werift)': bob.hears(bobCall, bobFrom),
      };
      return Object.values(reports).every((r) => r.samples >= ENOUGH);
    }, 20000, 250);
    for (const [who, r] of Object.entries(reports)) console.log(`      ${who} hears: ${describeReport(r)}`);
    const problems = [
      checkHears('caller of alice', reports['caller of alice'], [CHROMIUM_HZ]),
      checkHears('alice (Chromium)', reports['alice (Chromium)'], [CALLER_HZ]),
      checkHears('caller of bob', reports['caller of bob'], [WERIFT_HZ]),
      checkHears('bob (werift)', reports['bob (werift)'], [CALLER_HZ]),
    ].filter((p): p is string => p !== null);
    assert.deepEqual(problems, []);

    await alice.page.getByRole('button', { name: 'Hang up' }).click();
    assert.ok(await toAlice.waitForBye(5000), 'the caller of alice got BYE');
    bob.hangup(bobCall);
    assert.ok(await toBob.waitForBye(5000), 'the caller of bob got BYE');
  });

  it('the Transfer panel: a bad target is refused on the page; a consult to a queue is refused (WS_TARGET_UNAVAILABLE)', async () => {
    const alice = await openAgent(browser, daemon.httpPort, 'alice', PASSWORDS.alice);
    pages.push(alice);
    const { page } = alice;
    await statusIs(alice, /^(Available|Wrap-up|Away)/);
    if (!/^Available$/.test(await alice.status())) {
      await eventually(async () => (await page.getByRole('button', { name: 'Available' }).isEnabled()) || undefined, 15000);
      await page.getByRole('button', { name: 'Available' }).click();
    }
    await statusIs(alice, /^Available$/);
    assert.equal(await page.getByRole('button', { name: 'Transfer', exact: true }).isDisabled(), true, 'no call: no Transfer');
    await caller('PCMU', '5550603');
    await statusIs(alice, /^Ringing$/);
    await page.getByRole('button', { name: 'Answer' }).click();
    await statusIs(alice, /^On call$/);

    const transfer = page.getByRole('button', { name: 'Transfer', exact: true });
    await transfer.click();
    assert.equal(await transfer.getAttribute('aria-expanded'), 'true');
    const to = page.getByRole('textbox', { name: 'Transfer to', exact: true });
    await to.fill('sales');
    await page.getByRole('button', { name: 'Transfer now', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: '"sales" is not a transfer target' }).waitFor();
    assert.equal(await to.getAttribute('aria-invalid'), 'true');
    assert.match((await page.locator('#transfer-error').textContent()) ?? '', /queue:<name> or agent:<name>/);
    assert.equal(await page.getByRole('button', { name: 'Complete transfer' }).isVisible(), false, 'no consult: no consult buttons');

    await to.fill('queue:support');
    assert.equal(await to.getAttribute('aria-invalid'), 'false', 'typing clears the error');
    await page.getByRole('button', { name: 'Consult', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'use Transfer now for queues' }).waitFor();
    await alice.shot('transfer-refused');
    assert.match(await alice.status(), /^On call$/, 'the call goes on');
    await page.getByRole('button', { name: 'Hang up' }).click();
    await statusIs(alice, /^Wrap-up$/);
    assert.equal(await page.getByRole('textbox', { name: 'Transfer to' }).isVisible(), false, 'the panel closes with the call');
    await sleep(1200); // wrap-up (1 s) ends before the daemon stops
  });
});
