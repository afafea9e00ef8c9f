import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import sip, { type Flow, type SipRequest } from 'sip';
import { MediaClock, type AudioPort } from '../../../media';
import { Call, outboundFailure, sanitise, type CallDeps } from '../../calls/call';
import { latchPredicate } from '../../calls/call-manager';
import { CountedPort } from '../../calls/counted-port';
import { CallError, isCallError } from '../../calls/errors';
import { inboundRecord } from '../../calls/inbound-record';
import { configSchema } from '../../config/schema';
import { Metrics } from '../../metrics';
import { callerIdentity } from '../../sip/identity';
import { CallStore, type CallRecord } from '../../store/call-store';
import { Db } from '../../store/db';

/*
 * The call model's pieces that need no peer: the record an INVITE starts, the RTP latch rule,
 * the counting port, the error helpers, and a Call without an inbound leg (a callback before it
 * dials) — its refusals and its one close(), written to the real sqlite store.
 */

function invite(extra: string[] = []): SipRequest {
  const text = [
    'INVITE sip:support@192.0.2.1:5060 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport',
    'Max-Forwards: 70',
    'From: "Ada L" <sip:+1-555-0100@192.0.2.10>;tag=1928301774',
    'To: <sip:support@192.0.2.1>',
    'Call-ID: a84b4c76e66710@192.0.2.10',
    'CSeq: 1 INVITE',
    'Contact: <sip:1001@192.0.2.10:5060>',
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const parsed = sip.parse(text);
  assert.ok(parsed && 'method' in parsed, 'sip.js parsed the test INVITE');
  return parsed as SipRequest;
}

const FLOW: Flow = { protocol: 'udp', address: '::ffff:192.0.2.10', port: 5062, local: { address: '192.0.2.1', port: 5060 } };

describe('inboundRecord', () => {
  it('starts a ringing inbound record from the INVITE and its flow: From for the caller, addresses normalised', () => {
    const r = inboundRecord('call-1', invite(['P-Asserted-Identity: <sip:+15550199@pbx>']), FLOW, 'pbx');
    assert.equal(r.id, 'call-1');
    assert.equal(r.sipCallId, 'a84b4c76e66710@192.0.2.10');
    assert.equal(r.trunk, 'pbx');
    assert.equal(r.direction, 'inbound');
    assert.equal(r.state, 'ringing');
    assert.equal(r.fromName, 'Ada L');
    assert.equal(r.fromUser, '+15550100', 'visual separators of the number removed');
    assert.equal(r.toUser, 'support');
    assert.equal(r.callerSource, 'from', 'untrusted by default: the asserted identity is not read');
    assert.equal(r.assertedIdentity, null);
    assert.equal(r.remoteAddr, '192.0.2.10:5062', 'an IPv4-mapped address is written as IPv4');
    assert.equal(r.transport, 'UDP');
    assert.deepEqual([r.answeredAt, r.endedAt, r.endCause, r.sipStatus, r.queue, r.agent], [null, null, null, null, null, null]);
    assert.equal(r.rtpPacketsSent + r.rtpPacketsReceived + r.rtpPacketsDropped, 0);
    assert.ok(!Number.isNaN(Date.parse(r.createdAt)));
  });

  it('takes the identity it is given: a trusting trunk names the caller by P-Asserted-Identity', () => {
    const rq = invite(['P-Asserted-Identity: "Switchboard" <sip:+15550199@pbx>', 'Privacy: id']);
    const r = inboundRecord('call-2', rq, FLOW, 'pbx', callerIdentity(rq, true));
    assert.equal(r.fromUser, '+15550199');
    assert.equal(r.fromName, 'Switchboard');
    assert.equal(r.callerSource, 'pai');
    assert.equal(r.assertedIdentity, 'sip:+15550199@pbx');
    assert.equal(r.privacy, 'id');
    assert.equal(r.fromUri, 'sip:+1-555-0100@192.0.2.10', 'the From URI itself is kept as received');
  });
});

describe('latchPredicate (trunks[].symmetricRtp)', () => {
  const trunks = configSchema.parse({
    site: { deviceId: 'unit' },
    trunks: [
      { name: 'strict', allow: ['192.0.2.0/28'] },
      { name: 'latching', allow: ['192.0.2.0/28', '198.51.100.7'], symmetricRtp: true },
    ],
  }).trunks;

  it('is undefined without symmetricRtp or without a trunk: media keeps to the SDP address', () => {
    assert.equal(latchPredicate(trunks[0]), undefined);
    assert.equal(latchPredicate(undefined), undefined);
  });

  it("admits exactly the trunk's allow-list", () => {
    const admits = latchPredicate(trunks[1]);
    assert.ok(admits);
    assert.equal(admits('192.0.2.15'), true);
    assert.equal(admits('198.51.100.7'), true);
    assert.equal(admits('192.0.2.16'), false);
    assert.equal(admits('203.0.113.1'), false);
  });
});

describe('CountedPort', () => {
  type Audio = (payload: Buffer, marker: boolean, timestamp: number, ssrc: number) => void;
  type Event = (payload: Buffer, marker: boolean, timestamp: number) => void;
  /** media's AudioPort interface, recording what reaches it. */
  class InnerPort extends EventEmitter implements AudioPort {
    readonly audio: Array<[string, boolean, number]> = [];
    readonly events: Array<[string, boolean, number]> = [];
    sendAudio(payload: Buffer, marker: boolean, timestamp: number): void {
      this.audio.push([payload.toString('hex'), marker, timestamp]);
    }
    sendTelephoneEvent(payload: Buffer, marker: boolean, timestamp: number): void {
      this.events.push([payload.toString('hex'), marker, timestamp]);
    }
  }

  it('passes audio on unchanged and counts each packet; telephone events pass uncounted', () => {
    const inner = new InnerPort();
    const port = new CountedPort(inner);
    port.sendAudio(Buffer.from([1, 2]), true, 160);
    port.sendAudio(Buffer.from([3]), false, 320);
    port.sendTelephoneEvent(Buffer.from([9]), true, 480);
    assert.equal(port.sent, 2);
    assert.deepEqual(inner.audio, [['0102', true, 160], ['03', false, 320]]);
    assert.deepEqual(inner.events, [['09', true, 480]]);
  });

  it('drops telephone events for a port that cannot send them, and hands listeners to the inner port', () => {
    const inner = new EventEmitter() as EventEmitter & AudioPort;
    inner.sendAudio = () => undefined;
    const port = new CountedPort(inner);
    assert.doesNotThrow(() => port.sendTelephoneEvent(Buffer.from([9]), true, 0));
    const heard: number[] = [];
    const onAudio: Audio = (_p, _m, ts) => void heard.push(ts);
    const onEvent: Event = (_p, _m, ts) => void heard.push(-ts);
    port.on('audio', onAudio).on('telephoneEvent', onEvent);
    inner.emit('audio', Buffer.alloc(1), false, 160, 7);
    inner.emit('telephoneEvent', Buffer.alloc(1), false, 5);
    port.off('audio', onAudio).off('telephoneEvent', onEvent);
    inner.emit('audio', Buffer.alloc(1), false, 320, 7);
    assert.deepEqual(heard, [160, -5]);
    assert.equal(inner.listenerCount('audio') + inner.listenerCount('telephoneEvent'), 0);
  });
});

describe('outboundFailure and sanitise', () => {
  it('outboundFailure keeps a numeric status and a string reason, nothing else', () => {
    assert.deepEqual(outboundFailure({ status: 486, reason: 'Busy Here', extra: 1 }), { status: 486, reason: 'Busy Here' });
    assert.deepEqual(outboundFailure({ status: '486', reason: 7 }), {});
    assert.deepEqual(outboundFailure(undefined), {});
    const err = new CallError('CALL_OUTBOUND_FAILED', 'x', { status: 404, reason: 'Not Found' });
    assert.deepEqual(outboundFailure(err.details), { status: 404, reason: 'Not Found' });
  });

  it('sanitise makes text safe inside a quoted header value and caps it at 120 characters', () => {
    assert.equal(sanitise('a "quoted"\\ line\r\nInjected: yes'), 'a  quoted   line  Injected: yes');
    assert.equal(sanitise('x'.repeat(500)).length, 120);
  });
});

describe('Call without an inbound leg (a callback before it dials)', function () {
  this.timeout(20_000);
  let dir: string;
  let db: Db;
  let store: CallStore;
  let metrics: Metrics;
  let clock: MediaClock;
  const calls: Call[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ccedge-call-model-'));
    db = await Db.open(join(dir, 'calls.db'));
    store = new CallStore(db);
    clock = new MediaClock();
  });
  afterEach(async () => {
    for (const c of calls.splice(0)) await c.close('shutdown');
  });
  after(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function deps(over: Partial<CallDeps> = {}): CallDeps {
    metrics = new Metrics();
    const config = configSchema.parse({ site: { deviceId: 'unit' }, trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }], calls: { codecs: ['PCMA', 'PCMU'] } });
    return { config, store, metrics, clock, holdFrames: { PCMU: [], PCMA: [] }, ...over };
  }

  async function newCall(d: CallDeps = deps()): Promise<Call> {
    const call = new Call(d, pino({ level: 'silent' }));
    calls.push(call);
    const now = new Date().toISOString();
    const record: CallRecord = {
      id: call.id, sipCallId: `unit-${call.id}`, trunk: 'pbx', direction: 'outbound', fromUri: 'sip:ccedge@127.0.0.1', fromUser: 'ccedge', fromName: null,
      toUri: 'sip:1@127.0.0.1', toUser: '1', remoteAddr: '127.0.0.1', transport: 'UDP', codec: 'PCMA', state: 'ringing', createdAt: now, answeredAt: null,
      endedAt: null, endCause: null, sipStatus: null, dtmf: '', rtpLocalPort: null, rtpRemote: null, rtpPacketsSent: 0, rtpPacketsReceived: 0, rtpPacketsDropped: 0,
      queue: null, agent: null, callerSource: null, assertedIdentity: null, privacy: null, originalCalled: null,
    };
    await store.create(record, 'call.offered', {});
    return call;
  }

  async function code(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
    try {
      await (typeof p === 'function' ? p() : p);
    } catch (err) {
      if (isCallError(err)) return err.code;
      throw err;
    }
    return undefined;
  }

  it('has no legs, no trunk, no agent, and the first configured codec', async () => {
    const call = await newCall();
    assert.deepEqual(call.legs, []);
    assert.equal(call.customerLeg, undefined);
    assert.equal(call.trunk, null);
    assert.equal(call.agent, undefined);
    assert.equal(call.codec, 'PCMA');
    assert.equal(call.closed, false);
    assert.equal(call.releaseAgent('transferred'), false, 'no caller and no agent to release');
  });

  it('refuses what needs a leg it does not have with CALL_UNKNOWN_LEG', async () => {
    const call = await newCall();
    assert.equal(await code(() => call.removeLeg('nope', 'agent-hangup')), 'CALL_UNKNOWN_LEG');
    assert.equal(await code(() => call.holdLeg('nope', true)), 'CALL_UNKNOWN_LEG');
    assert.equal(await code(() => call.setRole('nope', 'listener')), 'CALL_UNKNOWN_LEG');
    assert.equal(await code(() => call.setPrimaryAgent('nope')), 'CALL_UNKNOWN_LEG');
    assert.equal(await code(() => call.referCaller('5550199')), 'CALL_UNKNOWN_LEG', 'no caller dialog to REFER on');
  });

  it('addOutbound without a dialer, or with one that cannot place the call, is CALL_OUTBOUND_UNAVAILABLE and leaves no leg', async () => {
    const none = await newCall();
    assert.equal(await code(none.addOutbound({ trunk: 'pbx', number: '5550199' })), 'CALL_OUTBOUND_UNAVAILABLE');
    const asked: Array<[string, string]> = [];
    const failing = await newCall(
      deps({
        dialOutbound: (target, codec) => {
          asked.push([target.number, codec]);
          return Promise.reject(Object.assign(new Error('no RTP port free'), { code: 'RTP_NO_PORT' }));
        },
      }),
    );
    let caught: unknown;
    await failing.addOutbound({ trunk: 'pbx', number: '5550199' }).catch((e: unknown) => (caught = e));
    assert.ok(isCallError(caught, 'CALL_OUTBOUND_UNAVAILABLE'));
    assert.match(caught.message, /5550199: no RTP port free/);
    assert.equal(caught.details?.cause, 'RTP_NO_PORT');
    assert.deepEqual(asked, [['5550199', 'PCMA']], 'dialled once, with the call codec');
    assert.deepEqual(failing.legs, []);
  });

  it('close() ends the call once: one closed event, the record ended with its cause, the outcome counted', async () => {
    const call = await newCall();
    const causes: string[] = [];
    call.on('closed', (c) => causes.push(c));
    await call.close('callback-failed');
    await call.close('shutdown');
    assert.deepEqual(causes, ['callback-failed']);
    assert.equal(call.closed, true);
    const rec = await waitFor(() => store.get(call.id), (r) => r?.state === 'ended');
    assert.equal(rec?.endCause, 'callback-failed');
    assert.ok(rec?.endedAt);
    const events = await store.events(call.id);
    assert.deepEqual(events.map((e) => e.type), ['call.offered', 'call.ended']);
    assert.equal(events[1].data.cause, 'callback-failed');
    assert.match(await metrics.registry.getSingleMetricAsString('ccedge_calls_total'), /outcome="callback-failed"\} 1/);
  });

  it('after close(): addOutbound is CALL_CLOSED without dialling, record() writes nothing', async () => {
    let dialled = 0;
    const call = await newCall(deps({ dialOutbound: () => (dialled++, Promise.reject(new Error('unreachable'))) }));
    await call.close('caller-hangup');
    assert.equal(await code(call.addOutbound({ trunk: 'pbx', number: '1' })), 'CALL_CLOSED');
    assert.equal(dialled, 0);
    await waitFor(() => store.events(call.id), (e) => e.length === 2);
    call.record('call.queued', { queue: 'support' }, { queue: 'support' });
    // betweenWrites runs after every write queued before it: had record() written, it would show.
    await db.betweenWrites(() => Promise.resolve());
    const after = await store.events(call.id);
    assert.deepEqual(after.map((e) => e.type), ['call.offered', 'call.ended']);
    assert.equal((await store.get(call.id))?.queue, null);
  });
});

async function waitFor<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the store never showed the expected state');
}
