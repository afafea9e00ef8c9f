import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cloud } from '../../sync/test/helpers/cloud';
import { Mosquitto } from '../../sync/test/helpers/mosquitto';
import { assertSippOk, eventually, runSipp, startDaemon, type DaemonHandle } from './harness';

interface Envelope {
  seq: number;
  type: string;
  callId?: string;
  from?: string;
  to?: string;
}

describe('cloud sync: call events reach a real mosquitto, in order, across a broker outage', function () {
  let broker: Mosquitto;
  let cloud: Cloud;
  let daemon: DaemonHandle;
  const prefix = 'ccedge/v1/e2e/edge-sync/';
  before(async () => {
    broker = await Mosquitto.start(mkdtempSync(path.join(tmpdir(), 'ccedge-mosq-')));
    cloud = await Cloud.connect(broker.port, [`${prefix}#`]);
    daemon = await startDaemon({
      env: { CCEDGE_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`, CCEDGE_SITE_ID: 'e2e', CCEDGE_DEVICE_ID: 'edge-sync' },
    });
  });
  after(async () => {
    await daemon?.stop();
    await cloud?.close();
    await broker?.stop();
  });

  const events = (): Envelope[] => cloud.received.filter((r) => r.topic === `${prefix}events`).map((r) => JSON.parse(r.payload.toString()) as Envelope);

  it('publishes the birth status and every call event once, seq in order, caller numbers masked', async () => {
    await cloud.until(() => cloud.received.some((r) => r.topic === `${prefix}status` && (JSON.parse(r.payload.toString()) as { online: boolean }).online), 20_000, 'birth status');
    const r = await runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 3, rate: 10, durationMs: 300 });
    assertSippOk(r);
    await cloud.until(() => events().filter((e) => e.type === 'call.ended').length === 3, 20_000, 'three call.ended events');
    const seqs = events().map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'each seq once');
    const offered = events().filter((e) => e.type === 'call.offered');
    assert.equal(offered.length, 3);
    for (const e of offered) {
      assert.ok(e.from && !e.from.includes('5551234'), `caller number left unmasked: ${String(e.from)}`);
      // Masked to the last digits, never more than half of them: 5551234 → ****234.
      assert.equal(e.from, '****234');
    }
    const status = await daemon.api<{ connected: boolean; outboxDepth: number }>('/api/v1/sync');
    assert.equal(status.body.connected, true);
    // Byte-level: nothing published anywhere under the device's prefix carries the caller's number
    // unmasked, and nothing is audio-sized.
    for (const m of cloud.received) {
      assert.ok(!m.payload.includes('5551234'), `${m.topic} carries the caller number`);
      assert.ok(m.payload.length < 16 * 1024, `${m.topic}: ${m.payload.length} bytes`);
    }
  });

  it('keeps events in the outbox while the broker is down and delivers them when it is back', async () => {
    await broker.stop();
    const before = events().length;
    const r = await runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 2, rate: 10, durationMs: 300 });
    assertSippOk(r); // calls never wait on the cloud
    const queued = await eventually(async () => {
      const s = (await daemon.api<{ connected: boolean; outboxDepth: number }>('/api/v1/sync')).body;
      return !s.connected && s.outboxDepth >= 10 && s;
    }, 20_000);
    assert.ok(queued.outboxDepth >= 10);
    await broker.start();
    await cloud.until(() => events().filter((e) => e.type === 'call.ended').length === 5, 60_000, 'the two calls made while offline');
    const seqs = events().map((e) => e.seq);
    assert.equal(new Set(seqs).size, seqs.length, 'no seq twice');
    assert.ok(events().length > before);
    await eventually(async () => (await daemon.api<{ outboxDepth: number }>('/api/v1/sync')).body.outboxDepth === 0, 20_000);
  });
});
