import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Vault } from '../../../vault';
import { configSchema } from '../../config/schema';
import { Db } from '../../store/db';
import { aggregatesForEvent, CallTranscript, sentimentOf } from '../../transcripts/call-transcript';
import { transcriptsConfigSchema } from '../../transcripts/config';
import { KeywordMatcher } from '../../transcripts/keywords';
import { TranscriptService, type TranscribedCall } from '../../transcripts/transcript-service';

const log = pino({ level: 'silent' });

function utter(callId: string, speaker: 'caller' | 'agent', startMs: number, endMs: number, text: string) {
  return { callId, speaker, startMs, endMs, text, confidence: 0.7, source: 'builtin:pocketsphinx' };
}

describe('transcripts: keywords and the per-call sink', () => {
  it('keywords match whole words and phrases, case and punctuation aside', () => {
    const m = new KeywordMatcher(['cancel', 'speak to a manager', 'Complaint']);
    assert.deepEqual(m.match('I want to CANCEL, now!'), ['cancel']);
    assert.deepEqual(m.match('the cancellation fee'), []);
    assert.deepEqual(m.match('let me speak to a manager about this complaint'), ['speak to a manager', 'complaint']);
    assert.deepEqual(m.match('speak to the manager'), []);
  });

  it('scores each utterance, alerts each keyword once with no text, bounds what it keeps', () => {
    const alerts: unknown[] = [];
    const pushed: string[] = [];
    const t = new CallTranscript('c1', { keywords: new KeywordMatcher(['cancel']), maxUtterances: 3, maxUtteranceChars: 30, quality: 'keyword-grade' }, {
      onKeyword: (k) => alerts.push(k),
      onUtterance: (u) => pushed.push(u.text),
    });
    t.utterance(utter('c1', 'caller', 0, 2000, 'this is terrible I want to cancel'));
    t.utterance(utter('other-call', 'caller', 0, 100, 'not mine'));
    t.utterance(utter('c1', 'agent', 2500, 3500, 'great thank you'));
    t.utterance(utter('c1', 'caller', 4000, 5000, 'cancel cancel'));
    t.utterance(utter('c1', 'caller', 6000, 7000, '   '));
    t.utterance(utter('c1', 'agent', 8000, 9000, 'one more that does not fit'));
    assert.deepEqual(alerts, [{ keyword: 'cancel', speaker: 'caller', atMs: 0 }]);
    assert.deepEqual(pushed, ['this is terrible I want to canc', 'great thank you', 'cancel cancel'].map((s) => s.slice(0, 30)));
    assert.ok(sentimentOf('this is terrible') < 0 && sentimentOf('great thank you') > 0);
    const doc = t.close(new Date('2025-01-01T00:00:00Z'));
    assert.equal(doc.utterances.length, 3);
    assert.equal(doc.dropped, 1);
    assert.deepEqual(doc.sources, ['builtin:pocketsphinx']);
    assert.equal(doc.aggregates.talkRatio, 0.75); // caller 3000 ms of 4000
    assert.ok(doc.aggregates.callerSentiment !== null && doc.aggregates.callerSentiment < 0);
    assert.ok(doc.aggregates.agentSentiment !== null && doc.aggregates.agentSentiment > 0);
    t.utterance(utter('c1', 'caller', 9000, 9500, 'after the end'));
    assert.equal(t.size, 3);
    // Only the aggregates the config names go on the event, and never any text.
    assert.deepEqual(aggregatesForEvent(doc.aggregates, []), {});
    assert.deepEqual(Object.keys(aggregatesForEvent(doc.aggregates, ['talkRatio'])), ['talkRatio']);
    assert.deepEqual(Object.keys(aggregatesForEvent(doc.aggregates, ['sentiment'])).sort(), ['agentSentiment', 'callerSentiment', 'sentimentScore']);
  });

  it('config refuses keywords a recogniser cannot produce', () => {
    assert.equal(transcriptsConfigSchema.safeParse({ keywords: ['cancel', 'speak to a manager'] }).success, true);
    assert.equal(transcriptsConfigSchema.safeParse({ keywords: ['<script>'] }).success, false);
    assert.equal(transcriptsConfigSchema.safeParse({ aggregates: ['text'] }).success, false);
    assert.deepEqual(transcriptsConfigSchema.parse({ keywords: ['Cancel '] }).keywords, ['cancel']);
  });
});

class FakeCall extends EventEmitter implements TranscribedCall {
  closed = false;
  readonly codec = 'PCMU' as const;
  readonly log = log;
  readonly events: Array<{ type: string; data: Record<string, unknown> }> = [];
  constructor(readonly id: string) {
    super();
  }
  record(type: string, data: Record<string, unknown> = {}): void {
    if (!this.closed) this.events.push({ type, data });
  }
  end(): void {
    this.closed = true;
    this.emit('closed', 'caller-hangup');
  }
}

describe('transcripts: the service stores at call end', () => {
  let dir: string;
  let db: Db;
  let vault: Vault;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ccedge-transcripts-'));
    db = await Db.open(path.join(dir, 'ccedge.db'));
    vault = Vault.open({ dataDir: dir, db, log });
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pushes live to the agent, raises keyword events, stores encrypted with the recording policy, event carries numbers only', async () => {
    const cfg = transcriptsConfigSchema.parse({ queues: ['support'], keywords: ['cancel'], aggregates: ['talkRatio'] });
    const recording = configSchema.shape.recording.parse({});
    recording.queues.support = { record: 'all', retentionDays: 7 };
    const pushes: Array<{ agent: string; text: string; quality: string | null }> = [];
    const after: Array<{ callId: string; type: string; data: Record<string, unknown> }> = [];
    const svc = new TranscriptService(vault, () => cfg, () => recording, {
      push: (agent, _callId, u) => pushes.push({ agent, text: u.text, quality: u.quality }),
      recordAfterClose: async (callId, type, data) => {
        after.push({ callId, type, data });
      },
    }, log);
    assert.equal(svc.wantsBuiltin('support', null), true);
    assert.equal(svc.wantsBuiltin('sales', 'billing'), false);
    const call = new FakeCall('call-1');
    const sink = svc.open(call, { queue: 'support', agent: 'alice', quality: 'keyword-grade' });
    assert.equal(svc.open(call, { agent: 'bob' }), sink, 'one transcript per call; a transfer moves the push');
    sink.utterance(utter('call-1', 'caller', 0, 3000, 'i want to cancel my subscription'));
    sink.utterance(utter('call-1', 'agent', 3000, 4000, 'sorry to hear that'));
    assert.deepEqual(pushes.map((p) => p.agent), ['bob', 'bob']);
    assert.equal(pushes[0].quality, 'keyword-grade');
    assert.deepEqual(call.events, [{ type: 'transcript.keyword', data: { keyword: 'cancel', speaker: 'caller', atMs: 0 } }]);
    call.end();
    await svc.drain();
    assert.equal(svc.activeCalls, 0);
    assert.equal(after.length, 1);
    assert.equal(after[0].type, 'transcript.stored');
    const { transcriptId, ...rest } = after[0].data;
    assert.deepEqual(rest, { recordingId: null, utterances: 2, talkRatio: 0.75 });
    const info = await vault.transcripts.require(transcriptId as string);
    assert.equal(info.queue, 'support');
    assert.equal(info.agent, 'bob');
    assert.equal(Date.parse(info.retentionUntil as string) - Date.parse(info.createdAt), 7 * 86_400_000);
    const read = await vault.transcripts.read('call-1', { actor: 'carol', reason: 'complaint' });
    assert.equal((read.transcript as { utterances: Array<{ text: string }> }).utterances[0].text, 'i want to cancel my subscription');
  });

  it('stores nothing for a call where nothing was recognised', async () => {
    const svc = new TranscriptService(vault, () => transcriptsConfigSchema.parse({}), () => configSchema.shape.recording.parse({}), { push: () => undefined, recordAfterClose: async () => undefined }, log);
    const call = new FakeCall('quiet');
    svc.open(call, { queue: 'support' });
    call.end();
    await svc.drain();
    assert.deepEqual(await vault.transcripts.list(), []);
  });
});
