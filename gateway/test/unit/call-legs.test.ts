import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import sip, { type Stack } from 'sip';
import { PortPool } from '../../../media/rtp/port-pool';
import { encodeFrame } from '../../../media/tones/g711';
import { MediaClock } from '../../../media/tones/media-clock';
import { Call, type CallDeps } from '../../calls/call';
import { isCallError } from '../../calls/errors';
import { OutboundLeg } from '../../calls/legs/outbound-leg';
import { configSchema, type CodecName } from '../../config/schema';
import { Metrics } from '../../metrics';
import { UacDialog } from '../../sip/uac-dialog';
import { CallStore, type CallRecord } from '../../store/call-store';
import { Db } from '../../store/db';
import { freeUdpPort, ToneFarEnd } from './tone-far-end';

/*
 * The Call's leg API on real peers: outbound legs are real UAC dialogs on a sip.js stack to far
 * ends on other loopback addresses that answer, talk their own tone and measure what they hear;
 * RTP goes through real sessions from a port pool and the MediaJoint on the 20 ms media clock.
 * Who hears whom is decided by Goertzel on what each far end receives.
 */

const HOST = '127.0.0.1';
const HOLD_HZ = 440;
const HZ = { a: 700, b: 1100, c: 1700 } as const;

function holdFrames(codec: CodecName): Buffer[] {
  const frames: Buffer[] = [];
  for (let f = 0; f < 10; f++) {
    const pcm = new Int16Array(160);
    for (let i = 0; i < 160; i++) pcm[i] = Math.round(5000 * Math.sin((2 * Math.PI * HOLD_HZ * (f * 160 + i)) / 8000));
    frames.push(encodeFrame(codec, pcm));
  }
  return frames;
}

async function until(what: string, pred: () => boolean, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`not met in time: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Call legs: addOutbound, removeLeg, holdLeg, setRole on a real joint', function () {
  this.timeout(30_000);
  let dir: string;
  let db: Db;
  let store: CallStore;
  let stack: Stack;
  let clock: MediaClock;
  let pool: PortPool;
  const dialogs = new Map<string, UacDialog>();
  const far: Record<keyof typeof HZ, ToneFarEnd> = {} as Record<keyof typeof HZ, ToneFarEnd>;
  let deps: CallDeps;
  let calls: Call[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ccedge-call-legs-'));
    db = await Db.open(join(dir, 'calls.db'));
    store = new CallStore(db);
    far.a = await ToneFarEnd.create('127.0.0.21', HZ.a);
    far.b = await ToneFarEnd.create('127.0.0.22', HZ.b);
    far.c = await ToneFarEnd.create('127.0.0.23', HZ.c);
    const sipPort = await freeUdpPort(HOST);
    stack = sip.create({ address: HOST, port: sipPort, udp: true, tcp: false, publicAddress: 'ccedge-unit.invalid' }, (rq) => dialogs.get(String(rq.headers['call-id']))?.onRequest(rq));
    clock = new MediaClock();
    pool = new PortPool({ min: 31000, max: 31199 });
    const trunks = (Object.keys(HZ) as Array<keyof typeof HZ>).map((k) => ({ name: k, allow: [`${far[k].ip}/32`], outbound: { host: far[k].ip, port: far[k].sipPort } }));
    const config = configSchema.parse({ site: { deviceId: 'unit' }, trunks, calls: { maxParties: 3 } });
    const log = pino({ level: 'silent' });
    deps = {
      config,
      store,
      metrics: new Metrics(),
      clock,
      holdFrames: { PCMU: holdFrames('PCMU'), PCMA: holdFrames('PCMA') },
      dialOutbound: (target, codec, legLog) =>
        OutboundLeg.open({
          pool,
          host: HOST,
          codec,
          userAgent: 'unit',
          log: legLog,
          target,
          place: (trunk, number) => {
            const f = far[trunk as keyof typeof HZ];
            const dialog = new UacDialog(stack, { host: f.ip, port: f.sipPort, transport: 'udp' }, { fromUser: 'ccedge', toUser: number, localAddress: HOST, localPort: sipPort, userAgent: 'unit' });
            dialogs.set(dialog.callId, dialog);
            dialog.on('terminated', () => dialogs.delete(dialog.callId));
            return { dialog, localAddress: HOST, remote: `${f.ip}:${f.sipPort}` };
          },
        }),
    };
  });

  afterEach(async () => {
    for (const c of calls) await c.close('shutdown');
    calls = [];
    for (const f of Object.values(far)) {
      f.answerWith = 200;
    }
  });

  after(async () => {
    stack.destroy();
    for (const f of Object.values(far)) f.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A call with no inbound leg (as a callback is before it dials), with its record in the store. */
  async function newCall(): Promise<Call> {
    const call = new Call(deps, pino({ level: 'silent' }));
    calls.push(call);
    const now = new Date().toISOString();
    const record: CallRecord = {
      id: call.id, sipCallId: `unit-${call.id}`, trunk: 'a', direction: 'outbound', fromUri: 'sip:ccedge@127.0.0.1', fromUser: 'ccedge', fromName: null,
      toUri: 'sip:1@127.0.0.21', toUser: '1', remoteAddr: '127.0.0.21', transport: 'UDP', codec: 'PCMU', state: 'answered', createdAt: now, answeredAt: now,
      endedAt: null, endCause: null, sipStatus: null, dtmf: '', rtpLocalPort: 0, rtpRemote: null, rtpPacketsSent: 0, rtpPacketsReceived: 0, rtpPacketsDropped: 0,
      queue: null, agent: null, callerSource: null, assertedIdentity: null, privacy: null, originalCalled: null,
    };
    await store.create(record, 'call.offered', {});
    return call;
  }

  it('joins two dialled parties (each hears the other), removeLeg hangs one up and the call goes on, close() hangs up the rest once', async () => {
    const call = await newCall();
    const added: string[] = [];
    const removed: string[] = [];
    call.on('legAdded', (id, kind) => added.push(`${kind}:${id}`));
    call.on('legRemoved', (id, kind) => removed.push(`${kind}:${id}`));
    const byesA = far.a.byes;
    const byesB = far.b.byes;
    const legA = await call.addOutbound({ trunk: 'a', number: '2001' });
    const legB = await call.addOutbound({ trunk: 'b', number: '2002' });
    assert.deepEqual(added, [`outbound:${legA}`, `outbound:${legB}`]);
    assert.deepEqual(
      call.legs.map((l) => [l.kind, l.number, l.state, l.role]),
      [
        ['outbound', '2001', 'up', 'party'],
        ['outbound', '2002', 'up', 'party'],
      ],
    );
    far.a.listenFor(HZ.b, HZ.a);
    far.b.listenFor(HZ.a, HZ.b);
    await until('a hears b and b hears a', () => far.a.heard(HZ.b) > 0.6 && far.b.heard(HZ.a) > 0.6);
    assert.ok(far.a.heard(HZ.a) < 0.1, 'a does not hear itself');

    call.removeLeg(legA, 'agent-hangup');
    await until('a gets BYE', () => far.a.byes === byesA + 1);
    assert.deepEqual(removed, [`outbound:${legA}`]);
    assert.equal(call.closed, false);
    assert.deepEqual(call.legs.map((l) => l.id), [legB]);
    assert.throws(() => call.removeLeg(legA, 'agent-hangup'), (e: unknown) => isCallError(e, 'CALL_UNKNOWN_LEG'));

    await call.close('shutdown');
    await call.close('shutdown');
    await until('b gets BYE', () => far.b.byes === byesB + 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(far.b.byes, byesB + 1, 'one BYE, however often close() is called');
    assert.equal(pool.inUse, 0, 'every RTP port is back in the pool');
    assert.deepEqual(call.legs, []);
  });

  it('holdLeg: the held party hears the hold tone and nobody hears it; un-held, both hear each other again', async () => {
    const call = await newCall();
    const legA = await call.addOutbound({ trunk: 'a', number: '2001' });
    await call.addOutbound({ trunk: 'b', number: '2002' });
    call.holdLeg(legA, true);
    assert.equal(call.legs.find((l) => l.id === legA)?.held, true);
    far.a.listenFor(HOLD_HZ, HZ.b);
    far.b.listenFor(HZ.a);
    await until('a hears the hold tone', () => far.a.heard(HOLD_HZ) > 0.6 && far.a.packetsReceived > 0);
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(far.b.heard(HZ.a) < 0.1, `b does not hear a while a is held (share ${far.b.heard(HZ.a).toFixed(2)})`);
    assert.ok(far.a.heard(HZ.b) < 0.1, 'a hears only the hold tone');

    call.holdLeg(legA, false);
    far.a.listenFor(HZ.b, HOLD_HZ);
    far.b.listenFor(HZ.a);
    await until('both hear each other again', () => far.a.heard(HZ.b) > 0.6 && far.b.heard(HZ.a) > 0.6);
  });

  it('setRole listener: it hears both parties and nobody hears it; calls.maxParties refuses a fourth party', async () => {
    const call = await newCall();
    await call.addOutbound({ trunk: 'a', number: '2001' });
    await call.addOutbound({ trunk: 'b', number: '2002' });
    const legC = await call.addOutbound({ trunk: 'c', number: '2003' });
    await assert.rejects(call.addOutbound({ trunk: 'a', number: '2004' }), (e: unknown) => isCallError(e, 'CALL_FULL'));
    call.setRole(legC, 'listener');
    assert.equal(call.legs.find((l) => l.id === legC)?.role, 'listener');
    far.a.listenFor(HZ.b, HZ.c);
    far.b.listenFor(HZ.a, HZ.c);
    far.c.listenFor(HZ.a, HZ.b);
    await until('c hears a and b', () => far.c.heard(HZ.a) > 0.25 && far.c.heard(HZ.b) > 0.25);
    await until('a and b hear each other', () => far.a.heard(HZ.b) > 0.6 && far.b.heard(HZ.a) > 0.6);
    const before = far.a.packetsReceived;
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(far.a.packetsReceived > before + 10, 'a keeps receiving audio');
    assert.ok(far.a.heard(HZ.c) < 0.1 && far.b.heard(HZ.c) < 0.1, `nobody hears the listener (${far.a.heard(HZ.c).toFixed(2)}, ${far.b.heard(HZ.c).toFixed(2)})`);
    assert.ok(far.c.heard(HZ.a) > 0.25 && far.c.heard(HZ.b) > 0.25, 'the listener still hears both');
  });

  it('a refused outbound leg rejects with its status and leaves no leg; a ringing one is CANCELled by close()', async () => {
    const call = await newCall();
    const removed: string[] = [];
    call.on('legRemoved', (_id, kind) => removed.push(kind));
    far.a.answerWith = 486;
    await assert.rejects(call.addOutbound({ trunk: 'a', number: '2001' }), (e: unknown) => isCallError(e, 'CALL_OUTBOUND_FAILED') && e.details?.status === 486);
    assert.deepEqual(call.legs, []);
    assert.deepEqual(removed, ['outbound']);

    far.b.answerWith = 'ring';
    const cancels = far.b.cancels;
    const ringing = call.addOutbound({ trunk: 'b', number: '2002' });
    await until('b rings', () => call.legs.some((l) => l.state === 'ringing') && far.b.received.at(-1) === 'INVITE');
    await call.close('shutdown');
    await assert.rejects(ringing, (e: unknown) => isCallError(e, 'CALL_CLOSED'));
    await until('b gets CANCEL', () => far.b.cancels === cancels + 1);
    await assert.rejects(call.addOutbound({ trunk: 'c', number: '2003' }), (e: unknown) => isCallError(e, 'CALL_CLOSED'));
    assert.equal(pool.inUse, 0);
  });
});
