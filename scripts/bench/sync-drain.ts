/**
 * The sync benchmark's worker process (sync.ts reads its CPU/RSS from /proc): events appended
 * to the outbox, then drained to a real mosquitto. The broker may queue every message for the cloud subscriber (mosquitto's default
 * max_queued_messages 1000 drops QoS 1 messages for a subscriber that falls behind, which would
 * be the test broker losing them, not ccedge), and it reports drained (every event PUBACKed, outbox
 * empty) and delivered (the subscriber has every seq) separately.
 * usage: node sync-drain.js [EVENTS=100000]; prints one JSON line.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { SyncService } from '../../sync';
import { Cloud, waitFor } from '../../sync/test/helpers/cloud';
import { openSyncDb, tempDir } from '../../sync/test/helpers/db';
import { Mosquitto } from '../../sync/test/helpers/mosquitto';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 100_000);
  const tmp = tempDir('ccedge-sync-bench-');
  const broker = await Mosquitto.start(tmp.dir, { extra: ['max_queued_messages 0', 'max_inflight_messages 0'] });
  const db = await openSyncDb(path.join(tmp.dir, 'ccedge.db'));
  const cloud = await Cloud.connect(broker.port, ['ccedge/v1/site-b/dev-b/events']);
  const sync = new SyncService({
    db,
    siteId: 'site-b',
    deviceId: 'dev-b',
    version: 'bench',
    bootId: randomUUID(),
    startedAt: new Date(),
    mqtt: { url: `mqtt://127.0.0.1:${broker.port}`, drainRatePerS: 100_000, maxInflight: 1000 },
    sync: { outbox: { maxRows: Math.max(n * 2, 1000) } },
  });
  try {
    const t0 = performance.now();
    for (let i = 0; i < n; i += 1000) {
      const work: Array<Promise<number>> = [];
      for (let j = i; j < Math.min(n, i + 1000); j++) {
        work.push(db.transaction((tx) => sync.append(tx, 'call.offered', { callId: `c${j}`, trunk: 'pbx', from: 'sip:+15551234567@pbx', to: 'sip:support@edge' })));
      }
      await Promise.all(work);
    }
    const appendS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await sync.start();
    await waitFor(async () => (await sync.status()).outboxDepth === 0, 3_600_000, 'drained');
    const drainS = (performance.now() - t1) / 1000;
    let deliveredS: number | null = null;
    try {
      await cloud.until(() => cloud.received.length >= n, 120_000, 'all received');
      deliveredS = (performance.now() - t1) / 1000;
    } catch {
      // reported below as received < events
    }
    const seqs = new Set(cloud.received.map((r) => (JSON.parse(r.payload.toString()) as { seq: number }).seq));
    process.stdout.write(
      `${JSON.stringify({
        events: n,
        appendPerS: Math.round(n / appendS),
        drainS: Number(drainS.toFixed(1)),
        drainPerS: Math.round(n / drainS),
        deliveredS: deliveredS === null ? null : Number(deliveredS.toFixed(1)),
        drainRatePerS: 100_000,
        maxInflight: 1000,
        received: cloud.received.length,
        distinctSeqs: seqs.size,
      })}\n`,
    );
  } finally {
    await sync.close();
    await cloud.close();
    await db.close();
    await broker.stop();
    tmp.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
