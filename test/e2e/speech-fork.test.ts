import assert from 'node:assert/strict';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { durationMs } from '../../media/speech/audiohook/protocol';
import { TestAudioHookServer, type AudioHookBehaviour, type EndpointSession } from '../../media/test/helpers/audiohook-server';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { checkHears, TONES, ToneMeter, type ToneReport } from './tones';
import { WeriftAgent } from './werift-agent';

interface CallEvent {
  type: string;
  data: Record<string, unknown>;
}

const toneReport = (ulaw: number[]): ToneReport => {
  const meter = new ToneMeter([TONES.agent, TONES.caller]);
  meter.push(Uint8Array.from(ulaw), 'PCMU');
  return meter.report();
};

const metric = async (daemon: DaemonHandle, line: RegExp): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
  const m = line.exec(text);
  return m ? Number(m[1]) : 0;
};

describe('speech fork: a bridged call streamed to an on-prem AudioHook endpoint (issue 18)', function () {
  let server: TestAudioHookServer;
  let daemon: DaemonHandle;
  const config = (url: string, apiKey: string): Record<string, unknown> => ({
    calls: { queue: 'support' },
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
    agents: [{ name: 'alice', password: 'alice-password' }],
    // Recording and fork tap the same joint at once.
    recording: { record: 'all', retentionDays: 30 },
    speech: { fork: { allow: ['127.0.0.0/8'], endpoints: { analytics: { url, apiKey, pingS: 1 } }, queues: { support: 'analytics' } } },
  });

  before(async () => {
    server = await TestAudioHookServer.start();
    daemon = await startDaemon({ config: config(server.url, server.apiKey), env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
  });
  after(async () => {
    await daemon?.stop();
    await server?.stop();
  });

  /** A bridged call: the caller sends 1 kHz, the agent 700 Hz; resolves once the endpoint has a session. */
  const bridgedCall = async (from: string): Promise<{ uac: TestUac; alice: WeriftAgent; callId: string; ep: EndpointSession }> => {
    const before = server.sessions.length;
    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
    alice.toneHz = TONES.agent;
    const uac = await TestUac.create({ codec: 'PCMU', toneHz: TONES.caller });
    alice.available();
    assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from }), 200);
    const c = await alice.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected');
    const ep = await eventually(async () => server.sessions.length > before && server.sessions[before].open !== undefined && server.sessions[before], 10_000);
    return { uac, alice, callId: c.callId, ep };
  };

  /** Caller and agent hear each other over `ms` (the call is untouched by the fork). */
  const hearEachOther = async (uac: TestUac, alice: WeriftAgent, callId: string, ms: number): Promise<void> => {
    uac.resetMeasurement();
    const from = alice.receivedCount(callId);
    await sleep(ms);
    const problems = [checkHears('caller', uac.tones.report(), [TONES.agent]), checkHears('agent', alice.hears(callId, from), [TONES.caller])].filter(Boolean);
    assert.deepEqual(problems, []);
  };

  it('open → both sides as stereo PCMU with positions → transcript events back → close with the call', async () => {
    const { uac, alice, callId, ep } = await bridgedCall('5559001');
    try {
      const open = ep.open;
      assert.ok(open);
      assert.equal(ep.headers['x-api-key'], server.apiKey);
      assert.deepEqual(open.parameters.media, [{ type: 'audio', format: 'PCMU', channels: ['external', 'internal'], rate: 8000 }]);
      assert.equal((open.parameters.participant as { ani: string }).ani, '5559001');
      await hearEachOther(uac, alice, callId, 2500);
      // The endpoint hears the customer left and the agent right.
      assert.ok(ep.audioBytes >= 2 * 8000, `${ep.audioBytes} bytes of audio`);
      assert.deepEqual([checkHears('external channel', toneReport(ep.external), [TONES.caller]), checkHears('internal channel', toneReport(ep.internal), [TONES.agent])].filter(Boolean), []);
      ep.sendTranscript('external', 'i want to cancel my subscription', 0.5, 1.6, { sentiment: -1 });
      ep.sendTranscript('internal', 'let me help you with that', 2.2, 1.1);
      await eventually(async () => (await metric(daemon, /^ccedge_speech_fork_utterances_total\{endpoint="analytics"\} (\d+)/m)) === 2, 5000);
      assert.equal(await uac.hangup(), 200);
    } finally {
      uac.close();
      await alice.close();
    }
    const close = await eventually(async () => ep.messages.find((m) => m.type === 'close'), 5000);
    assert.equal(close.parameters.reason, 'end');
    // Every message after open carries the position of the audio sent before it.
    for (const m of ep.messages.filter((x) => x.type !== 'open')) {
      const pos = durationMs(m.position);
      assert.ok(pos !== null && Math.abs(pos - m.audioBytesBefore / 16) <= 1, `${m.type} at ${m.position} after ${m.audioBytesBefore} bytes`);
    }
    assert.ok(ep.messages.some((m) => m.type === 'ping'));
    await eventually(async () => ep.closedSocket, 5000);
    const { body } = await daemon.api<{ events: CallEvent[] }>(`/api/v1/calls/${callId}`);
    assert.ok(body.events.some((e) => e.type === 'speech.fork-started' && e.data.endpoint === 'analytics'), JSON.stringify(body.events.map((e) => e.type)));
    assert.equal(await metric(daemon, /^ccedge_speech_fork_sessions_total\{endpoint="analytics",outcome="end"\} (\d+)/m), 1);
    // The recording ran beside the fork: both channels of the same call.
    const rec = await eventually(async () => {
      const r = (await daemon.api<{ recordings: Array<{ callId: string; state: string; durationMs: number }> }>('/api/v1/recordings')).body.recordings;
      return r.find((x) => x.callId === callId && x.state === 'final');
    }, 15_000);
    assert.ok(rec.durationMs > 2000, `recording of ${rec.durationMs} ms`);
    // No utterance text in the daemon's log.
    assert.equal(JSON.stringify(daemon.logs).includes('cancel my subscription'), false);
  });

  for (const behaviour of ['garbage', 'slow', 'disconnect'] as const satisfies readonly AudioHookBehaviour[]) {
    it(`a hostile endpoint (${behaviour}) never touches the call: both still hear each other and it ends normally`, async () => {
      server.behaviour = behaviour;
      server.disconnectAfterMs = 800;
      const { uac, alice, callId } = await bridgedCall(`555910${behaviour.length}`);
      try {
        await hearEachOther(uac, alice, callId, 4000);
        // The fork gives up on the endpoint (misbehaving, pong timeout, dropped) while the call goes on.
        await eventually(async () => {
          const { body } = await daemon.api<{ events: CallEvent[] }>(`/api/v1/calls/${callId}`);
          return body.events.find((e) => e.type === 'speech.fork-ended');
        }, 10_000);
        await hearEachOther(uac, alice, callId, 1500);
        assert.equal(await uac.hangup(), 200);
      } finally {
        uac.close();
        await alice.close();
        server.behaviour = 'good';
      }
      // The call record is written as the call closes: wait for its end cause.
      const body = await eventually(async () => {
        const r = (await daemon.api<{ call: { endCause: string | null }; events: CallEvent[] }>(`/api/v1/calls/${callId}`)).body;
        return r.call.endCause !== null && r;
      }, 10_000);
      assert.equal(body.call.endCause, 'caller-hangup');
      const forkEnd = body.events.find((e) => e.type === 'speech.fork-ended');
      const expected = { garbage: 'misbehaving', slow: 'pong-timeout', disconnect: 'disconnected' }[behaviour];
      assert.equal(forkEnd?.data.reason, expected, JSON.stringify(body.events.map((e) => [e.type, e.data.reason])));
      const health = await fetch(`http://127.0.0.1:${daemon.httpPort}/healthz`);
      assert.equal(health.status, 200);
    });
  }

  it('an endpoint outside speech.fork.allow is refused at config load with a clear error', async () => {
    await assert.rejects(
      startDaemon({ config: config('wss://203.0.113.9/audiohook', 'k'), env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } }),
      (err: Error) => /speech\.fork\.endpoints\.analytics\.url.*203\.0\.113\.9 is outside speech\.fork\.allow/s.test(err.message) || assert.fail(err.message),
    );
    await assert.rejects(
      startDaemon({ config: config('wss://speech.example.com/audiohook', 'k'), env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } }),
      (err: Error) => /is a name: use a literal on-site address/.test(err.message) || assert.fail(err.message),
    );
  });
});
