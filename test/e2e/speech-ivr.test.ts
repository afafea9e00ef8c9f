import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CallEvent, CallRecord } from '../../gateway/store/call-store';
import { speak, ulawFrames, type CorpusVoice } from '../../media/test/helpers/speech-corpus';
import { eventually, runCli, startDaemon, type DaemonHandle } from './harness';
import YAML from 'yaml';
import { TestUac } from './test-uac';

/**
 * "Say why you are calling": a `type: speech` IVR menu with on-site recognition. The callers are
 * node UACs that speak flite (and espeak-ng) voices through G.711 μ-law RTP, as a trunk carries
 * them; the daemon recognises the answer with pocketsphinx against a grammar built from
 * `intents[].examples`, classifies it and queues the call in the intent's queue. A caller who says
 * nothing is asked again and then offered the keys.
 *
 * Few calls on purpose (each recognition is a pocketsphinx process; the CI box has 2 cores).
 */
const INTENTS = [
  { name: 'billing_inquiry', queue: 'billing', examples: ['my bill is wrong', 'pay my bill', 'question about my invoice', 'billing'] },
  { name: 'technical_support', queue: 'tech', examples: ['my internet is down', 'the internet does not work', 'technical problem', 'no connection'] },
  { name: 'sales', queue: 'sales', examples: ['buy a new phone', 'new contract', 'upgrade my contract'] },
  { name: 'general', queue: 'general' },
];
const QUEUE_OF = new Map(INTENTS.map((i) => [i.name, i.queue]));

const CONFIG = {
  site: { id: 'e2e', deviceId: 'edge-speech-ivr' },
  calls: { maxDurationS: 60, queue: 'general' },
  trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMU'] }],
  queues: [{ name: 'billing' }, { name: 'tech' }, { name: 'sales' }, { name: 'general' }],
  intents: INTENTS,
  routing: { defaultIntent: 'general' },
  speech: { engine: { maxConcurrent: 2 } },
  ivr: {
    entry: 'main',
    menus: {
      main: {
        type: 'speech',
        prompt: 'welcome',
        invalidPrompt: 'invalid',
        noInputS: 3,
        silenceMs: 700,
        maxSpeechS: 6,
        timeoutS: 3,
        retries: 0,
        choices: { '1': { intent: 'billing_inquiry' }, '2': { intent: 'technical_support' }, '3': { intent: 'sales' } },
        onFail: { intent: 'general' },
      },
    },
  },
};

interface Utterance {
  text: string;
  voice: CorpusVoice;
  intent: string;
}

/** The examples' own phrases inside a sentence: what the grammar is for. */
const CLEAR: Utterance[] = [
  { text: "hello i'd like to pay my bill please", voice: 'kal', intent: 'billing_inquiry' },
  { text: 'yes my internet is down', voice: 'slt', intent: 'technical_support' },
  { text: 'i want to buy a new phone', voice: 'awb', intent: 'sales' },
];

/** Worded differently from every example: partial phrases and synonyms. */
const REWORDED: Utterance[] = [
  { text: 'there is a problem with my invoice', voice: 'rms', intent: 'billing_inquiry' },
  { text: 'my internet connection does not work', voice: 'kal16', intent: 'technical_support' },
  { text: 'i would like a new phone contract', voice: 'slt', intent: 'sales' },
];

async function eventsOf(d: DaemonHandle, callId: string): Promise<CallEvent[]> {
  const { body } = await d.api<{ events: CallEvent[] }>(`/api/v1/calls/${callId}`);
  return body.events;
}

async function callIds(d: DaemonHandle): Promise<Set<string>> {
  const r = await d.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=1000');
  return new Set(r.body.calls.map((c) => c.id));
}

interface Outcome {
  callId: string;
  queued: Record<string, unknown>;
  turns: Array<Record<string, unknown>>;
  done: Record<string, unknown>;
}

/**
 * One caller: waits for the prompt to finish, then `act` (speak, stay silent, press keys), and
 * hangs up once the call is queued. Returns what the call's record says.
 */
async function caller(d: DaemonHandle, act: (uac: TestUac) => Promise<void>): Promise<Outcome> {
  const before = await callIds(d);
  const uac = await TestUac.create({ idle: 'silence' });
  try {
    assert.equal(await uac.call(`127.0.0.1:${d.sipPort}`), 200);
    await act(uac);
    const callId = await eventually(async () => {
      const r = await d.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=1000');
      return r.body.calls.find((c) => !before.has(c.id))?.id;
    });
    const events = await eventually(async () => {
      const ev = await eventsOf(d, callId);
      return ev.some((e) => e.type === 'call.queued') ? ev : undefined;
    }, 40_000);
    await uac.hangup();
    const queued = events.find((e) => e.type === 'call.queued')?.data ?? {};
    const done = events.find((e) => e.type === 'call.ivr-done')?.data ?? {};
    return { callId, queued, done, turns: events.filter((e) => e.type === 'call.ivr-speech').map((e) => e.data) };
  } finally {
    uac.close();
  }
}

async function says(d: DaemonHandle, u: Utterance): Promise<Outcome> {
  const clip = await speak(u.text, u.voice);
  return caller(d, async (uac) => {
    await uac.waitForQuiet(400, 15_000);
    await uac.say(ulawFrames(clip));
  });
}

/** Prints one line per call and returns how many went to the right queue. */
function score(label: string, set: Utterance[], outcomes: Outcome[]): number {
  let right = 0;
  outcomes.forEach((o, i) => {
    const u = set[i];
    const ok = o.queued.queue === QUEUE_OF.get(u.intent);
    if (ok) right++;
    const turns = o.turns
      .map((t) => `"${String(t.text ?? '')}" ${String(t.result)} ${String(t.intent ?? '-')} ${typeof t.confidence === 'number' ? t.confidence.toFixed(2) : '-'} ${String(t.how ?? '')}`.trim())
      .join(' | ');
    console.log(`      ${ok ? 'ok  ' : 'MISS'} ${u.voice.padEnd(8)} "${u.text}" → ${turns} → queue ${String(o.queued.queue)} (${String(o.queued.source)})`);
  });
  console.log(`      ${label}: ${right}/${set.length} routed to the right queue (${Math.round((100 * right) / set.length)} %)`);
  return right;
}

/** A call the speech menu decided: queued by source speech, in its intent's queue, with the words kept on site. */
function assertSpeechDecided(o: Outcome): void {
  assert.equal(o.queued.source, 'speech', JSON.stringify(o));
  assert.equal(o.queued.queue, QUEUE_OF.get(String(o.queued.intent)));
  assert.equal(typeof o.queued.confidence, 'number');
  assert.equal(typeof o.queued.text, 'string');
  assert.equal(o.done.source, 'speech');
  assert.equal(o.done.intent, o.queued.intent);
}

describe('speech IVR: config', function () {
  it('an example word the recogniser does not know refuses the config at start, naming the word', async () => {
    const intents = INTENTS.map((i) => (i.name === 'sales' ? { ...i, examples: [...(i.examples ?? []), 'buy a zorblaxphone'] } : i));
    const dataDir = mkdtempSync(path.join(tmpdir(), 'ccedge-e2e-speech-'));
    try {
      await assert.rejects(startDaemon({ config: { ...CONFIG, intents }, dataDir }), /exited with 2; stderr: ccedge: CONFIG_INVALID: intents: .*words not in the recogniser's dictionary: "zorblaxphone"/);
      // The installer's check before a restart says the same, and passes the examples the box can hear.
      const bad = path.join(dataDir, 'bad.yaml');
      writeFileSync(bad, YAML.stringify({ ...CONFIG, intents }));
      const refused = await runCli(['config', 'validate', bad], {});
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /CONFIG_INVALID: intents: .*"zorblaxphone"/);
      const good = path.join(dataDir, 'good.yaml');
      writeFileSync(good, YAML.stringify(CONFIG));
      const ok = await runCli(['config', 'validate', good], {});
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /valid .*speech examples all in the recogniser's dictionary/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('speech IVR: callers say why they call', function () {
  let daemon: DaemonHandle | undefined;
  before(async function () {
    daemon = await startDaemon({ config: CONFIG });
  });
  after(async () => {
    await daemon?.stop();
  });

  it('routes callers who say an example phrase (flite voices over G.711) to the intent\'s queue', async () => {
    const outcomes: Outcome[] = [];
    for (const u of CLEAR) outcomes.push(await says(daemon!, u));
    const right = score('example phrases', CLEAR, outcomes);
    for (const o of outcomes) if (o.queued.source === 'speech') assertSpeechDecided(o);
    // Measured 3/3 here; one miss is tolerated (a recogniser, not a lookup table), two are a defect.
    assert.ok(right >= 2, `${right}/3 routed right`);
  });

  it('scores a phrase set worded differently from the examples (accuracy printed), and espeak as the hard case', async () => {
    const outcomes: Outcome[] = [];
    for (const u of REWORDED) outcomes.push(await says(daemon!, u));
    const right = score('reworded phrases', REWORDED, outcomes);
    for (const o of outcomes) if (o.queued.source === 'speech') assertSpeechDecided(o);
    assert.ok(right >= 1, `${right}/3 routed right`);
    const hard: Utterance = { text: 'my bill is wrong', voice: 'espeak', intent: 'billing_inquiry' };
    const o = await says(daemon!, hard);
    score('espeak (hard case, not asserted)', [hard], [o]);
    // Whatever it heard, the caller ends up queued: speech, or the keys' fallback and onFail.
    assert.ok(typeof o.queued.queue === 'string');
  });

  it('a silent caller is asked again, then offered the keys: 2 → technical_support (source ivr)', async () => {
    const o = await caller(daemon!, async (uac) => {
      // The first prompt, then nothing said; the second prompt, nothing again; then the menu's keys.
      await uac.waitForQuiet(400, 15_000);
      uac.resetQuiet();
      await uac.waitForQuiet(400, 20_000);
      uac.resetQuiet();
      await uac.waitForQuiet(400, 20_000);
      await uac.sendDtmf('2');
    });
    assert.deepEqual(
      o.turns.map((t) => t.result),
      ['no-input', 'no-input'],
    );
    assert.equal(o.queued.queue, 'tech');
    assert.equal(o.queued.source, 'ivr');
    assert.equal(o.queued.text, undefined);
    assert.deepEqual(o.done, { result: 'intent', intent: 'technical_support', path: ['2'], menu: 'main', fallback: false });
  });

  it('a caller who mumbles is asked again and a key pressed then still decides: 1 → billing', async () => {
    const mumble = await speak('well hmm let me see', 'kal');
    const o = await caller(daemon!, async (uac) => {
      await uac.waitForQuiet(400, 15_000);
      uac.resetQuiet();
      await uac.say(ulawFrames(mumble));
      // "Sorry" and the menu again: the caller takes the keys instead.
      await uac.waitForQuiet(400, 20_000);
      await uac.sendDtmf('1');
    });
    assert.equal(o.turns[0]?.result, 'rejected', JSON.stringify(o.turns));
    assert.equal(o.turns.length, 1);
    assert.equal(o.queued.queue, 'billing');
    assert.equal(o.queued.source, 'ivr');
    // Every turn of this suite is counted where an operator looks.
    const metrics = await fetch(`http://127.0.0.1:${daemon!.httpPort}/metrics`).then((r) => r.text());
    assert.match(metrics, /ccedge_ivr_speech_turns_total\{result="no-input"\} [1-9]/);
    assert.match(metrics, /ccedge_ivr_speech_turns_total\{result="rejected"\} [1-9]/);
  });
});
