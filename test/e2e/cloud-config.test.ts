import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FleetConsole, type FleetEvent } from '../../scripts/fleet-console/fleet-console';
import { waitFor } from '../../sync/test/helpers/cloud';
import { Mosquitto } from '../../sync/test/helpers/mosquitto';
import { assertSippOk, runSipp, sleep, startDaemon, type DaemonHandle } from './harness';
import { WeriftAgent } from './werift-agent';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';

interface Diagnostics {
  queues: Array<{ name: string; waiting: number; offered: number; connected: number }>;
}
interface RunningConfig {
  calls: { queue?: string };
  queues: Array<{ name: string }>;
}

describe('cloud config push and queue.pause: a real daemon driven by the fleet console over mosquitto', function () {
  const site = 'e2e-cfg';
  const device = 'edge-cfg';
  const config = {
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
    calls: { queue: 'support' },
    agents: [{ name: 'alice', password: 'alice-password-1' }],
  };
  let broker: Mosquitto;
  let daemon: DaemonHandle;
  let fc: FleetConsole;
  const events: FleetEvent[] = [];

  const start = (dataDir?: string, ports?: { sip: number; http: number }): Promise<DaemonHandle> =>
    startDaemon({ config, dataDir, ports, env: { CCEDGE_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`, CCEDGE_SITE_ID: site, CCEDGE_DEVICE_ID: device, CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
  const diagnostics = async (): Promise<Diagnostics> => {
    const r = await fc.command(device, 'diagnostics');
    assert.equal(r.ok, true, JSON.stringify(r));
    return r.result as Diagnostics;
  };
  const running = async (): Promise<RunningConfig> => {
    const r = await fc.command(device, 'config.get');
    assert.equal(r.ok, true, JSON.stringify(r));
    return r.result as RunningConfig;
  };

  before(async () => {
    broker = await Mosquitto.start(mkdtempSync(path.join(tmpdir(), 'ccedge-mosq-cfg-')));
    fc = await FleetConsole.connect({ url: `mqtt://127.0.0.1:${broker.port}`, site });
    await fc.followEvents((e) => events.push(e));
    daemon = await start();
    await waitFor(async () => (await fc.devices(300)).some((d) => d.device === device && d.online), 20_000, 'device online');
  });
  after(async () => {
    await daemon?.stop();
    await fc?.close();
    await broker?.stop();
  });

  it('a good push (new queue, calls.queue) is applied and reported; the next call waits in the new queue', async () => {
    const reported = await fc.pushConfig(device, 2, { queues: [{ name: 'support' }, { name: 'sales', ringTimeoutS: 20, wrapUpS: 0 }], calls: { queue: 'sales' } });
    assert.equal(reported.error, undefined, JSON.stringify(reported));
    assert.equal(reported.version, 2);
    assert.ok(reported.appliedAt && !Number.isNaN(Date.parse(reported.appliedAt)));
    assert.equal((await running()).calls.queue, 'sales');
    assert.deepEqual(
      (await diagnostics()).queues.map((q) => q.name),
      ['support', 'sales'],
    );
    const r = await runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 1, rate: 1, durationMs: 300 });
    assertSippOk(r);
    await waitFor(() => events.some((e) => e.type === 'call.queued' && e.queue === 'sales'), 20_000, 'call.queued in sales');
    assert.ok(events.some((e) => e.type === 'config.applied' && e.version === 2), 'config.applied event');
  });

  it('bad pushes are refused with a reason naming the problem; the previous config keeps running', async () => {
    const cold = await fc.pushConfig(device, 3, { sip: { port: 5999 } });
    assert.equal(cold.version, 3);
    assert.match(String(cold.error), /sip cannot change while running/);
    const dangling = await fc.pushConfig(device, 4, { queues: [{ name: 'support' }], calls: { queue: 'nope' } });
    assert.match(String(dangling.error), /calls\.queue: no queue named "nope"/);
    const unknown = await fc.pushConfig(device, 5, { bogus: true });
    assert.match(String(unknown.error), /unknown config section\(s\): bogus/);
    const garbage = await fc.pushConfig(device, 6, 'not an object');
    assert.match(String(garbage.error), /must be an object/);
    assert.equal((await running()).calls.queue, 'sales');
    assert.deepEqual(
      (await running()).queues.map((q) => q.name),
      ['support', 'sales'],
    );
  });

  it('queue.pause holds callers in the queue with an agent available; resume offers the call', async () => {
    const paused = await fc.command(device, 'queue.pause', { queue: 'sales', paused: true, reason: 'training' });
    assert.equal(paused.ok, true, JSON.stringify(paused));
    assert.equal((paused.result as { paused: boolean }).paused, true);
    const unknown = await fc.command(device, 'queue.pause', { queue: 'no-such-queue' });
    assert.equal(unknown.ok, false);
    assert.equal(unknown.code, 'ACD_UNKNOWN_QUEUE');

    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password-1');
    try {
      alice.available();
      await alice.waitFor((m) => m.type === 'state' && (m as { state?: string }).state === 'available');
      const call = runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 1, rate: 1, durationMs: 8000 });
      await waitFor(async () => (await diagnostics()).queues.find((q) => q.name === 'sales')?.waiting === 1, 20_000, 'a caller waiting in the paused queue');
      await sleep(1500);
      assert.equal(
        alice.inbox.some((m) => m.type === 'ringing'),
        false,
        'a paused queue offered a call',
      );
      const resumed = await fc.command(device, 'queue.pause', { queue: 'sales', paused: false });
      assert.equal(resumed.ok, true, JSON.stringify(resumed));
      await alice.waitFor((m) => m.type === 'ringing', 15_000);
      assertSippOk(await call);
      await waitFor(() => events.filter((e) => e.type === 'queue.paused').length === 2, 20_000, 'queue.paused events');
      assert.deepEqual(
        events.filter((e) => e.type === 'queue.paused').map((e) => [e.queue, e.paused]),
        [
          ['sales', true],
          ['sales', false],
        ],
      );
    } finally {
      await alice.close();
    }
  });

  it('disk guard: when free space falls below recording.minFreeMb the running recording stops with an alarm, the call goes on', async () => {
    const queues = [{ name: 'support' }, { name: 'sales', ringTimeoutS: 20, wrapUpS: 0 }];
    const push = async (version: number, recording: Record<string, unknown>): Promise<void> => {
      const r = await fc.pushConfig(device, version, { queues, calls: { queue: 'sales' }, recording: { record: 'all', diskCheckS: 1, ...recording } });
      assert.equal(r.error, undefined, JSON.stringify(r));
    };
    await push(7, {});
    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password-1');
    try {
      alice.available();
      const call = runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 1, rate: 1, durationMs: 8000 });
      const started = await alice.waitFor<Extract<ServerMessage, { type: 'recording' }>>((m) => m.type === 'recording' && m.active, 20_000);
      // More free space than any disk has: the guard sees the data disk as too full.
      await push(8, { minFreeMb: 1_000_000_000 });
      await alice.waitFor((m) => m.type === 'recording' && !m.active && m.callId === started.callId, 15_000);
      assertSippOk(await call); // the call itself went on to its normal end
      await waitFor(() => events.some((e) => e.type === 'recording.stopped' && e.callId === started.callId && e.reason === 'disk-low'), 20_000, 'recording.stopped');
      await waitFor(() => events.some((e) => e.type === 'recording.alarm' && e.state === 'raised'), 20_000, 'recording.alarm raised');

      const next = runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 1, rate: 1, durationMs: 3000 });
      await waitFor(() => events.some((e) => e.type === 'recording.skipped' && e.reason === 'disk-low'), 20_000, 'recording.skipped');
      assertSippOk(await next);
      await push(9, {});
      const third = runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 1, rate: 1, durationMs: 3000 });
      await waitFor(() => events.some((e) => e.type === 'recording.alarm' && e.state === 'cleared'), 20_000, 'recording.alarm cleared');
      assertSippOk(await third);
    } finally {
      await alice.close();
    }
  });

  it('cloud update commands: update.status answers; a bundle that is not one is refused with its code, the daemon keeps running', async () => {
    const status = await fc.command(device, 'update.status');
    assert.equal(status.ok, true, JSON.stringify(status));
    assert.equal((status.result as { installed: boolean }).installed, false, 'a development run is not installed in A/B slots');
    const junk = createServer((_req, res) => res.end(Buffer.alloc(4096, 0x41)));
    await new Promise<void>((r) => junk.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (junk.address() as AddressInfo).port;
      const r = await fc.command(device, 'update.apply', { version: '9.9.9', url: `http://127.0.0.1:${port}/ccedge-9.9.9.bundle` }, 30_000);
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.match(String(r.code), /^UPDATE_/);
    } finally {
      junk.close();
    }
    assert.equal((await daemon.api<{ status: string }>('/healthz')).body.status, 'ok');
  });

  it('after a restart the daemon runs the config the cloud pushed last', async () => {
    const { dataDir, sipPort, httpPort } = daemon;
    assert.equal(await daemon.stop(), 0);
    daemon = await start(dataDir, { sip: sipPort, http: httpPort });
    await daemon.waitForLog((l) => l.msg === 'running the config pushed by the cloud' && l.version === 9);
    assert.equal((await running()).calls.queue, 'sales');
  });
});
