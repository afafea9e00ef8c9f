import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import { PortPool } from '../../rtp/port-pool';
import { RtpSession } from '../../rtp/rtp-session';
import { parseRtp, writeRtpHeader, type RtpHeader } from '../../rtp/packet';
import { encodeRfc4733, type DtmfDigitEvent } from '../../dtmf/rfc4733';
import { MediaClock } from '../../tones/media-clock';
import { TonePlayer } from '../../tones/tone-player';
import { renderTone, RINGBACK_TONE } from '../../tones/tone';
import { MediaError } from '../../errors';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 1000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(5);
  }
}

async function udp(host = '127.0.0.1'): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  s.bind(0, host);
  await once(s, 'listening');
  return s;
}

function rtp(pt: number, seq: number, ts: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(12 + payload.length);
  writeRtpHeader(b, { marker: false, payloadType: pt, sequenceNumber: seq, timestamp: ts, ssrc: 99 });
  payload.copy(b, 12);
  return b;
}

/** 127.0.0.2 is loopback on Linux but not everywhere (macOS needs an alias). */
async function canBind127002(): Promise<boolean> {
  const s = dgram.createSocket('udp4');
  try {
    s.bind(0, '127.0.0.2');
    await once(s, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

describe('RtpSession', () => {
  const pool = new PortPool({ min: 41000, max: 41999 });
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    while (cleanup.length) cleanup.pop()!();
  });
  async function session(latchAllowed?: (address: string) => boolean): Promise<RtpSession> {
    const s = await RtpSession.open({ pool, host: '127.0.0.1', latchAllowed });
    cleanup.push(() => s.close());
    return s;
  }
  async function socket(host?: string): Promise<dgram.Socket> {
    const s = await udp(host);
    cleanup.push(() => s.close());
    return s;
  }

  it('a pair exchanges packets with consecutive sequence numbers and correct payloads', async () => {
    const a = await session();
    const b = await session();
    assert.equal(a.localPort % 2, 0);
    a.setRemote('127.0.0.1', b.localPort);
    b.setRemote('127.0.0.1', a.localPort);
    a.configure({ payloadType: 0 });
    b.configure({ payloadType: 0 });
    const got: Array<{ h: RtpHeader; p: Buffer }> = [];
    b.on('packet', (h, p) => got.push({ h: { ...h }, p: Buffer.from(p) }));
    for (let i = 0; i < 5; i++) a.sendPayload(Buffer.alloc(160, i), i === 0);
    await until(() => got.length === 5);
    assert.equal(got[0].h.marker, true);
    for (let i = 1; i < 5; i++) {
      assert.equal(got[i].h.sequenceNumber, (got[0].h.sequenceNumber + i) & 0xffff);
      assert.equal(got[i].h.timestamp, (got[0].h.timestamp + 160 * i) >>> 0);
      assert.equal(got[i].h.ssrc, got[0].h.ssrc);
      assert.equal(got[i].p[0], i);
    }
    assert.equal(a.stats.packetsSent, 5);
    assert.equal(a.stats.octetsSent, 800);
    assert.equal(b.stats.packetsReceived, 5);
    assert.ok(b.stats.lastReceivedAt > 0);
  });

  it('a burst larger than the send ring is sent without corrupting earlier packets', async () => {
    const a = await session();
    const rx = await socket();
    a.setRemote('127.0.0.1', rx.address().port);
    a.configure({ payloadType: 8 });
    const got: number[] = [];
    rx.on('message', (m) => got.push(parseRtp(m)!.payload[0]));
    for (let i = 0; i < 20; i++) a.sendPayload(Buffer.alloc(160, i));
    await until(() => got.length + a.stats.sendOverruns === 20);
    // Whatever was sent arrives intact and in order; nothing shows another packet's payload.
    for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1]);
  });

  it('drops packets from another IP and malformed packets', async function () {
    if (!(await canBind127002())) this.skip();
    const a = await session();
    const peer = await socket('127.0.0.1');
    const intruder = await socket('127.0.0.2');
    a.setRemote('127.0.0.1', peer.address().port);
    a.configure({ payloadType: 0 });
    let packets = 0;
    a.on('packet', () => packets++);
    intruder.send(rtp(0, 1, 160, Buffer.alloc(160)), a.localPort, '127.0.0.1');
    peer.send(Buffer.from('not rtp'), a.localPort, '127.0.0.1');
    await until(() => a.stats.packetsDropped === 2);
    peer.send(rtp(0, 2, 320, Buffer.alloc(160)), a.localPort, '127.0.0.1');
    await until(() => packets === 1);
    assert.equal(a.stats.packetsReceived, 1);
  });

  it('symmetric: latches to a new source port on an allowed IP, then ignores other ports', async () => {
    const a = await session(() => true);
    const natted = await socket();
    const other = await socket();
    a.setRemote('127.0.0.1', 9); // what the SDP said
    a.configure({ payloadType: 0 });
    let packets = 0;
    const latched: string[] = [];
    a.on('packet', () => packets++);
    a.on('latched', (addr, port) => latched.push(`${addr}:${port}`));
    natted.send(rtp(0, 1, 160, Buffer.alloc(160)), a.localPort, '127.0.0.1');
    await until(() => packets === 1);
    assert.deepEqual(a.remote, { address: '127.0.0.1', port: natted.address().port });
    assert.deepEqual(latched, [`127.0.0.1:${natted.address().port}`]);
    // Our sends now go to the latched port.
    const [echo] = await Promise.all([once(natted, 'message'), Promise.resolve(a.sendPayload(Buffer.alloc(160, 0x55)))]);
    assert.equal(parseRtp(echo[0] as Buffer)!.payload[0], 0x55);
    other.send(rtp(0, 2, 320, Buffer.alloc(160)), a.localPort, '127.0.0.1');
    await until(() => a.stats.packetsDropped === 1);
    assert.equal(a.stats.packetsForeign, 1);
    assert.equal(packets, 1);
    // The same remote again (a re-INVITE keeping the media) keeps the latch.
    a.setRemote('127.0.0.1', 9);
    natted.send(rtp(0, 3, 480, Buffer.alloc(160)), a.localPort, '127.0.0.1');
    await until(() => packets === 2);
  });

  it('strict (default): a foreign port on the PBX IP before its first packet is ignored, the PBX is heard', async () => {
    const a = await session();
    const pbx = await socket();
    const attacker = await socket();
    a.setRemote('127.0.0.1', pbx.address().port);
    a.configure({ payloadType: 0 });
    const got: number[] = [];
    const foreign: string[] = [];
    a.on('packet', (_h, p) => got.push(p[0]));
    a.on('foreign', (addr, port) => foreign.push(`${addr}:${port}`));
    for (let i = 0; i < 20; i++) attacker.send(rtp(0, i, i * 160, Buffer.alloc(160, 0xaa)), a.localPort, '127.0.0.1');
    await until(() => a.stats.packetsForeign === 20);
    assert.equal(got.length, 0);
    assert.deepEqual(a.remote, { address: '127.0.0.1', port: pbx.address().port }, 'not latched to the attacker');
    assert.deepEqual(foreign, [`127.0.0.1:${attacker.address().port}`], 'one event, whatever the packet count');
    for (let i = 0; i < 3; i++) pbx.send(rtp(0, i, i * 160, Buffer.alloc(160, 0x11)), a.localPort, '127.0.0.1');
    await until(() => got.length === 3);
    assert.deepEqual(got, [0x11, 0x11, 0x11]);
    // Our audio goes to the SDP's port, never to the attacker.
    const [echo] = await Promise.all([once(pbx, 'message'), Promise.resolve(a.sendPayload(Buffer.alloc(160, 0x55)))]);
    assert.equal(parseRtp(echo[0] as Buffer)!.payload[0], 0x55);
    assert.equal(a.stats.packetsDropped, 20);
  });

  it('symmetric: does not latch to an address outside the allow-list; the SDP source wins back a latch', async function () {
    if (!(await canBind127002())) this.skip();
    const a = await session((addr) => addr === '127.0.0.1');
    const pbx = await socket('127.0.0.1');
    const outsider = await socket('127.0.0.2');
    const natted = await socket('127.0.0.1');
    a.setRemote('127.0.0.1', pbx.address().port);
    a.configure({ payloadType: 0 });
    let packets = 0;
    a.on('packet', () => packets++);
    outsider.send(rtp(0, 1, 160, Buffer.alloc(160)), a.localPort, '127.0.0.1');
    await until(() => a.stats.packetsForeign === 1);
    assert.equal(a.remote?.port, pbx.address().port);
    natted.send(rtp(0, 2, 320, Buffer.alloc(160)), a.localPort, '127.0.0.1');
    await until(() => packets === 1);
    assert.equal(a.remote?.port, natted.address().port, 'latched to the allowed source');
    pbx.send(rtp(0, 3, 480, Buffer.alloc(160)), a.localPort, '127.0.0.1');
    await until(() => packets === 2);
    assert.equal(a.remote?.port, pbx.address().port, 'the SDP source is always accepted and takes the send target back');
    natted.send(rtp(0, 4, 640, Buffer.alloc(160)), a.localPort, '127.0.0.1');
    await until(() => a.stats.packetsForeign === 2);
    assert.equal(packets, 2, 'latching happens once');
  });

  it('a malformed packet from an allowed source does not latch', async () => {
    const a = await session(() => true);
    const natted = await socket();
    a.setRemote('127.0.0.1', 9);
    a.configure({ payloadType: 0 });
    natted.send(Buffer.from('not rtp'), a.localPort, '127.0.0.1');
    await until(() => a.stats.packetsDropped === 1);
    assert.equal(a.remote?.port, 9);
    assert.equal(a.stats.packetsForeign, 0);
  });

  it('turns telephone-event packets into one dtmf event and not packet events', async () => {
    const a = await session();
    const peer = await socket();
    a.setRemote('127.0.0.1', peer.address().port);
    a.configure({ payloadType: 8, telephoneEventPayloadType: 101 });
    const digits: DtmfDigitEvent[] = [];
    let packets = 0;
    a.on('dtmf', (d) => digits.push(d));
    a.on('packet', () => packets++);
    let seq = 10;
    for (let i = 1; i <= 3; i++) peer.send(rtp(101, seq++, 8000, encodeRfc4733('4', i * 160, false, 10)), a.localPort, '127.0.0.1');
    for (let i = 0; i < 3; i++) peer.send(rtp(101, seq++, 8000, encodeRfc4733('4', 640, true, 10)), a.localPort, '127.0.0.1');
    await until(() => a.stats.packetsReceived === 6);
    assert.deepEqual(digits.map((d) => d.digit), ['4']);
    assert.equal(packets, 0);
  });

  it('pause stops sending, resume restarts it', async () => {
    const a = await session();
    const rx = await socket();
    a.setRemote('127.0.0.1', rx.address().port);
    a.configure({ payloadType: 0 });
    a.pause();
    a.sendPayload(Buffer.alloc(160));
    assert.equal(a.stats.packetsSent, 0);
    a.resume();
    a.sendPayload(Buffer.alloc(160));
    assert.equal(a.stats.packetsSent, 1);
  });

  it('close is idempotent and returns the port to the pool', async () => {
    const before = pool.inUse;
    const a = await RtpSession.open({ pool, host: '127.0.0.1' });
    assert.equal(pool.inUse, before + 1);
    a.close();
    a.close();
    assert.equal(pool.inUse, before);
    a.sendPayload(Buffer.alloc(160)); // harmless after close
  });

  it('skips a port another process holds and fails cleanly when all are taken', async () => {
    const tiny = new PortPool({ min: 42100, max: 42103 });
    const blocker = dgram.createSocket('udp4');
    blocker.bind(42100, '127.0.0.1');
    await once(blocker, 'listening');
    cleanup.push(() => blocker.close());
    const s = await RtpSession.open({ pool: tiny, host: '127.0.0.1' });
    cleanup.push(() => s.close());
    assert.equal(s.localPort, 42102);
    await assert.rejects(RtpSession.open({ pool: tiny, host: '127.0.0.1' }), (e: unknown) => e instanceof MediaError);
    assert.equal(tiny.inUse, 1);
  });
});

describe('TonePlayer', () => {
  it('sends one frame per tick with consecutive sequence numbers and timestamps +160', async () => {
    const pool = new PortPool({ min: 43000, max: 43099 });
    const rx = await udp();
    const session = await RtpSession.open({ pool, host: '127.0.0.1' });
    session.setRemote('127.0.0.1', rx.address().port);
    session.configure({ payloadType: 0 });
    const frames = renderTone(RINGBACK_TONE, 'PCMU');
    const got: Array<{ h: RtpHeader; first: number }> = [];
    rx.on('message', (m) => {
      const p = parseRtp(m)!;
      got.push({ h: p.header, first: p.payload[0] });
    });
    const clock = new MediaClock();
    const player = new TonePlayer(clock, session, frames);
    player.start();
    assert.equal(player.playing, true);
    try {
      await until(() => got.length >= 10, 2000);
    } finally {
      player.stop();
      session.close();
      rx.close();
    }
    assert.equal(player.playing, false);
    assert.equal(clock.running, false);
    assert.equal(got[0].h.marker, true);
    assert.ok(got.slice(1).every((g) => !g.h.marker));
    for (let i = 1; i < got.length; i++) {
      assert.equal(got[i].h.sequenceNumber, (got[i - 1].h.sequenceNumber + 1) & 0xffff);
      assert.equal(got[i].h.timestamp, (got[i - 1].h.timestamp + 160) >>> 0);
      assert.equal(got[i].first, frames[i][0]);
    }
  });
});
