import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { MediaError } from '../../errors';
import { RtpSessionPort } from '../../joint/rtp-session-port';
import { PortPool } from '../../rtp/port-pool';
import { RtpSession } from '../../rtp/rtp-session';
import { MediaClock } from '../../tones/media-clock';
import { TonePlayer } from '../../tones/tone-player';
import { renderTone } from '../../tones/tone';
import { mediaConfigSchema, mediaWorkerCount } from '../../workers/config';
import { MediaWorkers } from '../../workers/media-workers';
import { RemoteTonePlayer, type RemoteRtpSession } from '../../workers/remote-rtp-session';

const silentLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Real worker threads (dist/media/workers/media-worker.js) and real UDP on loopback: the phones
 * are main-thread RtpSessions, the legs sessions on a worker joined by a RemoteJoint.
 */
describe('media workers (worker threads, real UDP)', function () {
  this.timeout(30000);
  const phonePool = new PortPool({ min: 44400, max: 44499 });
  const legPool = new PortPool({ min: 44500, max: 44599 });
  let workers: MediaWorkers;
  const clock = new MediaClock();

  before(async () => {
    workers = await MediaWorkers.start({ count: 2, log: silentLog });
  });

  after(async () => {
    await workers?.close();
  });

  async function phoneFor(leg: RemoteRtpSession): Promise<RtpSession> {
    const phone = await RtpSession.open({ pool: phonePool, host: '127.0.0.1' });
    phone.configure({ payloadType: 0 });
    phone.setRemote('127.0.0.1', leg.localPort);
    leg.configure({ payloadType: 0, telephoneEventPayloadType: 101 });
    leg.setRemote('127.0.0.1', phone.localPort);
    return phone;
  }

  it('relays two legs on one worker untouched both ways; counters come back through shared memory', async () => {
    const w = workers.place();
    const a = await w.openSession({ pool: legPool, host: '127.0.0.1', latch: null });
    const b = await w.openSession({ pool: legPool, host: '127.0.0.1', latch: null });
    const phoneA = await phoneFor(a);
    const phoneB = await phoneFor(b);
    const toneA = renderTone({ name: 'a', segments: [{ freqs: [400], ms: 200 }] }, 'PCMU');
    const toneB = renderTone({ name: 'b', segments: [{ freqs: [1000], ms: 200 }] }, 'PCMU');
    const heardByA: Buffer[] = [];
    const heardByB: Buffer[] = [];
    phoneA.on('packet', (_h, p) => heardByA.push(Buffer.from(p)));
    phoneB.on('packet', (_h, p) => heardByB.push(Buffer.from(p)));
    const talkA = new TonePlayer(clock, phoneA, toneA);
    const talkB = new TonePlayer(clock, phoneB, toneB);
    const joint = w.joint({ maxParties: 2 });
    try {
      joint.add({ id: 'a', port: a.port(0), codec: 'PCMU', role: 'party', kind: 'caller' });
      joint.add({ id: 'b', port: b.port(0), codec: 'PCMU', role: 'party', kind: 'external' });
      talkA.start();
      talkB.start();
      await until(() => heardByA.length >= 20 && heardByB.length >= 20, '20 frames each way');
      const isFrameOf = (frames: Buffer[], p: Buffer): boolean => frames.some((f) => f.equals(p));
      assert.ok(heardByB.every((p) => isFrameOf(toneA, p)), 'B hears exactly A’s frames');
      assert.ok(heardByA.every((p) => isFrameOf(toneB, p)), 'A hears exactly B’s frames');
      await until(() => a.stats.packetsReceived >= 20 && b.jointSent >= 20, 'counters in shared memory');
      assert.equal(a.stats.packetsForeign, 0);
    } finally {
      talkA.stop();
      talkB.stop();
      joint.close();
      a.close();
      b.close();
      phoneA.close();
      phoneB.close();
    }
    const final = a.stats;
    assert.equal(a.stats, final, 'a closed session keeps its counters as at close');
    assert.equal(legPool.inUse, 0);
  });

  it('plays a hold tone from the worker and stops it', async () => {
    const w = workers.place();
    const leg = await w.openSession({ pool: legPool, host: '127.0.0.1', latch: null });
    const phone = await phoneFor(leg);
    const tone = renderTone({ name: 'hold', segments: [{ freqs: [425], ms: 200 }] }, 'PCMU');
    let heard = 0;
    phone.on('packet', () => heard++);
    const player = new RemoteTonePlayer(leg, tone);
    try {
      player.start();
      await until(() => heard >= 10, 'hold tone frames');
      player.stop();
      await new Promise((r) => setTimeout(r, 200));
      const after = heard;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(heard, after, 'nothing after stop');
    } finally {
      leg.close();
      phone.close();
    }
  });

  it('a port another process holds is skipped: the next one from the pool is bound', async () => {
    const pool = new PortPool({ min: 44600, max: 44603 });
    const squatter = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => squatter.bind(44600, '127.0.0.1', () => resolve()));
    try {
      const s = await workers.place().openSession({ pool, host: '127.0.0.1', latch: null });
      assert.equal(s.localPort, 44602);
      s.close();
      assert.equal(pool.inUse, 0);
    } finally {
      squatter.close();
    }
  });

  it('the joint refuses what it cannot carry, synchronously, with the local joint’s codes', async () => {
    const w = workers.place();
    const a = await w.openSession({ pool: legPool, host: '127.0.0.1', latch: null });
    const local = await RtpSession.open({ pool: phonePool, host: '127.0.0.1' });
    const joint = w.joint({ maxParties: 1 });
    const code = (fn: () => void): string | undefined => {
      try {
        fn();
      } catch (err) {
        return err instanceof MediaError ? err.code : 'other';
      }
      return undefined;
    };
    try {
      joint.add({ id: 'a', port: a.port(0), codec: 'PCMU', role: 'party', kind: 'caller' });
      assert.equal(code(() => joint.add({ id: 'a', port: a.port(0), codec: 'PCMU', role: 'listener', kind: 'caller' })), 'JOINT_DUPLICATE_PARTICIPANT');
      assert.equal(code(() => joint.add({ id: 'x', port: a.port(0), codec: 'PCMU', role: 'party', kind: 'external' })), 'JOINT_FULL');
      assert.equal(code(() => joint.add({ id: 'm', port: new RtpSessionPort(local, 0), codec: 'PCMU', role: 'listener', kind: 'agent' })), 'MEDIA_IN_WORKER');
      assert.equal(code(() => joint.addTap({ pushCaller: () => undefined, pushAgent: () => undefined }, 'a')), 'MEDIA_IN_WORKER');
      assert.equal(code(() => joint.setHold('nobody', null)), 'JOINT_UNKNOWN_PARTICIPANT');
      joint.setHold('a', []);
      assert.equal(joint.isHeld('a'), true);
    } finally {
      joint.close();
      a.close();
      local.close();
    }
  });

  it('a worker that dies loses only its sessions (each emits lost, ports go back) and is started again', async () => {
    const w0 = workers.status[0];
    assert.equal(w0.alive, true);
    const pool = new PortPool({ min: 44700, max: 44799 });
    const first = workers.place();
    const onFirst = await first.openSession({ pool, host: '127.0.0.1', latch: null });
    const second = workers.place();
    assert.notEqual(second.index, first.index, 'least loaded: the other worker');
    const onSecond = await second.openSession({ pool, host: '127.0.0.1', latch: null });
    let lostFirst = 0;
    let lostSecond = 0;
    onFirst.on('lost', () => lostFirst++);
    onSecond.on('lost', () => lostSecond++);
    const ended = await workers.kill(first.index);
    assert.equal(ended, 1);
    assert.equal(lostFirst, 1);
    assert.equal(lostSecond, 0);
    assert.equal(pool.inUse, 1, 'the dead worker’s port is free again');
    const st = workers.status[first.index];
    assert.deepEqual([st.alive, st.sessions, st.restarts], [true, 0, 1]);
    const again = await workers.place().openSession({ pool, host: '127.0.0.1', latch: null });
    assert.equal(again.worker.index, first.index, 'the restarted worker takes new sessions');
    again.close();
    onSecond.close();
    assert.equal(pool.inUse, 0);
  });

  it('a worker that keeps dying (more than 5 times a minute) is not started again; new sessions go to the others', async () => {
    const index = 1;
    // The earlier test may have killed this one already: kill until it stays down (at most 6 more).
    for (let i = 0; i < 6 && workers.status[index].alive; i++) await workers.kill(index);
    await assert.rejects(workers.kill(index), /not running/);
    const st = workers.status;
    assert.equal(st[index].alive, false);
    assert.equal(st[1 - index].alive, true);
    const pool = new PortPool({ min: 44800, max: 44899 });
    for (let i = 0; i < 3; i++) {
      const s = await workers.place().openSession({ pool, host: '127.0.0.1', latch: null });
      assert.equal(s.worker.index, 1 - index);
      s.close();
    }
  });

  it('media.workers: auto is cores − 1 (at least 1), 0 keeps media on the main thread, nonsense is refused', () => {
    assert.equal(mediaWorkerCount('auto', 8), 7);
    assert.equal(mediaWorkerCount('auto', 1), 1);
    assert.equal(mediaWorkerCount(0, 8), 0);
    assert.equal(mediaConfigSchema.parse({}).workers, 'auto');
    assert.equal(mediaConfigSchema.safeParse({ workers: -1 }).success, false);
    assert.equal(mediaConfigSchema.safeParse({ workers: 'many' }).success, false);
  });
});
