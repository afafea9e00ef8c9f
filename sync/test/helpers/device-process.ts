/**
 * A stand-in daemon for kill -9 tests: opens the database, starts sync against the broker, appends
 * COUNT events (one transaction each), prints `{"appended":COUNT}` and keeps running until killed.
 * usage: node device-process.js DB_FILE BROKER_PORT COUNT DRAIN_RATE
 */
import { randomUUID } from 'node:crypto';
import { SyncService } from '../../index';
import { openSyncDb } from './db';

async function main(): Promise<void> {
  const [file, port, count, rate] = process.argv.slice(2);
  const db = await openSyncDb(file);
  const sync = new SyncService({
    db,
    siteId: 'site-t',
    deviceId: 'dev-1',
    version: '0.1.0-test',
    bootId: randomUUID(),
    startedAt: new Date(),
    mqtt: { url: `mqtt://127.0.0.1:${port}`, drainRatePerS: Number(rate), backoff: { minMs: 50, maxMs: 400 }, keepaliveS: 5 },
  });
  await sync.start();
  for (let i = 0; i < Number(count); i++) {
    await db.transaction((tx) => sync.append(tx, 'call.answered', { callId: `k${i}` }));
  }
  process.stdout.write(`${JSON.stringify({ appended: Number(count) })}\n`);
  setInterval(() => undefined, 1 << 30);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
