import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import { encodeRfc4733, type DtmfDigit } from '../../../media/dtmf/rfc4733';
import { writeRtpHeader } from '../../../media/rtp/packet';
import { PortPool } from '../../../media/rtp/port-pool';
import { RtpSession } from '../../../media/rtp/rtp-session';
import { speechEngineConfigSchema } from '../../../media/speech/engine-config';
import { buildGrammar } from '../../../media/speech/jsgf';
import { PocketsphinxEngine } from '../../../media/speech/pocketsphinx';
import { speak, ulawFrames } from '../../../media/test/helpers/speech-corpus';
import { MediaClock } from '../../../media/tones/media-clock';
import { Endpointer } from '../../../media/speech/endpointer';
import { ivrSchema } from '../../ivr/config';
import { IvrSession, type IvrResult, type IvrSpeechTurn } from '../../ivr/ivr-session';
import type { PromptSource } from '../../ivr/prompts';
import { buildSpeechMenus } from '../../ivr/speech-menus';
import type { EndpointerLimits } from '../../ivr/speech-capture';
import { createLogger } from '../../logging';
import { speechConfigSchema } from '../../speech/config';
import { createIvrSpeech } from '../../speech/ivr-speech';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const INTENTS = [
  { name: 'billing_inquiry', examples: ['my bill is wrong', 'pay my bill'] },
  { name: 'technical_support', examples: ['my internet is down', 'no connection'] },
];

const CONFIG = ivrSchema.parse({
  entry: 'main',
  menus: {
    main: {
      type: 'speech',
      prompt: 'welcome',
      noInputS: 2,
      silenceMs: 600,
      maxSpeechS: 6,
      timeoutS: 2,
      retries: 0,
      choices: { '1': { intent: 'billing_inquiry' }, '2': { intent: 'technical_support' } },
    },
  },
});

/** A short prompt of quiet μ-law frames: what is heard does not matter here, when it ends does. */
const prompts: PromptSource = { frames: () => Promise.resolve(Array.from({ length: 3 }, () => Buffer.alloc(160, 0xff))) };

/** The call's real RtpSession and a UDP socket as the caller's side of the trunk. */
class Caller {
  private seq = 1;
  private ts = 0;
  private constructor(
    readonly rtp: RtpSession,
    readonly peer: dgram.Socket,
  ) {}

  static async open(pool: PortPool): Promise<Caller> {
    const rtp = await RtpSession.open({ pool, host: '127.0.0.1' });
    const peer = dgram.createSocket('udp4');
    peer.bind(0, '127.0.0.1');
    await once(peer, 'listening');
    rtp.setRemote('127.0.0.1', peer.address().port);
    rtp.configure({ payloadType: 0, telephoneEventPayloadType: 101 });
    return new Caller(rtp, peer);
  }

  /** μ-law frames as RTP (PT 0), a little faster than real time, then a second of line silence. */
  async say(frames: readonly Buffer[]): Promise<void> {
    const all = [...frames, ...Array.from({ length: 50 }, () => Buffer.alloc(160, 0xff))];
    for (const f of all) {
      const b = Buffer.alloc(12 + f.length);
      writeRtpHeader(b, { marker: false, payloadType: 0, sequenceNumber: this.seq++ & 0xffff, timestamp: (this.ts += 160), ssrc: 0x4242 });
      f.copy(b, 12);
      this.peer.send(b, this.rtp.localPort, '127.0.0.1');
      await sleep(5);
    }
  }

  key(d: DtmfDigit): void {
    const ts = (this.ts += 8000);
    for (const [dur, end] of [[160, false], [320, false], [480, true], [480, true], [480, true]] as Array<[number, boolean]>) {
      const b = Buffer.alloc(16);
      writeRtpHeader(b, { marker: false, payloadType: 101, sequenceNumber: this.seq++ & 0xffff, timestamp: ts, ssrc: 0x4242 });
      encodeRfc4733(d, dur, end).copy(b, 12);
      this.peer.send(b, this.rtp.localPort, '127.0.0.1');
    }
  }

  close(): void {
    this.rtp.close();
    this.peer.close();
  }
}

describe('IvrSession speech menus (real pocketsphinx, real RtpSession on 127.0.0.1)', function () {
  this.timeout(60_000);
  const pool = new PortPool({ min: 44000, max: 44999 });
  const clock = new MediaClock();
  let engine: PocketsphinxEngine;
  let caller: Caller;
  let session: IvrSession | undefined;

  function start(e: PocketsphinxEngine = engine): { session: IvrSession; turns: IvrSpeechTurn[]; results: IvrResult[]; listening: number[] } {
    const menus = buildSpeechMenus(CONFIG, INTENTS, (list) => buildGrammar(list, { dictionary: engine.dictionary() }).jsgf);
    const s = new IvrSession({
      config: CONFIG,
      prompts,
      clock,
      rtp: caller.rtp,
      codec: 'PCMU',
      speech: { engine: e, menus, audio: caller.rtp, payloadType: () => 0, endpointer: (l) => new Endpointer(l) },
    });
    const out = { session: s, turns: [] as IvrSpeechTurn[], results: [] as IvrResult[], listening: [] as number[] };
    s.on('speech', (t) => out.turns.push(t));
    s.on('done', (r) => out.results.push(r));
    s.on('listening', (_m, n) => out.listening.push(n));
    session = s;
    void s.start();
    return out;
  }

  before(() => {
    // Two: the grammar recognition and its dictation check.
    engine = new PocketsphinxEngine({ config: speechEngineConfigSchema.parse({ maxConcurrent: 2 }) });
  });
  after(async () => {
    await engine.close();
  });
  beforeEach(async () => {
    caller = await Caller.open(pool);
  });
  afterEach(() => {
    session?.close();
    caller.close();
  });

  it('hears the answer after the prompt and decides the intent, releasing audio and engine', async () => {
    const clip = await speak('i want to pay my bill please', 'kal');
    const s = start();
    await until(() => s.listening.length === 1, 'listening');
    await caller.say(ulawFrames(clip));
    await until(() => s.results.length === 1, 'a decision');
    const r = s.results[0];
    assert.equal(r.kind, 'intent');
    assert.ok(r.kind === 'intent' && r.intent === 'billing_inquiry' && r.speech !== undefined, JSON.stringify(r));
    assert.ok(r.speech.confidence >= 0.5 && r.speech.confidence <= 1);
    assert.ok(r.speech.text.includes('bill'), r.speech.text);
    assert.equal(s.turns[0].result, 'recognised');
    // The check (dictation) heard the free wording: the recorded text is its words.
    assert.ok((s.turns[0].text ?? '').split(' ').length >= 4, s.turns[0].text);
    assert.equal(caller.rtp.listenerCount('packet'), 0, 'the capture stopped listening');
    await until(() => engine.active === 0, 'the recognition released');
  });

  it('a key pressed while it listens decides by the keys and abandons the recognition', async () => {
    const s = start();
    await until(() => s.listening.length === 1 && engine.active === 2, 'listening (grammar and check)');
    caller.key('2');
    await until(() => s.results.length === 1, 'a decision');
    assert.deepEqual(s.results[0], { kind: 'intent', intent: 'technical_support', path: ['2'], menu: 'main', fallback: false });
    assert.deepEqual(s.turns, []);
    await until(() => engine.active === 0, 'the recognition closed');
  });

  it('an engine at its limit: the menu says so once and takes keys', async () => {
    const hogs = [engine.recognize({ mode: 'dictation' }), engine.recognize({ mode: 'dictation' })];
    try {
      const s = start();
      await until(() => s.turns.length === 1, 'a turn');
      assert.deepEqual(s.turns[0], { menu: 'main', turn: 1, result: 'unavailable', code: 'SPEECH_BUSY' });
      await sleep(50);
      caller.key('1');
      await until(() => s.results.length === 1, 'a decision');
      assert.deepEqual(s.results[0], { kind: 'intent', intent: 'billing_inquiry', path: ['1'], menu: 'main', fallback: false });
      assert.equal(s.listening.length, 1, 'no second listening turn after the fallback');
    } finally {
      for (const h of hogs) h.close();
    }
  });

  it('an engine that is not installed: keys only (SPEECH_UNAVAILABLE)', async () => {
    const missing = new PocketsphinxEngine({ config: speechEngineConfigSchema.parse({ binary: '/nonexistent/pocketsphinx_continuous' }) });
    const s = start(missing);
    await until(() => s.turns.length === 1, 'a turn');
    assert.equal(s.turns[0].result, 'unavailable');
    assert.equal(s.turns[0].code, 'SPEECH_UNAVAILABLE');
    caller.key('2');
    await until(() => s.results.length === 1, 'a decision');
    assert.equal(s.results[0].kind === 'intent' && s.results[0].intent, 'technical_support');
    await missing.close();
  });

  it('silence twice (asked again once), and no keys: abandoned no-input', async () => {
    const s = start();
    await until(() => s.listening.length === 1, 'listening');
    await caller.say([]);
    await caller.say(Array.from({ length: 60 }, () => Buffer.alloc(160, 0xff)));
    await until(() => s.listening.length === 2, 'asked again');
    await caller.say(Array.from({ length: 110 }, () => Buffer.alloc(160, 0xff)));
    await until(() => s.turns.length === 2, 'two turns');
    assert.deepEqual(s.turns.map((t) => t.result), ['no-input', 'no-input']);
    await until(() => s.results.length === 1, 'done', 30_000);
    assert.deepEqual(s.results[0], { kind: 'abandoned', reason: 'no-input', path: [] });
  });
});

describe('createIvrSpeech: the daemon\'s speech menus', () => {
  const speechConfig = speechConfigSchema.parse({});
  const endpointer = (l: EndpointerLimits): Endpointer => new Endpointer(l);

  it('none without a speech menu; an engine that cannot run leaves the menus keys-only', () => {
    const dtmfOnly = ivrSchema.parse({ entry: 'm', menus: { m: { prompt: 'p', choices: { '1': { intent: 'a' } } } } });
    assert.equal(createIvrSpeech(dtmfOnly, () => INTENTS, speechConfig, endpointer, createLogger('silent')), undefined);
    const missing = speechConfigSchema.parse({ engine: { binary: '/nonexistent/pocketsphinx_continuous' } });
    assert.equal(createIvrSpeech(CONFIG, () => INTENTS, missing, endpointer, createLogger('silent')), undefined);
  });

  it('new examples pushed live are used from the next call; unrecognisable ones keep the last good models', async () => {
    const cfg = { intents: INTENTS };
    const deps = createIvrSpeech(CONFIG, () => cfg.intents, speechConfig, endpointer, createLogger('silent'));
    assert.ok(deps);
    try {
      assert.equal(deps.menus.get('main')?.classifier.classify({ text: 'modem broken', confidence: 1 }), null);
      cfg.intents = [INTENTS[0], { name: 'technical_support', examples: ['my modem is broken'] }];
      assert.equal(deps.menus.get('main')?.classifier.classify({ text: 'modem broken', confidence: 1 })?.intent, 'technical_support');
      assert.match(deps.menus.get('main')?.grammar ?? '', /my modem is broken/);
      cfg.intents = [INTENTS[0], { name: 'technical_support', examples: ['my zorblaxmodem is broken'] }];
      assert.match(deps.menus.get('main')?.grammar ?? '', /my modem is broken/);
    } finally {
      await deps.engine.close();
    }
  });
});
