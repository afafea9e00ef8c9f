import assert from 'node:assert/strict';
import { AudioHookSession, type ForkEndReason, type ForkSessionOptions } from '../../speech/audiohook/client';
import { durationMs } from '../../speech/audiohook/protocol';
import type { TranscriptUtterance } from '../../speech/contract';
import { TestAudioHookServer } from '../helpers/audiohook-server';
import { makeTestPki } from '../helpers/test-pki';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Feeds a session's tap like a joint: `samples` per side every 20 ms (160 = real time). */
function feed(session: AudioHookSession, samples = 160): { stop(): void } {
  const caller = Buffer.alloc(samples, 0x11);
  const agent = Buffer.alloc(samples, 0x22);
  const t = setInterval(() => {
    session.tap.pushCaller(caller, 0, 1);
    session.tap.pushAgent(agent, 0, 2);
  }, 20);
  return { stop: () => clearInterval(t) };
}

describe('AudioHook client against a real WebSocket endpoint', function () {
  let server: TestAudioHookServer;
  const sessions: AudioHookSession[] = [];
  beforeEach(async () => {
    server = await TestAudioHookServer.start();
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    await server.stop();
  });

  const session = (over: Partial<ForkSessionOptions> = {}, utterances: TranscriptUtterance[] = []): { s: AudioHookSession; ended: Promise<[ForkEndReason, string]> } => {
    const s = new AudioHookSession({
      endpointName: 'ana',
      url: server.url,
      apiKey: server.apiKey,
      organizationId: '11111111-2222-3333-4444-555555555555',
      maxBufferedBytes: 64 * 1024,
      openTimeoutMs: 3000,
      pingMs: 300,
      codec: 'PCMU',
      callId: '0f8fad5b-d9cb-469f-a165-70867728950e',
      participant: { ani: '5551234', aniName: 'Pat', dnis: '800' },
      sink: { utterance: (u) => utterances.push(u) },
      closeTimeoutMs: 1000,
      ...over,
    });
    sessions.push(s);
    const ended = new Promise<[ForkEndReason, string]>((resolve) => s.once('ended', (reason, detail) => resolve([reason, detail])));
    s.start();
    return { s, ended };
  };

  it('open → stereo audio with positions that match → transcripts to the sink → close/closed', async () => {
    const utterances: TranscriptUtterance[] = [];
    const { s, ended } = session({}, utterances);
    await new Promise((r) => s.once('opened', r));
    const ep = server.sessions[0];
    assert.equal(ep.headers['x-api-key'], server.apiKey);
    assert.equal(ep.headers['audiohook-organization-id'], '11111111-2222-3333-4444-555555555555');
    assert.equal(ep.headers['audiohook-session-id'], s.id);
    const open = ep.open;
    assert.ok(open);
    assert.equal(open.position, 'PT0S');
    assert.deepEqual(open.parameters.media, [{ type: 'audio', format: 'PCMU', channels: ['external', 'internal'], rate: 8000 }]);
    assert.equal(open.parameters.conversationId, '0f8fad5b-d9cb-469f-a165-70867728950e');
    assert.deepEqual((open.parameters.participant as Record<string, unknown>).ani, '5551234');
    const f = feed(s);
    await until('1 s of audio at the endpoint', () => ep.audioBytes >= 16_000);
    ep.sendTranscript('external', '  I want to  cancel my order ', 0.2, 1.5, { sentiment: -2 });
    ep.sendTranscript('internal', 'sorry to hear that', 1.8, 0.9);
    ep.send('event', { entities: [{ type: 'transcript', data: { channel: 'external', isFinal: false, alternatives: [{ confidence: 0.2, interpretations: [{ type: 'display', transcript: 'partial' }] }] } }] });
    await until('two utterances', () => utterances.length === 2);
    f.stop();
    await s.close();
    assert.deepEqual(await ended, ['end', 'closed']);
    assert.deepEqual(utterances, [
      { callId: '0f8fad5b-d9cb-469f-a165-70867728950e', speaker: 'caller', startMs: 200, endMs: 1700, text: 'I want to cancel my order', confidence: 0.87, source: 'fork:ana', sentiment: -2 },
      { callId: '0f8fad5b-d9cb-469f-a165-70867728950e', speaker: 'agent', startMs: 1800, endMs: 2700, text: 'sorry to hear that', confidence: 0.87, source: 'fork:ana' },
    ]);
    // Every message's position is the audio sent before it (stereo: 2 bytes per sample time).
    const later = ep.messages.filter((m) => m.type !== 'open');
    assert.ok(later.some((m) => m.type === 'ping'), ep.messages.map((m) => m.type).join(','));
    assert.equal(later.at(-1)?.type, 'close');
    for (const m of later) {
      const pos = durationMs(m.position);
      assert.ok(pos !== null && Math.abs(pos - m.audioBytesBefore / 2 / 8) <= 1, `${m.type} at ${m.position} after ${m.audioBytesBefore} bytes`);
    }
    assert.deepEqual(
      later.map((m) => m.seq),
      later.map((_, i) => i + 2),
      'seq counts up from open',
    );
    assert.ok(ep.external.every((x) => x === 0x11 || x === 0xff) && ep.external.includes(0x11), 'left channel: the caller');
    assert.ok(ep.internal.every((x) => x === 0x22 || x === 0xff) && ep.internal.includes(0x22), 'right channel: the agent');
    assert.equal(s.stats.partials, 1);
    assert.equal(s.stats.framesDropped, 0);
  });

  it('pause/resume: paused, then resumed with the discarded stretch; positions keep counting it', async () => {
    const { s } = session();
    await new Promise((r) => s.once('opened', r));
    const ep = server.sessions[0];
    const f = feed(s);
    await until('audio', () => ep.audioBytes >= 4000);
    ep.send('pause', {});
    await until('paused', () => ep.messages.some((m) => m.type === 'paused'));
    const bytesAtPause = ep.audioBytes;
    await sleep(600);
    ep.send('resume', {});
    const resumed = await until('resumed', () => ep.messages.find((m) => m.type === 'resumed'));
    assert.ok(ep.audioBytes - bytesAtPause <= 2 * 800 * 2, 'hardly any audio while paused');
    const discarded = durationMs(String(resumed.parameters.discarded)) ?? 0;
    assert.ok(discarded >= 400, `discarded ${String(resumed.parameters.discarded)}`);
    assert.equal(durationMs(String(resumed.parameters.start)), durationMs(resumed.position));
    await until('audio after resume', () => ep.audioBytes > resumed.audioBytesBefore + 4000);
    f.stop();
    await s.close();
    const close = ep.messages.find((m) => m.type === 'close');
    assert.ok(close);
    // Position = audio sent + the paused stretch.
    assert.ok(Math.abs((durationMs(close.position) ?? 0) - close.audioBytesBefore / 16 - discarded) <= 2, `${close.position} vs ${close.audioBytesBefore} bytes + ${discarded} ms`);
  });

  it('the endpoint ends the session (disconnect): close with reason disconnect, closed, ended with its reason', async () => {
    const { s, ended } = session();
    await new Promise((r) => s.once('opened', r));
    const ep = server.sessions[0];
    ep.send('disconnect', { reason: 'completed', info: 'enough audio' });
    assert.deepEqual(await ended, ['server-disconnect', 'completed: enough audio']);
    assert.equal(ep.messages.find((m) => m.type === 'close')?.parameters.reason, 'disconnect');
  });

  it('a flood of transcripts is cut at the rate limit and counted; a failing sink is counted, not fatal', async () => {
    const utterances: TranscriptUtterance[] = [];
    let calls = 0;
    const { s } = session({ maxUtterancesPerS: 10, sink: {
        utterance: (u) => {
          if (++calls % 2 === 1) throw new Error('sink down');
          utterances.push(u);
        },
      },
    });
    await new Promise((r) => s.once('opened', r));
    const problems: string[] = [];
    s.on('problem', (kind) => problems.push(kind));
    const ep = server.sessions[0];
    for (let i = 0; i < 200; i++) ep.sendTranscript('external', `word ${i}`, i, 0.5);
    await until('all 200 handled', () => s.stats.utterances + s.stats.utterancesDropped === 200);
    assert.ok(s.stats.utterances <= 21, `${s.stats.utterances} passed`);
    assert.ok(problems.includes('utterance-flood') && problems.includes('sink-failed'), problems.join(','));
    assert.ok(s.isOpen, 'the fork goes on');
    assert.equal(utterances.length, Math.floor(calls / 2));
  });

  it('a reader that stops reading: frames are dropped and counted, the tap never blocks, close still ends it', async () => {
    server.behaviour = 'slow';
    const { s, ended } = session({ pingMs: 60_000, maxBufferedBytes: 16 * 1024 });
    await new Promise((r) => s.once('opened', r));
    const problems: string[] = [];
    s.on('problem', (kind) => problems.push(kind));
    // 50 times real time, so the kernel's socket buffers fill within seconds.
    const f = feed(s, 8000);
    await until('dropped frames', () => s.stats.framesDropped > 0, 60_000);
    f.stop();
    assert.ok(problems.includes('backpressure'));
    // The endpoint reads again: the backlog arrives, then `discarded` says what it missed, and the
    // position counts the gap.
    const ep = server.sessions[0];
    ep.resumeReading();
    const discarded = await until('discarded', () => ep.messages.find((m) => m.type === 'discarded'), 30_000);
    const gap = durationMs(String(discarded.parameters.discarded)) ?? 0;
    const start = durationMs(String(discarded.parameters.start)) ?? -1;
    assert.ok(gap > 0, JSON.stringify(discarded));
    assert.ok(Math.abs(start - discarded.audioBytesBefore / 16) <= 1, `gap starts at ${start} ms after ${discarded.audioBytesBefore} bytes`);
    assert.ok(Math.abs((durationMs(discarded.position) ?? 0) - start - gap) <= 2, `position ${discarded.position} = start + gap`);
    const t0 = Date.now();
    await s.close();
    assert.ok(Date.now() - t0 < 5000);
    assert.equal((await ended)[0], 'end');
    assert.ok(s.stats.samplesDropped > 0 && s.stats.framesSent > 0, JSON.stringify(s.stats));
  });

  it('garbage from the endpoint is counted; enough of it ends the fork', async () => {
    server.behaviour = 'garbage';
    const { s, ended } = session({ pingMs: 60_000 });
    const f = feed(s);
    const [reason] = await ended;
    f.stop();
    assert.equal(reason, 'misbehaving');
    assert.ok(s.stats.badMessages >= 50);
  });

  it('a dropped connection, a pong that never comes and a wrong key each end the fork with their reason', async () => {
    server.behaviour = 'disconnect';
    server.disconnectAfterMs = 300;
    const a = session();
    const fa = feed(a.s);
    assert.equal((await a.ended)[0], 'disconnected');
    fa.stop();

    server.behaviour = 'slow';
    const b = session({ pingMs: 200 });
    assert.equal((await b.ended)[0], 'pong-timeout');

    server.behaviour = 'good';
    const c = session({ apiKey: 'wrong' });
    assert.deepEqual(await c.ended, ['refused', 'HTTP 401 on upgrade']);

    const d = session({ addressAllowed: () => false });
    assert.equal((await d.ended)[0], 'address-refused');
  });

  it('wss with a client certificate (mTLS): the endpoint sees the box\'s certificate; without one the fork is refused', async () => {
    const pki = makeTestPki('edge-01.site-1');
    const tlsServer = await TestAudioHookServer.start('tls-key-0123', { cert: pki.read('serverCert'), key: pki.read('serverKey'), ca: pki.read('ca') });
    try {
      const base = { url: tlsServer.url, apiKey: tlsServer.apiKey };
      const good = session({ ...base, tls: { ca: pki.read('ca'), cert: pki.read('clientCert'), key: pki.read('clientKey') } });
      await new Promise((r) => good.s.once('opened', r));
      assert.equal(tlsServer.sessions[0].clientCn, 'edge-01.site-1');
      await good.s.close();
      assert.equal((await good.ended)[0], 'end');
      const noCert = session({ ...base, tls: { ca: pki.read('ca') } });
      assert.equal((await noCert.ended)[0], 'refused');
      const wrongCa = session({ ...base, tls: { cert: pki.read('clientCert'), key: pki.read('clientKey') } });
      const [reason, detail] = await wrongCa.ended;
      assert.equal(reason, 'refused');
      assert.match(detail, /certificate/i);
      assert.equal(tlsServer.sessions.length, 1);
    } finally {
      await tlsServer.stop();
      pki.remove();
    }
  });
});
