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
import { icePortSlice } from '../../workers/media-workers';
import { WeriftAnswerer } from '../helpers/werift-answerer';

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
      assert.equal(code(() => joint.setHold('nobody', null)), 'JOINT_UNKNOWN_PARTICIPANT');
      joint.setHold('a', []);
      assert.equal(joint.isHeld('a'), true);
    } finally {
      joint.close();
      a.close();
      local.close();
    }
  });

  it('an agent’s WebRTC leg lives on the worker: the browser hears the caller, the caller the browser, and a tap gets both in chunks with their capture times', async () => {
    const w = workers.place();
    const caller = await w.openSession({ pool: legPool, host: '127.0.0.1', latch: null });
    const phone = await phoneFor(caller);
    const legLog: string[] = [];
    const leg = w.webrtcLeg({ codec: 'PCMU', interfaces: ['127.0.0.1'], portRange: { min: 45000, max: 45099 }, log: { info: (_o, m) => legLog.push(m), warn: (_o, m) => legLog.push(m) } });
    const states: string[] = [];
    leg.on('state', (s) => states.push(s));
    const joint = w.joint({ maxParties: 2 });
    const tapped: { ch: 'caller' | 'agent'; payload: Buffer; capturedAt: number | undefined; deliveredAt: number }[] = [];
    const tap = {
      pushCaller: (payload: Buffer, _ts: number, _ssrc: number, capturedAt?: number) => tapped.push({ ch: 'caller', payload: Buffer.from(payload), capturedAt, deliveredAt: performance.now() }),
      pushAgent: (payload: Buffer, _ts: number, _ssrc: number, capturedAt?: number) => tapped.push({ ch: 'agent', payload: Buffer.from(payload), capturedAt, deliveredAt: performance.now() }),
    };
    const callerTone = renderTone({ name: 'c', segments: [{ freqs: [400], ms: 200 }] }, 'PCMU');
    const agentTone = renderTone({ name: 'a', segments: [{ freqs: [1000], ms: 200 }] }, 'PCMU');
    const heardByPhone: Buffer[] = [];
    phone.on('packet', (_h, p) => heardByPhone.push(Buffer.from(p)));
    const talk = new TonePlayer(clock, phone, callerTone);
    let browser: WeriftAnswerer | undefined;
    let agentTimer: NodeJS.Timeout | undefined;
    try {
      const offer = await leg.createOffer();
      assert.match(offer, /a=candidate:.* 127\.0\.0\.1 450\d\d typ host/, 'ICE gathered on the worker’s slice of the port range');
      browser = await WeriftAnswerer.answer(offer);
      await leg.acceptAnswer(browser.answer);
      await until(() => leg.state === 'connected', 'the worker’s leg connected', 15000);
      assert.deepEqual(states, ['connecting', 'connected']);
      joint.add({ id: 'caller', port: caller.port(0), codec: 'PCMU', role: 'party', kind: 'caller' });
      joint.add({ id: 'agent', port: leg.port, codec: 'PCMU', role: 'party', kind: 'agent' });
      joint.addTap(tap, 'caller');
      talk.start();
      let ts = 0;
      let i = 0;
      const b = browser;
      agentTimer = setInterval(() => b.sendAudio(agentTone[i++ % agentTone.length], (ts += 160)), 20);
      await until(() => b.received.filter((r) => r.payloadType === 0).length >= 25 && heardByPhone.length >= 25, '25 frames each way', 10000);
      const isFrameOf = (frames: Buffer[], p: Buffer): boolean => frames.some((f) => f.equals(p));
      assert.ok(b.received.filter((r) => r.payloadType === 0).every((r) => isFrameOf(callerTone, r.payload)), 'the browser hears exactly the caller’s frames');
      assert.ok(heardByPhone.every((p) => isFrameOf(agentTone, p)), 'the caller hears exactly the browser’s frames');
      await until(() => tapped.filter((t) => t.ch === 'caller').length >= 20 && tapped.filter((t) => t.ch === 'agent').length >= 20, 'the tap got both sides');
      assert.ok(tapped.filter((t) => t.ch === 'caller').every((t) => isFrameOf(callerTone, t.payload)), 'left channel: what the caller says');
      assert.ok(tapped.filter((t) => t.ch === 'agent').every((t) => isFrameOf(agentTone, t.payload)), 'right channel: what the caller hears');
      for (const t of tapped) {
        assert.ok(t.capturedAt !== undefined && t.capturedAt <= t.deliveredAt + 1, 'captured before delivered, on this thread’s clock');
        assert.ok(t.deliveredAt - t.capturedAt < 2000, `delivered ${Math.round(t.deliveredAt - t.capturedAt)} ms after capture`);
      }
      const batches = new Set(tapped.map((t) => Math.round(t.deliveredAt)));
      assert.ok(batches.size < tapped.length / 2, `packets arrive in chunks (${batches.size} deliveries for ${tapped.length} packets)`);
      await until(() => leg.stats.packetsReceived >= 20 && leg.stats.packetsSent >= 20 && leg.jointSent >= 20, 'the leg’s counters in shared memory');
      const removedAt = performance.now();
      await joint.removeTap(tap);
      // The worker sent what it still held (up to TAP_CHUNK_MS): the tap has packets from just before removal.
      const last = Math.max(...tapped.map((t) => t.capturedAt ?? 0));
      assert.ok(last >= removedAt - 80, `the tap's last packet was captured ${Math.round(removedAt - last)} ms before removeTap`);
      const after = tapped.length;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(tapped.length, after, 'nothing after removeTap');
    } finally {
      if (agentTimer) clearInterval(agentTimer);
      talk.stop();
      joint.close();
      await leg.close();
      await browser?.close();
      caller.close();
      phone.close();
    }
    assert.equal(leg.state, 'closed');
    assert.ok(legLog.includes('WebRTC leg state'), 'the leg’s log lines reach the main thread');
    assert.equal(w.load, 0, 'the leg’s slot is free again');
  });

  it('a tap that throws is logged once, not once per chunk, and the call’s media goes on', async () => {
    const warnings: string[] = [];
    const own = await MediaWorkers.start({ count: 1, log: { ...silentLog, warn: (_o: unknown, m: string) => warnings.push(m) } });
    const pool = new PortPool({ min: 45200, max: 45299 });
    const w = own.place();
    const a = await w.openSession({ pool, host: '127.0.0.1', latch: null });
    const b = await w.openSession({ pool, host: '127.0.0.1', latch: null });
    const phoneA = await phoneFor(a);
    const phoneB = await phoneFor(b);
    const tone = renderTone({ name: 't', segments: [{ freqs: [400], ms: 200 }] }, 'PCMU');
    const talk = new TonePlayer(clock, phoneA, tone);
    let heardByB = 0;
    let calls = 0;
    phoneB.on('packet', () => heardByB++);
    const joint = w.joint({ maxParties: 2 });
    try {
      joint.add({ id: 'a', port: a.port(0), codec: 'PCMU', role: 'party', kind: 'caller' });
      joint.add({ id: 'b', port: b.port(0), codec: 'PCMU', role: 'party', kind: 'external' });
      const broken = {
        pushCaller: (): void => {
          calls++;
          throw new Error('broken tap');
        },
        pushAgent: (): void => undefined,
      };
      joint.addTap(broken, 'a');
      talk.start();
      await until(() => calls >= 5 && heardByB >= 40, 'five chunks to the broken tap while B keeps hearing A');
      assert.deepEqual(warnings.filter((m) => m.startsWith('a tap failed')), ['a tap failed on a chunk from the media worker (logged once per tap)']);
    } finally {
      talk.stop();
      joint.close();
      a.close();
      b.close();
      phoneA.close();
      phoneB.close();
      await own.close();
    }
  });

  it('each worker gathers ICE on its own slice of the port range (werift’s bind race cannot cross threads)', () => {
    const range = { min: 40000, max: 49999 };
    assert.deepEqual(icePortSlice(range, 3, 0), { min: 40000, max: 43332 });
    assert.deepEqual(icePortSlice(range, 3, 1), { min: 43333, max: 46665 });
    assert.deepEqual(icePortSlice(range, 3, 2), { min: 46666, max: 49999 });
    assert.deepEqual(icePortSlice({ min: 40000, max: 40002 }, 3, 1), { min: 40000, max: 40002 }, 'a range too small to split is shared');
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

  it('a leg whose worker dies fails (its call treats it like a lost browser); werift’s refusals come back as coded errors', async () => {
    const pool = new PortPool({ min: 44900, max: 44999 });
    const w = workers.place();
    const leg = w.webrtcLeg({ codec: 'PCMU', interfaces: ['127.0.0.1'], portRange: { min: 45100, max: 45199 } });
    await leg.createOffer();
    await assert.rejects(leg.acceptAnswer('v=0\r\nnot really'), (err: unknown) => err instanceof MediaError && err.code === 'WEBRTC_FAILED');
    await assert.rejects(leg.createOffer(), (err: unknown) => err instanceof MediaError && err.code === 'WEBRTC_FAILED', 'a second offer is refused on the worker too');
    const caller = await w.openSession({ pool, host: '127.0.0.1', latch: null });
    const states: string[] = [];
    leg.on('state', (s) => states.push(s));
    await workers.kill(w.index);
    assert.deepEqual(states, ['failed']);
    assert.equal(caller.isClosed, true);
    await leg.close();
    assert.equal(leg.state, 'closed', 'close() on a lost leg resolves');
    assert.equal(pool.inUse, 0);
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
