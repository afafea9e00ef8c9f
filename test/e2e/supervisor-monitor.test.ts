import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { Db } from '../../gateway/store/db';
import type { SupervisorAuditRow } from '../../gateway/store/supervisor-audit-store';
import { launchChromium, pageHears, SHOTS, startToneDetector } from './browser';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { checkHears, describeReport, type ToneReport } from './tones';
import { WeriftAgent } from './werift-agent';

const PASSWORDS = { bob: 'bob-secret', sue: 'sue-secret' };
const CONFIG = {
  site: { id: 'e2e', deviceId: 'edge-monitor' },
  // Two parties only: a supervisor (even barging) is a monitor, not a party, so it still fits.
  calls: { queue: 'support', maxDurationS: 600, maxParties: 2 },
  trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMA', 'PCMU'] }],
  queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
  agents: [
    { name: 'bob', displayName: 'Bob', password: PASSWORDS.bob },
    { name: 'sue', displayName: 'Sue', password: PASSWORDS.sue, role: 'supervisor' },
  ],
  supervisor: { updateEveryMs: 300 },
};

/** Each party's own tone: the SIP caller, the werift agent, the supervisor's Chromium microphone. */
const CALLER_HZ = 1000;
const AGENT_HZ = 600;
const SUPERVISOR_HZ = 1400;
/** Two seconds of audio at 8 kHz per measurement. */
const ENOUGH = 16_000;

describe('supervisor monitoring: Listen, Whisper, Barge, Stop — who hears whom (SIP caller 1 kHz, werift agent 600 Hz, Chromium supervisor 1400 Hz)', function () {
  let daemon: DaemonHandle;
  let browser: Browser;
  let context: BrowserContext | undefined;
  const uacs: TestUac[] = [];
  const werifts: WeriftAgent[] = [];

  const audit = async (): Promise<SupervisorAuditRow[]> => (await daemon.api<{ audit: SupervisorAuditRow[] }>('/api/v1/supervisor-audit')).body.audit;

  before(async () => {
    daemon = await startDaemon({ config: CONFIG, env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
    browser = await launchChromium({ toneHz: SUPERVISOR_HZ });
  });
  after(async () => {
    for (const u of uacs.splice(0)) u.close();
    for (const a of werifts.splice(0)) await a.close();
    await context?.close().catch(() => undefined);
    await browser?.close();
    await daemon?.stop();
  });

  it('listen: sue hears both and nobody hears her; whisper: only bob hears her; barge: all hear all; stop: nobody; every span is audited', async () => {
    const bob = await WeriftAgent.login(daemon.httpPort, 'bob', PASSWORDS.bob);
    werifts.push(bob);
    bob.toneHz = AGENT_HZ;
    bob.available();
    const caller = await TestUac.create({ codec: 'PCMA', toneHz: CALLER_HZ });
    uacs.push(caller);
    assert.equal(await caller.call(`127.0.0.1:${daemon.sipPort}`, { from: '5550123' }), 200, 'the queue answers the caller');
    const { callId } = await bob.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected');
    await eventually(async () => bob.peer(callId)?.connectionState === 'connected', 15_000);

    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['microphone'], { origin: `http://127.0.0.1:${daemon.httpPort}` });
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${daemon.httpPort}/supervisor`);
    await page.getByLabel('Agent').fill('sue');
    await page.getByLabel('Password').fill(PASSWORDS.sue);
    await page.getByRole('button', { name: 'Log in' }).click();
    const row = page.locator('tr[data-agent="bob"]');
    await row.getByText('On call').waitFor();
    // The page's live status line (role status): empty while not monitoring.
    const status = page.locator('#monitor-status');

    /** Who hears what from now on (after the switch settled), for two seconds of audio each. */
    const measure = async (phase: string, expect: { caller: number[]; agent: number[]; supervisor: number[] | null }): Promise<void> => {
      // Audio already in flight (jitter buffers, the mixer's frame) belongs to the previous mode.
      await sleep(600);
      if (expect.supervisor) await eventually(() => startToneDetector(page), 15_000);
      caller.tones.reset();
      const bobFrom = bob.receivedCount(callId);
      let reports: Record<string, ToneReport> = {};
      await eventually(
        async () => {
          reports = { caller: caller.tones.report(), agent: bob.hears(callId, bobFrom) };
          if (expect.supervisor) reports.supervisor = await pageHears(page);
          return Object.values(reports).every((r) => r.samples >= ENOUGH);
        },
        20_000,
        250,
      );
      for (const [who, r] of Object.entries(reports)) console.log(`      ${phase}: ${who} hears ${describeReport(r)}`);
      const problems = [
        checkHears(`${phase}: caller`, reports.caller, expect.caller),
        checkHears(`${phase}: agent bob`, reports.agent, expect.agent),
        expect.supervisor ? checkHears(`${phase}: supervisor sue`, reports.supervisor, expect.supervisor) : null,
      ].filter((p): p is string => p !== null);
      assert.deepEqual(problems, []);
    };

    await row.getByRole('button', { name: 'Listen', exact: true }).click();
    await status.getByText(/^Listen: call .* \(nobody hears you\)$/).waitFor();
    await eventually(async () => (await page.evaluate(() => (globalThis as unknown as { ccedge: { pc(): { connectionState: string } | null } }).ccedge.pc()?.connectionState)) === 'connected', 15_000);
    assert.equal(await row.getByRole('button', { name: 'Listen', exact: true }).getAttribute('aria-pressed'), 'true');
    await measure('listen', { caller: [AGENT_HZ], agent: [CALLER_HZ], supervisor: [CALLER_HZ, AGENT_HZ] });

    await row.getByRole('button', { name: 'Whisper', exact: true }).click();
    await status.getByText(/^Whisper: call .* \(only the agent hears you\)$/).waitFor();
    await measure('whisper', { caller: [AGENT_HZ], agent: [CALLER_HZ, SUPERVISOR_HZ], supervisor: [CALLER_HZ, AGENT_HZ] });

    await row.getByRole('button', { name: 'Barge', exact: true }).click();
    await status.getByText(/^Barge: call .* \(everyone hears you\)$/).waitFor();
    await measure('barge', { caller: [AGENT_HZ, SUPERVISOR_HZ], agent: [CALLER_HZ, SUPERVISOR_HZ], supervisor: [CALLER_HZ, AGENT_HZ] });
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'supervisor.png'), fullPage: true });

    await row.getByRole('button', { name: 'Stop', exact: true }).click();
    await eventually(async () => (await status.textContent()) === '' || undefined, 10_000);
    assert.equal(await row.getByRole('button', { name: 'Stop', exact: true }).isDisabled(), true, 'nothing to stop any more');
    await measure('stopped', { caller: [AGENT_HZ], agent: [CALLER_HZ], supervisor: null });

    // Listening again, then the caller hangs up: the session ends with the call.
    await row.getByRole('button', { name: 'Listen', exact: true }).click();
    await status.getByText(/^Listen: call/).waitFor();
    assert.equal(await caller.hangup(), 200);
    await eventually(async () => (await status.textContent()) === '' || undefined, 10_000);

    const rows = await eventually(async () => {
      const r = (await audit()).filter((x) => x.action === 'monitor').reverse();
      return r.length >= 4 && r.every((x) => x.endedAt !== null) && r;
    }, 10_000);
    assert.deepEqual(
      rows.map((r) => [r.supervisor, r.callId, r.agent, r.mode, r.endReason]),
      [
        ['sue', callId, 'bob', 'listen', 'mode-change'],
        ['sue', callId, 'bob', 'whisper', 'mode-change'],
        ['sue', callId, 'bob', 'barge', 'stopped'],
        ['sue', callId, 'bob', 'listen', 'call-ended'],
      ],
    );
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      assert.ok(r.startedAt && r.endedAt && r.startedAt <= r.endedAt, `span ${i}: ${r.startedAt} – ${r.endedAt}`);
      // A mode change ends one span where the next begins.
      if (i < 2) assert.equal(r.endedAt, rows[i + 1].startedAt, `span ${i} ends where span ${i + 1} starts`);
    }

    // The same spans leave for the cloud as supervisor.monitor events, with the policy's fields only.
    const db = await Db.open(path.join(daemon.dataDir, 'ccedge.db'));
    try {
      const events = await db.all<{ payload: string }>("SELECT payload FROM sync_outbox WHERE type = 'supervisor.monitor' ORDER BY seq");
      const payloads = events.map((e) => JSON.parse(e.payload) as Record<string, unknown>);
      assert.deepEqual(
        payloads.map((p) => [p.supervisor, p.callId, p.agent, p.mode, p.reason]),
        rows.map((r) => [r.supervisor, r.callId, r.agent, r.mode, r.endReason]),
      );
      const envelope = new Set(['bootId', 'id', 'seq', 'ts', 'type']);
      assert.deepEqual(
        Object.keys(payloads[0]).filter((k) => !envelope.has(k)).sort(),
        ['agent', 'callId', 'durationS', 'endedAt', 'mode', 'reason', 'startedAt', 'supervisor'],
      );
    } finally {
      await db.close();
    }
  });
});
