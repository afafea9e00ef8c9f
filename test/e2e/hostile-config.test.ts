import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FleetConsole } from '../../scripts/fleet-console/fleet-console';
import { waitFor } from '../../sync/test/helpers/cloud';
import { Mosquitto } from '../../sync/test/helpers/mosquitto';
import { sleep, startDaemon, type DaemonHandle } from './harness';
import { assertUnharmed, underAttack, WATCHDOG_INTERVAL_MS, WatchdogFifo } from './hostile-harness';
import { TestUac } from './test-uac';

interface CallRecord {
  id: string;
  toUser?: string;
}
interface CallEvent {
  type: string;
  data: Record<string, unknown>;
}

function vmRssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

describe('hostile config: pushed config is data, not code (issue 13)', function () {
  const site = 'e2e-hostile';
  const device = 'edge-hostile';
  const config = {
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
    calls: { queue: 'support' },
    agents: [{ name: 'alice', password: 'alice-password-1' }],
  };
  const wd = new WatchdogFifo();
  let broker: Mosquitto;
  let daemon: DaemonHandle;
  let fc: FleetConsole;
  const uacs: TestUac[] = [];

  before(async () => {
    broker = await Mosquitto.start(mkdtempSync(path.join(tmpdir(), 'ccedge-mosq-hostile-')));
    fc = await FleetConsole.connect({ url: `mqtt://127.0.0.1:${broker.port}`, site });
    wd.start();
    daemon = await startDaemon({
      config: { ...config, hw: { watchdog: { device: wd.path, deviceIntervalMs: WATCHDOG_INTERVAL_MS } } },
      env: { CCEDGE_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`, CCEDGE_SITE_ID: site, CCEDGE_DEVICE_ID: device, CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
    await waitFor(async () => (await fc.devices(300)).some((d) => d.device === device && d.online), 20_000, 'device online');
  });
  after(async () => {
    for (const u of uacs) u.close();
    await daemon?.stop();
    await fc?.close();
    await broker?.stop();
    wd.close();
  });

  const queuedIntent = async (toUser: string): Promise<unknown> => {
    let rec: CallRecord | undefined;
    await waitFor(async () => {
      rec = (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls')).body.calls.find((c) => c.toUser === toUser);
      return rec !== undefined;
    }, 10_000, `call record to ${toUser}`);
    let intent: unknown;
    await waitFor(async () => {
      const { body } = await daemon.api<{ events: CallEvent[] }>(`/api/v1/calls/${rec?.id}`);
      intent = body.events.find((e) => e.type === 'call.queued')?.data.intent;
      return intent !== undefined;
    }, 10_000, 'call.queued');
    return intent;
  };

  it('the catastrophic rule /^(a+)+$/ is applied and runs in linear time: OPTIONS keep being answered, the call is routed', async () => {
    const reported = await fc.pushConfig(device, 2, {
      queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }, { name: 'vip' }],
      intents: [
        { name: 'general', queue: 'support' },
        { name: 'aaa', queue: 'vip' },
      ],
      routing: { dnis: [{ match: '/^(a+)+$/', intent: 'aaa' }], defaultIntent: 'general' },
    });
    assert.equal(reported.error, undefined, JSON.stringify(reported));
    const hostileTo = `${'a'.repeat(40)}!`; // 2^40 backtracking steps in V8's RegExp
    const uac = await TestUac.create();
    uacs.push(uac);
    const matching = await TestUac.create();
    uacs.push(matching);
    const u = await underAttack(daemon, wd, '127.0.0.1', async () => {
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { to: hostileTo }), 200);
      assert.equal(await queuedIntent(hostileTo), 'general', 'no match: the default intent');
      assert.equal(await matching.call(`127.0.0.1:${daemon.sipPort}`, { to: 'aaaaaaaa' }), 200);
      assert.equal(await queuedIntent('aaaaaaaa'), 'aaa', 'the rule still matches what it should');
    });
    assertUnharmed('pushed /^(a+)+$/ and a call to 40 a + !', u);
    await uac.hangup();
    await matching.hangup();
  });

  it('a backreference pattern is refused with the key named', async () => {
    const r = await fc.pushConfig(device, 3, {
      queues: [{ name: 'support' }, { name: 'vip' }],
      intents: [{ name: 'general', queue: 'support' }],
      routing: { dnis: [{ match: '/^(a+)\\1$/', intent: 'general' }], defaultIntent: 'general' },
    });
    assert.equal(r.code, 'CONFIG_INVALID');
    assert.match(String(r.error), /routing\.dnis\.0\.match: bad regular expression: backreferences/);
  });

  it('100,000 queues are refused (payload bound), 600 by the queue limit; OPTIONS stay answered and RSS stays put', async () => {
    const rssBefore = vmRssKb(daemon.pid);
    const u = await underAttack(daemon, wd, '127.0.0.1', async () => {
      const huge = await fc.pushConfig(device, 4, { queues: Array.from({ length: 100_000 }, (_, i) => ({ name: `q${i}` })) }, 30_000);
      assert.equal(huge.code, 'CONFIG_TOO_LARGE', JSON.stringify(huge));
      assert.match(String(huge.error), /more than the 1048576 allowed \(sync\.maxConfigBytes\)/);
      const many = await fc.pushConfig(device, 5, { queues: Array.from({ length: 600 }, (_, i) => ({ name: `q${i}` })) }, 30_000);
      assert.equal(many.code, 'CONFIG_INVALID', JSON.stringify(many));
      assert.match(String(many.error), /^queues: at most 500 queues/);
    });
    const rssAfter = vmRssKb(daemon.pid);
    assertUnharmed('pushes of 100,000 and 600 queues', u);
    console.log(`      VmRSS ${Math.round(rssBefore / 1024)} MB -> ${Math.round(rssAfter / 1024)} MB`);
    assert.ok(rssAfter - rssBefore < 100 * 1024, `RSS grew ${rssAfter - rssBefore} kB`);
    const refused = await daemon.waitForLog((l) => l.code === 'CONFIG_TOO_LARGE');
    assert.equal(refused.version, 4);
    assert.equal(daemon.logs.filter((l) => l.code === 'CONFIG_TOO_LARGE').length, 1, 'logged once');
    assert.deepEqual((await fc.queues(1000)).filter((q) => q.device === device).map((q) => q.queue).sort(), ['support', 'vip'], 'the running config is untouched');
  });

  it('a push that removes a queue clears its retained snapshot on the broker', async () => {
    await waitFor(async () => (await fc.queues(500)).some((q) => q.device === device && q.queue === 'vip'), 20_000, 'retained queues/vip');
    const r = await fc.pushConfig(device, 6, { queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }] });
    assert.equal(r.error, undefined, JSON.stringify(r));
    await daemon.waitForLog((l) => l.msg === 'retained messages of removed subjects cleared on the broker');
    // A fresh subscriber (fc.queues subscribes anew) gets only the queues that exist.
    await sleep(1500);
    assert.deepEqual((await fc.queues(1000)).filter((q) => q.device === device).map((q) => q.queue), ['support']);
  });
});
