import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import sqlite3 from 'sqlite3';
import type { CallEvent } from '../../gateway/store/call-store';
import { speak, ulawFrames } from '../../media/test/helpers/speech-corpus';
import { inboundAudio, launchChromium, openAgent, SHOTS, type AgentPage } from './browser';
import { eventually, ROOT, runCli, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';
import { TestAudioHookServer } from '../../media/test/helpers/audiohook-server';
import type { ServerMessage } from '../../gateway/agent-ui/protocol';

const SUPERVISOR = 'supervisor-token-0123456789';
const COMPLIANCE = 'compliance-token-0123456789';
/** What the caller says (flite's awb voice, through G.711 like a trunk). */
const SAID = 'hello i would like to cancel my subscription';
/** A word of it that must never be on disk in the clear. */
const SECRET_WORD = 'subscription';

/** The data of the outbox rows of one event type, as they would leave (the policy applied). */
async function outboxRows(dbFile: string, type: string): Promise<Array<Record<string, unknown>>> {
  const d = await new Promise<sqlite3.Database>((resolve, reject) => {
    const h = new sqlite3.Database(dbFile, sqlite3.OPEN_READONLY, (err) => (err ? reject(err) : resolve(h)));
  });
  try {
    const rows = await new Promise<Array<{ payload: string }>>((resolve, reject) => d.all<{ payload: string }>('SELECT payload FROM sync_outbox WHERE type = ? ORDER BY seq', [type], (err, r) => (err ? reject(err) : resolve(r))));
    return rows.map((r) => {
      const p = JSON.parse(r.payload) as Record<string, unknown>;
      const data = (p.data ?? p) as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(data)) if (!['id', 'seq', 'ts', 'bootId', 'type'].includes(k)) out[k] = v;
      return out;
    });
  } finally {
    await new Promise<void>((resolve) => d.close(() => resolve()));
  }
}

/** Every file under `dir` whose bytes contain `word` (the database, its WAL, recordings, keys…). */
function filesContaining(dir: string, word: string): string[] {
  const hits: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const f = path.join(dir, e.name);
    if (e.isDirectory()) hits.push(...filesContaining(f, word));
    else if (e.isFile() && statSync(f).size < 256 * 1024 * 1024 && readFileSync(f).includes(word)) hits.push(f);
  }
  return hits;
}

describe('live transcripts from the on-site engine', function () {
  let daemon: DaemonHandle;
  let browser: Browser | undefined;
  before(async () => {
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support' },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
        queues: [{ name: 'support', ringTimeoutS: 30, wrapUpS: 0 }],
        agents: [{ name: 'alice', password: 'alice-password' }],
        recording: { record: 'all', retentionDays: 30 },
        http: {
          tokens: [
            { name: 'sam', token: SUPERVISOR, role: 'supervisor' },
            { name: 'carla', token: COMPLIANCE, role: 'compliance' },
          ],
        },
        speech: { transcripts: { queues: ['support'], keywords: ['cancel', 'complaint'] } },
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
    browser = await launchChromium({ toneHz: 600 });
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  const get = (p: string, token: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`http://127.0.0.1:${daemon.httpPort}${p}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

  it("a bridged caller's words reach the agent's page as they are recognised, are stored encrypted, and only compliance reads them, audited", async () => {
    const clip = await speak(SAID, 'awb');
    const alice: AgentPage = await openAgent(browser as Browser, daemon.httpPort, 'alice', 'alice-password');
    const uac = await TestUac.create({ idle: 'silence' });
    let callId: string;
    try {
      await alice.page.getByRole('button', { name: 'Available' }).click();
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: '5558001' }), 200);
      await alice.page.getByRole('button', { name: 'Answer' }).click();
      await eventually(async () => (await inboundAudio(alice.page)).packetsReceived > 10, 15_000);
      await uac.say(ulawFrames(clip));
      // The caller's words on the desk, labelled with what the engine's text is worth.
      const line = alice.page.locator('#transcript-lines li.speaker-caller').first();
      await line.waitFor({ state: 'visible', timeout: 30_000 });
      const shown = ((await alice.page.locator('#transcript-lines').textContent()) ?? '').toLowerCase();
      const heard = SAID.split(' ').filter((w) => shown.includes(w));
      assert.ok(heard.length >= 4, `the page shows the caller's words: "${shown}"`);
      assert.match((await alice.page.locator('#transcript-quality').textContent()) ?? '', /keyword-grade/);
      await alice.page.locator('#transcript-panel').scrollIntoViewIfNeeded();
      await alice.shot('transcript');
      const shots = path.join(ROOT, 'docs', 'screenshots');
      mkdirSync(shots, { recursive: true });
      copyFileSync(path.join(SHOTS, 'transcript.png'), path.join(shots, 'transcript.png'));
      assert.equal(await uac.hangup(), 200);
      callId = (await daemon.api<{ calls: Array<{ id: string }> }>('/api/v1/calls?limit=1')).body.calls[0].id;
    } finally {
      uac.close();
      await alice.context.close();
    }

    // At call end: stored in the vault beside the recording; the event carries ids and a count only.
    const events = await eventually(async () => {
      const ev = (await daemon.api<{ events: CallEvent[] }>(`/api/v1/calls/${callId}`)).body.events;
      return ev.some((e) => e.type === 'transcript.stored') && ev;
    }, 30_000);
    const stored = events.find((e) => e.type === 'transcript.stored')?.data as { transcriptId: string; recordingId: string; utterances: number };
    assert.ok(stored.utterances >= 1);
    assert.deepEqual(Object.keys(stored).sort(), ['recordingId', 'transcriptId', 'utterances']);
    const keyword = events.find((e) => e.type === 'transcript.keyword');
    assert.deepEqual(keyword?.data, { keyword: 'cancel', speaker: 'caller', atMs: keyword?.data.atMs }, 'the keyword alert names the keyword, never the text');
    await daemon.stop();
    // No plaintext on disk: not in the database (WAL included), not beside the recording.
    assert.deepEqual(filesContaining(daemon.dataDir, SECRET_WORD), []);
    const restarted = await startDaemon({
      dataDir: daemon.dataDir,
      config: {
        calls: { queue: 'support' },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
        queues: [{ name: 'support' }],
        agents: [{ name: 'alice', password: 'alice-password' }],
        http: { tokens: [{ name: 'sam', token: SUPERVISOR, role: 'supervisor' }, { name: 'carla', token: COMPLIANCE, role: 'compliance' }] },
      },
    });
    daemon = restarted;

    const url = `/api/v1/recordings/${stored.recordingId}/transcript`;
    assert.equal((await get(url, SUPERVISOR, { 'x-ccedge-reason': 'curious' })).status, 403);
    assert.equal((await get(url, daemon.adminToken, { 'x-ccedge-reason': 'curious' })).status, 403);
    assert.equal((await get(url, COMPLIANCE)).status, 400, 'a reason is required');
    const res = await get(url, COMPLIANCE, { 'x-ccedge-reason': 'complaint 42' });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: string; callId: string; quality: string; transcript: { utterances: Array<{ speaker: string; text: string; sentiment: number }> } };
    assert.equal(body.id, stored.transcriptId);
    assert.equal(body.callId, callId);
    assert.match(body.quality, /keyword-grade/);
    assert.ok(body.transcript.utterances.some((u) => u.speaker === 'caller' && u.text.includes('cancel')), JSON.stringify(body.transcript.utterances));
    const cli = await runCli(['recordings', 'transcript', callId, '--reason', 'complaint 42', '--actor', 'carla-cli'], { CCEDGE_DATA_DIR: daemon.dataDir });
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /caller: .*cancel/);

    // Every read and refusal is in the hash-chained audit log, and verify covers the transcript.
    const audit = await runCli(['recordings', 'audit', stored.transcriptId, '--json'], { CCEDGE_DATA_DIR: daemon.dataDir });
    const entries = JSON.parse(audit.stdout) as Array<{ actor: string; action: string; reason: string | null }>;
    assert.deepEqual(entries.map((e) => [e.action, e.actor]), [['transcript-stored', 'system'], ['transcript-read', 'carla'], ['transcript-read', 'carla-cli']]);
    assert.equal(entries[1].reason, 'complaint 42');
    const denied = await runCli(['recordings', 'audit', stored.recordingId, '--json'], { CCEDGE_DATA_DIR: daemon.dataDir });
    assert.deepEqual((JSON.parse(denied.stdout) as Array<{ action: string; actor: string }>).filter((e) => e.action === 'access-denied').map((e) => e.actor).sort(), ['admin', 'sam']);
    const verify = await runCli(['recordings', 'verify'], { CCEDGE_DATA_DIR: daemon.dataDir });
    assert.equal(verify.code, 0, verify.stderr);
  });
});

describe('transcripts from an on-prem AudioHook endpoint (speech.fork)', function () {
  let server: TestAudioHookServer;
  let daemon: DaemonHandle;
  before(async () => {
    server = await TestAudioHookServer.start();
    daemon = await startDaemon({
      config: {
        calls: { queue: 'support' },
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
        queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
        agents: [{ name: 'alice', password: 'alice-password' }],
        recording: { record: 'all', retentionDays: 30 },
        http: { tokens: [{ name: 'carla', token: COMPLIANCE, role: 'compliance' }] },
        // No built-in transcripts here: the endpoint's transcript events alone make the transcript.
        speech: {
          fork: { allow: ['127.0.0.0/8'], endpoints: { analytics: { url: server.url, apiKey: server.apiKey } }, queues: { support: 'analytics' } },
          transcripts: { keywords: ['complaint'], aggregates: ['sentiment', 'talkRatio'] },
        },
        // The site lets the talk ratio leave, not the sentiment.
        sync: { policy: { events: { 'transcript.stored': { talkRatio: 'plain' } } } },
      },
      env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
  });
  after(async () => {
    await daemon?.stop();
    await server?.stop();
  });

  it("the endpoint's utterances reach the agent's desk, raise keyword alerts and are stored with the call", async () => {
    const alice = await WeriftAgent.login(daemon.httpPort, 'alice', 'alice-password');
    const uac = await TestUac.create({ codec: 'PCMU' });
    let callId: string;
    try {
      alice.available();
      assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: '5558002' }), 200);
      callId = (await alice.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected')).callId;
      const ep = await eventually(async () => server.sessions[0]?.open !== undefined && server.sessions[0], 10_000);
      ep.sendTranscript('external', 'i have a complaint about my last bill', 0.5, 2.5, { sentiment: -2 });
      ep.sendTranscript('internal', 'i am sorry let me look at that', 3.2, 1.5);
      const first = await alice.waitFor<Extract<ServerMessage, { type: 'transcript' }>>((m) => m.type === 'transcript');
      assert.deepEqual([first.callId, first.speaker, first.text, first.sentiment], [callId, 'caller', 'i have a complaint about my last bill', -2]);
      const second = await alice.waitFor<Extract<ServerMessage, { type: 'transcript' }>>((m) => m.type === 'transcript' && m.speaker === 'agent');
      assert.equal(second.text, 'i am sorry let me look at that');
      assert.ok(second.sentiment < 0, 'scored on the box when the endpoint gives no score ("sorry")');
      assert.equal(await uac.hangup(), 200);
    } finally {
      uac.close();
      await alice.close();
    }
    const events = await eventually(async () => {
      const ev = (await daemon.api<{ events: CallEvent[] }>(`/api/v1/calls/${callId}`)).body.events;
      return ev.some((e) => e.type === 'transcript.stored') && ev;
    }, 15_000);
    assert.deepEqual(events.find((e) => e.type === 'transcript.keyword')?.data, { keyword: 'complaint', speaker: 'caller', atMs: 500 });
    const stored = events.find((e) => e.type === 'transcript.stored')?.data as Record<string, unknown>;
    assert.equal(stored.utterances, 2);
    assert.equal(typeof stored.sentimentScore, 'number', 'the aggregates the config names are on the site record');
    assert.equal(stored.talkRatio, 0.625); // caller 2.5 s of 4 s
    // What the cloud would get: the outbox rows (after the policy) carry the talk ratio, never the sentiment or text.
    const rows = await outboxRows(path.join(daemon.dataDir, 'ccedge.db'), 'transcript.stored');
    assert.equal(rows.length, 1);
    const { transcriptId, recordingId, ...rest } = rows[0];
    // This call is short: under load its recording may start after the transcript was stored (then null).
    assert.ok(typeof transcriptId === 'string' && (typeof recordingId === 'string' || recordingId === null));
    assert.deepEqual(rest, { callId, utterances: 2, talkRatio: 0.625 });
    const kw = await outboxRows(path.join(daemon.dataDir, 'ccedge.db'), 'transcript.keyword');
    assert.deepEqual(kw, [{ callId, keyword: 'complaint', speaker: 'caller', atMs: 500 }]);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    assert.match(metrics, /^ccedge_transcripts_total\{outcome="stored"\} 1$/m);
    assert.match(metrics, /^ccedge_transcript_keywords_total\{keyword="complaint"\} 1$/m);
    assert.match(metrics, /^ccedge_transcript_utterances_total\{speaker="caller"\} 1$/m);
    const res = await fetch(`http://127.0.0.1:${daemon.httpPort}/api/v1/transcripts/${callId}`, { headers: { authorization: `Bearer ${COMPLIANCE}`, 'x-ccedge-reason': 'complaint review' } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { source: string; transcript: { utterances: Array<{ speaker: string; text: string; source: string }> } };
    assert.equal(body.source, 'fork:analytics');
    assert.deepEqual(body.transcript.utterances.map((u) => [u.speaker, u.source]), [['caller', 'fork:analytics'], ['agent', 'fork:analytics']]);
  });
});
