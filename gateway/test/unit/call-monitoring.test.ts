import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { WeriftAnswerer } from '../../../media/test/helpers/werift-answerer';
import { MediaClock } from '../../../media/tones/media-clock';
import { Call, type CallDeps } from '../../calls/call';
import { configSchema } from '../../config/schema';
import { Metrics } from '../../metrics';
import { CallStore, type CallRecord } from '../../store/call-store';
import { Db } from '../../store/db';
import { CallMonitoring } from '../../supervisor/call-monitoring';
import { MonitoringError } from '../../supervisor/monitoring';

/*
 * CallMonitoring on a real Call and real WebRTC legs (werift answering on loopback): the
 * supervisor's leg joins with the mode's role, a mode change is a role change on the same leg,
 * and every way a session ends removes the leg, clears its timer and says why.
 */

async function until(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`not met in time: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('CallMonitoring: a supervisor leg on the call model', function () {
  this.timeout(30_000);
  let dir: string;
  let db: Db;
  let deps: CallDeps;
  const calls: Call[] = [];
  const peers: WeriftAnswerer[] = [];
  const log = pino({ level: 'silent' });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ccedge-monitoring-'));
    db = await Db.open(join(dir, 'calls.db'));
    deps = { config: configSchema.parse({ site: { deviceId: 'unit' }, trunks: [{ name: 'a', allow: ['127.0.0.1/32'] }] }), store: new CallStore(db), metrics: new Metrics(), clock: new MediaClock(), holdFrames: { PCMU: [], PCMA: [] } };
  });
  afterEach(async () => {
    for (const p of peers.splice(0)) await p.close().catch(() => undefined);
    for (const c of calls.splice(0)) await c.close('shutdown');
  });
  after(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function newCall(): Promise<Call> {
    const call = new Call(deps, log);
    calls.push(call);
    const now = new Date().toISOString();
    const record: CallRecord = {
      id: call.id, sipCallId: `unit-${call.id}`, trunk: 'a', direction: 'outbound', fromUri: 'sip:ccedge@127.0.0.1', fromUser: 'ccedge', fromName: null,
      toUri: 'sip:1@127.0.0.1', toUser: '1', remoteAddr: '127.0.0.1', transport: 'UDP', codec: 'PCMU', state: 'answered', createdAt: now, answeredAt: now,
      endedAt: null, endCause: null, sipStatus: null, dtmf: '', rtpLocalPort: 0, rtpRemote: null, rtpPacketsSent: 0, rtpPacketsReceived: 0, rtpPacketsDropped: 0,
      queue: null, agent: null, callerSource: null, assertedIdentity: null, privacy: null, originalCalled: null,
    };
    await deps.store.create(record, 'call.offered', {});
    return call;
  }

  function monitoring(mediaSetupS?: number): { m: CallMonitoring; ended: string[] } {
    const m = new CallMonitoring({ findCall: (id) => calls.find((c) => c.id === id), webrtc: { interfaces: ['127.0.0.1'], portRange: { min: 42000, max: 42099 } }, log, mediaSetupS });
    const ended: string[] = [];
    m.on('ended', (sup, callId, reason) => ended.push(`${sup}:${callId === calls[0]?.id ? 'call' : callId}:${reason}`));
    return { m, ended };
  }

  async function answer(m: CallMonitoring, callId: string, offer: { sdp: string } | null): Promise<WeriftAnswerer> {
    assert.ok(offer, 'a new session gets an offer');
    const peer = await WeriftAnswerer.answer(offer.sdp);
    peers.push(peer);
    await m.accept('sue', callId, peer.answer);
    return peer;
  }

  it('listen joins as listener; whisper and barge change the role of the same leg; stop removes it', async () => {
    const call = await newCall();
    const { m, ended } = monitoring();
    await answer(m, call.id, await m.start('sue', call.id, 'listen'));
    const leg = () => call.legs.find((l) => l.kind === 'agent' && l.name === 'sue');
    await until('the leg is up', () => leg()?.state === 'up');
    assert.equal(leg()?.role, 'listener');
    assert.equal(call.agent, undefined, 'a supervisor is never the call agent');
    assert.equal(await m.start('sue', call.id, 'whisper'), null, 'a mode change keeps the leg');
    assert.equal(leg()?.role, 'coach');
    assert.equal(await m.start('sue', call.id, 'barge'), null);
    assert.equal(leg()?.role, 'barge');
    assert.equal(m.active, 1);
    m.stop('sue', call.id);
    m.stop('sue', call.id);
    assert.equal(leg(), undefined, 'the leg left the call');
    assert.equal(call.closed, false, 'the call goes on');
    assert.deepEqual(ended, ['sue:call:stopped']);
    assert.equal(m.active, 0);
  });

  it('the call ending ends the session (call-ended); an unknown or ended call is refused', async () => {
    const call = await newCall();
    const { m, ended } = monitoring();
    await answer(m, call.id, await m.start('sue', call.id, 'barge'));
    await call.close('caller-hangup');
    assert.deepEqual(ended, ['sue:call:call-ended']);
    assert.equal(m.active, 0);
    await assert.rejects(m.start('sue', call.id, 'listen'), (e: unknown) => e instanceof MonitoringError && e.code === 'MONITOR_NO_SUCH_CALL');
    await assert.rejects(m.start('sue', '00000000-0000-4000-8000-000000000000', 'listen'), (e: unknown) => e instanceof MonitoringError && e.code === 'MONITOR_NO_SUCH_CALL');
  });

  it('a page that never answers the offer: media-failed, the leg is gone; a leg whose media fails later ends the same way', async () => {
    const call = await newCall();
    const { m, ended } = monitoring(0.3);
    assert.ok(await m.start('sue', call.id, 'listen'));
    await until('setup times out', () => ended.length === 1);
    assert.deepEqual(ended, ['sue:call:media-failed']);
    assert.equal(call.legs.length, 0);

    await answer(m, call.id, await m.start('sue', call.id, 'listen'));
    await until('the leg is up', () => call.legs.some((l) => l.state === 'up'));
    // The call drops the leg by itself (as on an ICE/DTLS failure): the session follows.
    call.removeLeg(call.legs[0].id, 'media-failed');
    assert.deepEqual(ended, ['sue:call:media-failed', 'sue:call:media-failed']);
    assert.equal(m.active, 0);
  });
});
