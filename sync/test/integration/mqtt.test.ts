import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { SyncService, type SyncServiceOptions } from '../../index';
import { Cloud, waitFor } from '../helpers/cloud';
import { openSyncDb, tempDir } from '../helpers/db';
import { Mosquitto } from '../helpers/mosquitto';

type Db = Awaited<ReturnType<typeof openSyncDb>>;
const PREFIX = 'ccedge/v1/site-t/dev-1/';
const FAST = { backoff: { minMs: 50, maxMs: 400, stableMs: 1000 }, connectTimeoutMs: 2000, keepaliveS: 5 };

interface Ev {
  seq: number;
  type: string;
  bootId: string;
  callId?: string;
}

describe('sync over a real mosquitto', function () {
  this.timeout(60_000);
  let tmp: ReturnType<typeof tempDir>;
  let broker: Mosquitto;
  let db: Db;
  let cloud: Cloud;
  const services: SyncService[] = [];

  const service = (opts: Partial<SyncServiceOptions> = {}): SyncService => {
    const s = new SyncService({
      db,
      siteId: 'site-t',
      deviceId: 'dev-1',
      version: '0.1.0-test',
      bootId: randomUUID(),
      startedAt: new Date(),
      mqtt: { url: `mqtt://127.0.0.1:${broker.port}`, ...FAST, drainRatePerS: 5000, ...opts.mqtt },
      ...opts,
    });
    services.push(s);
    return s;
  };
  const append = (s: SyncService, n: number, from = 0): Promise<number[]> =>
    Promise.all(Array.from({ length: n }, (_, i) => db.transaction((tx) => s.append(tx, 'call.offered', { callId: `c${from + i}`, from: 'sip:+15551234567@pbx', trunk: 'pbx' }))));
  const events = (): Ev[] => cloud.json<Ev>('/events');
  /**
   * As the cloud sees it after deduplicating on (device, seq): every seq in 1..n, once, first arrivals
   * in seq order. With `strict`, the device also published no seq twice (the broker's own
   * redeliveries to the cloud, flagged DUP, are the cloud leg's QoS 1 and do not count).
   */
  const assertExactlyOnceInOrder = (n: number, strict = true): void => {
    const firsts: number[] = [];
    const seen = new Set<number>();
    for (const e of events()) if (!seen.has(e.seq)) (seen.add(e.seq), firsts.push(e.seq));
    assert.deepEqual(firsts, Array.from({ length: n }, (_, i) => i + 1));
    if (strict) {
      const fresh = cloud.on('/events').filter((r) => !r.dup).map((r) => (JSON.parse(r.payload.toString()) as Ev).seq);
      assert.equal(fresh.length, new Set(fresh).size, 'the device published some seq twice');
    }
  };

  beforeEach(async () => {
    tmp = tempDir('ccedge-sync-it-');
    broker = await Mosquitto.start(tmp.dir);
    db = await openSyncDb(path.join(tmp.dir, 'ccedge.db'));
    cloud = await Cloud.connect(broker.port, [`${PREFIX}#`]);
  });
  afterEach(async () => {
    for (const s of services.splice(0)) await s.close().catch(() => undefined);
    await cloud.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    await broker.stop();
    tmp.cleanup();
  });

  it('birth status retained on connect; 200 events arrive once each, in seq order; GET /api/v1/sync status', async () => {
    const s = service();
    await s.start();
    await cloud.until(() => cloud.json('/status').some((x) => x.online === true), 10_000, 'birth');
    const birth = cloud.json('/status')[0];
    assert.deepEqual(Object.keys(birth).sort(), ['bootId', 'online', 'startedAt', 'version']);
    assert.equal(cloud.on('/status')[0].retain, false, 'live delivery to a subscriber (retain flag only on late subscribers)');
    await append(s, 200);
    await cloud.until(() => events().length >= 200, 20_000, '200 events');
    await waitFor(async () => (await s.status()).outboxDepth === 0, 5000, 'outbox empty');
    assertExactlyOnceInOrder(200);
    // Byte-level: everything published under the device prefix during the run.
    assert.ok(!cloud.received.some((r) => r.payload.includes('5551234567')), 'the caller number never left unmasked');
    assert.ok(cloud.received.every((r) => r.payload.length < 16 * 1024), 'no audio-sized payload');
    const st = await s.status();
    assert.deepEqual({ connected: st.connected, outboxDepth: st.outboxDepth, lastAckedSeq: st.lastAckedSeq }, { connected: true, outboxDepth: 0, lastAckedSeq: 200 });
    // a late subscriber sees the retained birth
    const late = await Cloud.connect(broker.port, [`${PREFIX}status`]);
    await late.until(() => late.received.length > 0, 5000, 'retained status');
    assert.equal(late.received[0].retain, true);
    assert.equal(JSON.parse(late.received[0].payload.toString()).online, true);
    await late.close();
  });

  it('broker stopped while events are appended, then restarted: every seq delivered exactly once, in order', async () => {
    const s = service();
    await s.start();
    await append(s, 50);
    await cloud.until(() => events().length >= 50, 10_000, 'first 50');
    await waitFor(async () => (await s.status()).outboxDepth === 0, 5000, 'first 50 acked');
    await broker.stop();
    await waitFor(async () => !(await s.status()).connected, 5000, 'disconnect noticed');
    await append(s, 100, 50);
    assert.equal((await s.status()).outboxDepth, 100, 'queued in sqlite, not in mqtt.js memory');
    await new Promise((r) => setTimeout(r, 500));
    await broker.start();
    await cloud.until(() => events().length >= 150, 20_000, '150 events after restart');
    await append(s, 50, 150);
    await cloud.until(() => events().length >= 200, 20_000, '200 events');
    await waitFor(async () => (await s.status()).outboxDepth === 0, 5000, 'all acked');
    await new Promise((r) => setTimeout(r, 300));
    assertExactlyOnceInOrder(200);
  });

  it('daemon-like restart: the outbox reopens on the same file, seq continues, pending rows are delivered', async () => {
    const s1 = service();
    await s1.start();
    await append(s1, 20);
    await cloud.until(() => events().length >= 20, 10_000, '20 events');
    await waitFor(async () => (await s1.status()).outboxDepth === 0, 5000, 'acked');
    await s1.close();
    // events written while the sender is down (as by a daemon that died before sending them)
    await append(s1, 30, 20);
    const file = db.file;
    await db.close();
    db = await openSyncDb(file);
    const s2 = service();
    await s2.start();
    const seqs = await append(s2, 10, 50);
    assert.deepEqual(seqs.sort((a, b) => a - b)[0], 51, 'seq continues across the restart');
    await cloud.until(() => events().length >= 60, 20_000, '60 events');
    await waitFor(async () => (await s2.status()).outboxDepth === 0, 5000, 'all acked');
    assertExactlyOnceInOrder(60);
    const boots = new Set(events().map((e) => e.bootId));
    assert.equal(boots.size, 2);
    assert.equal(new Set(events().filter((e) => e.seq > 50).map((e) => e.bootId)).size, 1);
  });

  it('LWT: an abrupt disconnect makes the broker publish status {online:false} retained; the link comes back', async () => {
    const s = service();
    await s.start();
    await cloud.until(() => cloud.json('/status').some((x) => x.online === true), 10_000, 'birth');
    s.link?.dropConnection();
    await cloud.until(() => cloud.json('/status').some((x) => x.online === false), 10_000, 'LWT');
    await cloud.until(() => cloud.json('/status').filter((x) => x.online === true).length >= 2, 10_000, 'second birth');
    assert.deepEqual(cloud.json('/status').map((x) => x.online), [true, false, true]);
    // and the retained value after a crash without coming back is offline
    s.link?.dropConnection(true);
    await cloud.until(() => cloud.json('/status').length >= 4, 10_000, 'LWT 2');
    const late = await Cloud.connect(broker.port, [`${PREFIX}status`]);
    await late.until(() => late.received.length > 0, 5000, 'retained status');
    assert.equal(JSON.parse(late.received[0].payload.toString()).online, false);
    await late.close();
  });

  it('graceful close publishes status {online:false} retained', async () => {
    const s = service();
    await s.start();
    await cloud.until(() => cloud.json('/status').some((x) => x.online === true), 10_000, 'birth');
    await s.close();
    await cloud.until(() => cloud.json('/status').some((x) => x.online === false), 10_000, 'offline status');
  });

  it('commands: garbage → error result, unknown → error, repeated id → the stored result (ran once)', async () => {
    const s = service();
    let runs = 0;
    s.commands.register('queue.pause', z.object({ queue: z.string(), paused: z.boolean() }).strict(), (a) => ({ queue: a.queue, paused: a.paused, run: ++runs }));
    await s.start();
    await waitFor(async () => (await s.status()).connected, 10_000, 'connected');
    await new Promise((r) => setTimeout(r, 200)); // SUBACK
    await cloud.publish(`${PREFIX}cmd/queue.pause`, '}{ not json');
    await cloud.until(() => cloud.on('cmd-result/_invalid').length === 1, 10_000, 'invalid result');
    assert.equal(cloud.json('cmd-result/_invalid')[0].ok, false);
    await cloud.publish(`${PREFIX}cmd/no.such`, '{"id":"u1"}');
    await cloud.until(() => cloud.on('cmd-result/u1').length === 1, 10_000, 'unknown result');
    assert.equal(cloud.json('cmd-result/u1')[0].code, 'CMD_UNKNOWN');
    await cloud.publish(`${PREFIX}cmd/queue.pause`, '{"id":"p1","queue":"support","paused":true}');
    await cloud.until(() => cloud.on('cmd-result/p1').length === 1, 10_000, 'result 1');
    await cloud.publish(`${PREFIX}cmd/queue.pause`, '{"id":"p1","queue":"support","paused":true}');
    await cloud.until(() => cloud.on('cmd-result/p1').length === 2, 10_000, 'result 2');
    const [a, b] = cloud.json('cmd-result/p1');
    assert.deepEqual(a, { id: 'p1', ok: true, result: { queue: 'support', paused: true, run: 1 } });
    assert.deepEqual(b, a);
    assert.equal(runs, 1);
    assert.ok((await s.status()).connected, 'still up after garbage');
  });

  it('commands sent while the device was offline arrive on reconnect (MQTT 5 session)', async () => {
    const s = service();
    let runs = 0;
    s.commands.register('diagnostics', z.object({}), () => ({ run: ++runs }));
    await s.start();
    await waitFor(async () => (await s.status()).connected, 10_000, 'connected');
    await new Promise((r) => setTimeout(r, 200));
    s.link?.dropConnection(true);
    await waitFor(async () => !(await s.status()).connected, 5000, 'down');
    await cloud.publish(`${PREFIX}cmd/diagnostics`, '{"id":"off1"}');
    const s2 = service();
    s2.commands.register('diagnostics', z.object({}), () => ({ run: ++runs }));
    await s2.start();
    await cloud.until(() => cloud.on('cmd-result/off1').length === 1, 10_000, 'queued command result');
    assert.deepEqual(cloud.json('cmd-result/off1')[0], { id: 'off1', ok: true, result: { run: 1 } });
  });

  it('config push: good → applied + reported retained; bad → error reported, previous kept', async () => {
    let running: { queues: string[] } = { queues: ['default'] };
    const s = service({
      config: {
        validate: (c: unknown) => {
          const r = z.object({ queues: z.array(z.string()).min(1) }).strict().safeParse(c);
          return r.success ? { ok: true, value: r.data } : { ok: false, error: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
        },
        apply: (v: unknown) => void (running = v as { queues: string[] }),
      },
    });
    await s.start();
    await waitFor(async () => (await s.status()).connected, 10_000, 'connected');
    await new Promise((r) => setTimeout(r, 200));
    await cloud.publish(`${PREFIX}config/desired`, JSON.stringify({ version: 1, config: { queues: ['support', 'sales'] } }), { retain: true });
    await cloud.until(() => cloud.on('config/reported').length >= 1, 10_000, 'reported 1');
    const r1 = cloud.json('config/reported')[0];
    assert.equal(r1.version, 1);
    assert.ok(typeof r1.appliedAt === 'string' && r1.error === undefined);
    assert.deepEqual(running, { queues: ['support', 'sales'] });
    await cloud.publish(`${PREFIX}config/desired`, JSON.stringify({ version: 2, config: { queues: [] } }), { retain: true });
    await cloud.until(() => cloud.on('config/reported').length >= 2, 10_000, 'reported 2');
    const r2 = cloud.json('config/reported')[1];
    assert.equal(r2.version, 2);
    assert.match(String(r2.error), /queues/);
    assert.deepEqual(running, { queues: ['support', 'sales'] }, 'previous config keeps running');
    await cloud.until(() => events().some((e) => e.type === 'config.applied'), 10_000, 'config.applied event');
  });

  it('republish hook runs after every connect; live publishes bypass the outbox', async () => {
    let calls = 0;
    const s = service({
      republish: (publish) => {
        calls++;
        publish('queues/support', { waiting: calls, longestWaitS: 0 });
      },
    });
    await s.start();
    await cloud.until(() => cloud.on('queues/support').length >= 1, 10_000, 'snapshot 1');
    s.link?.dropConnection();
    await cloud.until(() => cloud.on('queues/support').length >= 2, 10_000, 'snapshot 2');
    assert.deepEqual(cloud.json('queues/support').map((q) => q.waiting), [1, 2]);
    assert.equal((await s.status()).lastSeq, 0);
  });

  it('backlog drain is paced at drainRatePerS', async () => {
    const s = service({ mqtt: { url: `mqtt://127.0.0.1:${broker.port}`, ...FAST, drainRatePerS: 200 } });
    await append(s, 400);
    const t0 = Date.now();
    await s.start();
    await cloud.until(() => events().length >= 400, 20_000, '400 events');
    const ms = Date.now() - t0;
    assert.ok(ms >= 1500, `drained 400 at 200/s in ${ms} ms`);
    assertExactlyOnceInOrder(400);
  });

  it('after the broker kicks us (session taken over), the link reconnects with backoff', async () => {
    const s = service();
    await s.start();
    await waitFor(async () => (await s.status()).connected, 10_000, 'connected');
    const intruder = await Cloud.connect(broker.port, [], s.link?.clientId);
    await waitFor(async () => !(await s.status()).connected, 5000, 'kicked');
    await intruder.close();
    await waitFor(async () => (await s.status()).connected, 10_000, 'back');
    await append(s, 5);
    await cloud.until(() => events().length >= 5, 10_000, 'events after kick');
    assertExactlyOnceInOrder(5);
  });
});
