/**
 * Outbox throughput to a real mosquitto and drain time of a backlog.
 * usage: node dist/sync/test/bench/drain.js [EVENTS=100000] [DRAIN_RATE=100000] [MAX_INFLIGHT=1000]
 * Prints one JSON line: append rate (events/s into sqlite, one transaction per event), drain time
 * and rate (events/s acknowledged by mosquitto and received by a subscriber), and check results.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { SyncService } from '../../index';
import { Cloud, waitFor } from '../helpers/cloud';
import { openSyncDb, tempDir } from '../helpers/db';
import { Mosquitto } from '../helpers/mosquitto';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 100_000);
  const rate = Number(process.argv[3] ?? 100_000);
  const inflight = Number(process.argv[4] ?? 1000);
  const tmp = tempDir('ccedge-sync-bench-');
  const broker = await Mosquitto.start(tmp.dir);
  const db = await openSyncDb(path.join(tmp.dir, 'ccedge.db'));
  const cloud = await Cloud.connect(broker.port, ['ccedge/v1/site-b/dev-b/events']);
  const sync = new SyncService({
    db,
    siteId: 'site-b',
    deviceId: 'dev-b',
    version: 'bench',
    bootId: randomUUID(),
    startedAt: new Date(),
    mqtt: { url: `mqtt://127.0.0.1:${broker.port}`, drainRatePerS: rate, maxInflight: inflight },
    sync: { outbox: { maxRows: Math.max(n * 2, 1000) } },
  });
  try {
    const t0 = performance.now();
    const batch = 1000;
    for (let i = 0; i < n; i += batch) {
      const work: Array<Promise<number>> = [];
      for (let j = i; j < Math.min(n, i + batch); j++) {
        work.push(db.transaction((tx) => sync.append(tx, 'call.offered', { callId: `c${j}`, trunk: 'pbx', from: 'sip:+15551234567@pbx', to: 'sip:support@edge' })));
      }
      await Promise.all(work);
    }
    const appendS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await sync.start();
    await waitFor(async () => (await sync.status()).outboxDepth === 0, 3_600_000, 'drained');
    const drainS = (performance.now() - t1) / 1000;
    await cloud.until(() => cloud.received.length >= n, 60_000, 'all received');
    const seqs = new Set(cloud.received.map((r) => (JSON.parse(r.payload.toString()) as { seq: number }).seq));
    process.stdout.write(
      `${JSON.stringify({
        events: n,
        appendPerS: Math.round(n / appendS),
        drainS: Number(drainS.toFixed(1)),
        drainPerS: Math.round(n / drainS),
        drainRatePerS: rate,
        maxInflight: inflight,
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
