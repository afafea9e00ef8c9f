import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cloud } from '../../sync/test/helpers/cloud';
import { Mosquitto } from '../../sync/test/helpers/mosquitto';
import { assertSippOk, eventually, runSipp, sleep, startDaemon, type DaemonHandle } from './harness';

interface Envelope {
  seq: number;
  type: string;
}

/**
 * The cloud deduplicates on (device, seq): what it must end up with is every seq from 1 to the
 * last, once, first seen in increasing order.
 */
function assertCompleteInOrder(events: Envelope[]): number {
  const firstSeen: number[] = [];
  const seen = new Set<number>();
  for (const e of events) {
    if (seen.has(e.seq)) continue;
    seen.add(e.seq);
    firstSeen.push(e.seq);
  }
  const max = Math.max(...firstSeen);
  const missing = Array.from({ length: max }, (_, i) => i + 1).filter((s) => !seen.has(s));
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} seq(s) missing`);
  assert.deepEqual(firstSeen, [...firstSeen].sort((a, b) => a - b), 'first delivery of each seq in seq order');
  return max;
}

describe('cloud sync under outages: 200 calls across a broker restart, kill -9 of the daemon with 1,000 events pending', function () {
  this.timeout(240_000);
  const site = 'e2e-out';
  const device = 'edge-out';
  const prefix = `ccedge/v1/${site}/${device}/`;
  let broker: Mosquitto;
  let cloud: Cloud;
  let daemon: DaemonHandle;
  const config = {
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
    // A slow drain so the backlog is still draining when the daemon is killed.
    mqtt: { drainRatePerS: 150 },
  };
  const start = (dataDir?: string, ports?: { sip: number; http: number }): Promise<DaemonHandle> =>
    startDaemon({ config, dataDir, ports, env: { CCEDGE_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`, CCEDGE_SITE_ID: site, CCEDGE_DEVICE_ID: device, CCEDGE_LOG_LEVEL: 'info' } });
  const events = (): Envelope[] => cloud.received.filter((r) => r.topic === `${prefix}events`).map((r) => JSON.parse(r.payload.toString()) as Envelope);
  const ended = (): number => new Set(events().filter((e) => e.type === 'call.ended').map((e) => e.seq)).size;
  const depth = async (): Promise<{ connected: boolean; outboxDepth: number }> => (await daemon.api<{ connected: boolean; outboxDepth: number }>('/api/v1/sync')).body;

  before(async () => {
    broker = await Mosquitto.start(mkdtempSync(path.join(tmpdir(), 'ccedge-mosq-out-')));
    cloud = await Cloud.connect(broker.port, [`${prefix}#`]);
    daemon = await start();
    await cloud.until(() => cloud.received.some((r) => r.topic === `${prefix}status` && (JSON.parse(r.payload.toString()) as { online: boolean }).online), 20_000, 'birth status');
  });
  after(async () => {
    await daemon?.stop();
    await cloud?.close();
    await broker?.stop();
  });

  it('200 calls with the broker stopped for part of the run: after reconnect no seq is missing, none out of order', async () => {
    const run = runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 200, rate: 20, durationMs: 200 });
    await sleep(3000);
    await broker.stop();
    await sleep(4000);
    await broker.start();
    assertSippOk(await run); // calls never wait on the cloud
    await cloud.until(() => ended() === 200, 120_000, '200 call.ended events');
    assertCompleteInOrder(events());
    await eventually(async () => (await depth()).outboxDepth === 0, 30_000);
  });

  it('kill -9 while a 1,000-event backlog drains: the LWT says offline; after the restart every seq arrives', async () => {
    await broker.stop();
    const r = await runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 300, rate: 50, durationMs: 100 });
    assertSippOk(r);
    const pending = await eventually(async () => {
      const s = await depth();
      return s.outboxDepth >= 1000 && s;
    }, 30_000);
    assert.ok(pending.outboxDepth >= 1000, `only ${pending.outboxDepth} events pending`);
    const statusBefore = cloud.received.length;
    await broker.start();
    // Let the paced drain begin, then kill the daemon in the middle of it.
    await cloud.until(() => ended() > 200, 60_000, 'the drain to start');
    const { dataDir, sipPort, httpPort, pid } = daemon;
    process.kill(pid, 'SIGKILL');
    await daemon.exited;
    await cloud.until(
      () => cloud.received.slice(statusBefore).some((m) => m.topic === `${prefix}status` && (JSON.parse(m.payload.toString()) as { online: boolean }).online === false),
      60_000,
      'LWT status {online:false}',
    );
    assert.ok(ended() < 500, 'the backlog had drained before the kill; the test proves nothing');
    const beforeRestart = events().length;
    daemon = await start(dataDir, { sip: sipPort, http: httpPort });
    await cloud.until(() => ended() === 500, 120_000, 'all 500 call.ended events after the restart');
    const max = assertCompleteInOrder(events());
    assert.ok(events().length > beforeRestart, 'the restarted daemon delivered the rest of the backlog');
    await eventually(async () => (await depth()).outboxDepth === 0, 30_000);
    assert.ok(max >= 1000, `seq reached ${max}`);
  });
});
