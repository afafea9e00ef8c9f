import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeRfc4733, type DtmfDigit } from '../../../media/dtmf/rfc4733';
import { parseRtp, writeRtpHeader } from '../../../media/rtp/packet';
import { PortPool } from '../../../media/rtp/port-pool';
import { RtpSession } from '../../../media/rtp/rtp-session';
import type { G711Codec } from '../../../media/tones/g711';
import { MediaClock } from '../../../media/tones/media-clock';
import { ivrSchema, type IvrConfigInput } from '../../ivr/config';
import { createLogger } from '../../logging';
import { IvrSession, type IvrResult } from '../../ivr/ivr-session';
import { generatedPrompt, IvrPrompts, type PromptSource } from '../../ivr/prompts';
import { ManualClock } from './manual-clock';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Prompt frames whose bytes say which prompt (and law) they belong to, so the peer can tell what it hears. */
const PROMPT_CODES: Record<string, number> = { welcome: 0x11, invalid: 0x22, more: 0x33, long: 0x44, sorry: 0x55 };
const PROMPT_FRAMES: Record<string, number> = { welcome: 5, invalid: 3, more: 4, long: 150, sorry: 2 };
const NAME_OF = new Map<number, string>();
for (const [n, c] of Object.entries(PROMPT_CODES)) {
  NAME_OF.set(c, `${n}/PCMU`);
  NAME_OF.set(c | 0x80, `${n}/PCMA`);
}

class MarkedPrompts implements PromptSource {
  loads = 0;
  frames(name: string, codec: G711Codec): Promise<Buffer[]> {
    this.loads++;
    const code = (PROMPT_CODES[name] ?? 0x7f) | (codec === 'PCMA' ? 0x80 : 0);
    return Promise.resolve(Array.from({ length: PROMPT_FRAMES[name] ?? 3 }, () => Buffer.alloc(160, code)));
  }
}

function config(overrides: (c: IvrConfigInput) => void = () => undefined): ReturnType<typeof ivrSchema.parse> {
  const c: IvrConfigInput = {
    entry: 'main',
    interDigitTimeoutS: 3,
    menus: {
      main: {
        prompt: 'welcome',
        timeoutS: 5,
        retries: 2,
        invalidPrompt: 'invalid',
        choices: {
          '1': { intent: 'technical_support' },
          '2': { intent: 'billing_inquiry' },
          '3': { menu: 'more' },
          '9': { callback: true },
        },
        onFail: { intent: 'general' },
      },
      more: {
        prompt: 'more',
        timeoutS: 4,
        retries: 1,
        choices: { '1': { intent: 'sales' }, '2': { intent: 'account_closure' }, '0': { menu: 'main' } },
        onFail: { intent: 'general_more' },
      },
    },
  };
  overrides(c);
  return ivrSchema.parse(c);
}

interface Heard {
  prompt: string;
  marker: boolean;
}

/**
 * The call's real RtpSession on 127.0.0.1 and a plain UDP socket as the PBX: it receives the
 * prompts and sends RFC 4733 key presses.
 */
class Rig {
  readonly heard: Heard[] = [];
  readonly timers = new ManualClock();
  readonly clock = new MediaClock();
  private seq = 1000;
  private ts = 50_000;
  ivr!: IvrSession;
  results: IvrResult[] = [];
  events: string[] = [];

  private constructor(
    readonly rtp: RtpSession,
    readonly peer: dgram.Socket,
  ) {
    peer.on('message', (msg) => {
      const p = parseRtp(msg);
      if (!p || p.header.payloadType !== 0) return;
      this.heard.push({ prompt: NAME_OF.get(p.payload[0]) ?? `bytes:${p.payload[0].toString(16)}`, marker: p.header.marker });
    });
  }

  static async open(pool: PortPool): Promise<Rig> {
    const rtp = await RtpSession.open({ pool, host: '127.0.0.1' });
    const peer = dgram.createSocket('udp4');
    peer.bind(0, '127.0.0.1');
    await once(peer, 'listening');
    rtp.setRemote('127.0.0.1', peer.address().port);
    rtp.configure({ payloadType: 0, telephoneEventPayloadType: 101 });
    return new Rig(rtp, peer);
  }

  start(cfg = config(), prompts: PromptSource = new MarkedPrompts(), codec: G711Codec = 'PCMU'): IvrSession {
    this.ivr = new IvrSession({ config: cfg, prompts, clock: this.clock, rtp: this.rtp, codec, timers: this.timers });
    this.ivr.on('done', (r) => this.results.push(r));
    this.ivr.on('menu', (m, n) => this.events.push(`menu:${m}#${n}`));
    this.ivr.on('prompt', (p) => this.events.push(`prompt:${p}`));
    this.ivr.on('promptEnd', (p, how) => this.events.push(`end:${p}:${how}`));
    this.ivr.on('digit', (d, o) => this.events.push(`digit:${d}:${o}`));
    this.ivr.on('invalid', (m, i) => this.events.push(`invalid:${m}:${i}`));
    this.ivr.on('timeout', (m) => this.events.push(`timeout:${m}`));
    void this.ivr.start();
    return this.ivr;
  }

  /** One key press as a PBX sends it: begin, an update, three end packets, one timestamp. */
  sendDigit(d: DtmfDigit): void {
    const ts = (this.ts += 8000);
    const packets: Array<[number, boolean, boolean]> = [[160, false, true], [320, false, false], [480, true, false], [480, true, false], [480, true, false]];
    for (const [dur, end, marker] of packets) {
      const b = Buffer.alloc(16);
      writeRtpHeader(b, { marker, payloadType: 101, sequenceNumber: this.seq++ & 0xffff, timestamp: ts, ssrc: 0x1234 });
      encodeRfc4733(d, dur, end).copy(b, 12);
      this.peer.send(b, this.rtp.localPort, '127.0.0.1');
    }
  }

  /** The prompts heard, run-length encoded: ['welcome/PCMU×5', 'invalid/PCMU×3', …]. */
  runs(): string[] {
    const out: Array<{ p: string; n: number }> = [];
    for (const h of this.heard) {
      const last = out[out.length - 1];
      if (last && last.p === h.prompt && !h.marker) last.n++;
      else out.push({ p: h.prompt, n: 1 });
    }
    return out.map((r) => `${r.p}×${r.n}`);
  }

  async waitEvent(ev: string, count = 1): Promise<void> {
    await until(() => this.events.filter((e) => e === ev).length >= count, `${ev} (x${count}); events: ${this.events.join(' ')}`);
  }

  async waitDone(): Promise<IvrResult> {
    await until(() => this.results.length > 0, `done; events: ${this.events.join(' ')}`);
    return this.results[0];
  }

  close(): void {
    this.ivr?.close();
    this.rtp.close();
    this.peer.close();
  }
}

describe('IvrSession (real RtpSession on 127.0.0.1)', function () {
  this.timeout(10_000);
  const pool = new PortPool({ min: 43000, max: 43999 });
  let rig: Rig;
  beforeEach(async () => {
    rig = await Rig.open(pool);
  });
  afterEach(() => rig.close());

  /** After done: nothing left running (media clock, timers, digit listener). */
  function assertReleased(): void {
    assert.equal(rig.clock.running, false, 'no prompt player left on the media clock');
    assert.equal(rig.timers.pending, 0, 'no IVR timer left');
    assert.equal(rig.rtp.listenerCount('dtmf'), 0, 'the digit listener is removed');
  }

  it('plays the menu prompt as RTP, then 1 gives intent technical_support', async () => {
    rig.start();
    await rig.waitEvent('end:welcome:finished');
    await until(() => rig.heard.length >= 5, 'the whole prompt at the peer');
    assert.deepEqual(rig.runs(), ['welcome/PCMU×5']);
    assert.equal(rig.heard[0].marker, true, 'marker on the first packet of the prompt');
    rig.sendDigit('1');
    const r = await rig.waitDone();
    assert.deepEqual(r, { kind: 'intent', intent: 'technical_support', path: ['1'], menu: 'main', fallback: false });
    assert.deepEqual(rig.ivr.result, r);
    assert.ok(rig.events.includes('digit:1:rfc4733'));
    assertReleased();
  });

  it('3 then 2 goes through the nested menu', async () => {
    rig.start();
    await rig.waitEvent('end:welcome:finished');
    rig.sendDigit('3');
    await rig.waitEvent('end:more:finished');
    rig.sendDigit('2');
    const r = await rig.waitDone();
    assert.deepEqual(r, { kind: 'intent', intent: 'account_closure', path: ['3', '2'], menu: 'more', fallback: false });
    await until(() => rig.heard.length >= 9, 'both prompts');
    assert.deepEqual(rig.runs(), ['welcome/PCMU×5', 'more/PCMU×4']);
    assertReleased();
  });

  it('a caller can go back: 3, 0, then 9 asks for a callback', async () => {
    rig.start();
    await rig.waitEvent('end:welcome:finished');
    rig.sendDigit('3');
    await rig.waitEvent('end:more:finished');
    rig.sendDigit('0');
    await rig.waitEvent('end:welcome:finished', 2);
    rig.sendDigit('9');
    assert.deepEqual(await rig.waitDone(), { kind: 'callback', path: ['3', '0', '9'], menu: 'main', fallback: false });
    assertReleased();
  });

  it('times out twice then takes onFail (intent), replaying the prompt in between', async () => {
    rig.start(config((c) => (c.menus.main.retries = 1)));
    await rig.waitEvent('end:welcome:finished');
    rig.timers.advance(4999);
    assert.equal(rig.events.includes('timeout:main'), false, 'not before timeoutS');
    rig.timers.advance(1);
    assert.ok(rig.events.includes('timeout:main'));
    await rig.waitEvent('end:welcome:finished', 2);
    rig.timers.advance(5000);
    const r = await rig.waitDone();
    assert.deepEqual(r, { kind: 'intent', intent: 'general', path: [], menu: 'main', fallback: true });
    assert.deepEqual(rig.events.filter((e) => e.startsWith('menu:')), ['menu:main#1', 'menu:main#2']);
    await until(() => rig.heard.length >= 10, 'both plays');
    assert.deepEqual(rig.runs(), ['welcome/PCMU×5', 'welcome/PCMU×5']);
    assertReleased();
  });

  it('onFail can lead to another menu; its own onFail then decides', async () => {
    rig.start(config((c) => {
      c.menus.main.retries = 0;
      c.menus.main.onFail = { menu: 'more' };
      c.menus.more.retries = 0;
    }));
    await rig.waitEvent('end:welcome:finished');
    rig.timers.advance(5000);
    await rig.waitEvent('end:more:finished');
    rig.timers.advance(4000);
    assert.deepEqual(await rig.waitDone(), { kind: 'intent', intent: 'general_more', path: [], menu: 'more', fallback: true });
  });

  it('an invalid digit plays invalidPrompt, then the menu again; then a valid choice', async () => {
    rig.start();
    await rig.waitEvent('end:welcome:finished');
    rig.sendDigit('7');
    await rig.waitEvent('end:invalid:finished');
    await rig.waitEvent('end:welcome:finished', 2);
    assert.ok(rig.events.includes('invalid:main:7'));
    rig.sendDigit('2');
    assert.deepEqual(await rig.waitDone(), { kind: 'intent', intent: 'billing_inquiry', path: ['2'], menu: 'main', fallback: false });
    await until(() => rig.heard.length >= 13, 'three prompts');
    assert.deepEqual(rig.runs(), ['welcome/PCMU×5', 'invalid/PCMU×3', 'welcome/PCMU×5']);
    assertReleased();
  });

  it('invalid input past the retries plays invalidPrompt then takes onFail', async () => {
    rig.start(config((c) => (c.menus.main.retries = 0)));
    await rig.waitEvent('end:welcome:finished');
    rig.sendDigit('#');
    const r = await rig.waitDone();
    assert.deepEqual(r, { kind: 'intent', intent: 'general', path: [], menu: 'main', fallback: true });
    await until(() => rig.heard.length >= 8, 'prompts');
    assert.deepEqual(rig.runs(), ['welcome/PCMU×5', 'invalid/PCMU×3']);
  });

  it('without invalidPrompt, an invalid digit replays the menu at once', async () => {
    rig.start(config((c) => delete c.menus.main.invalidPrompt));
    await rig.waitEvent('end:welcome:finished');
    rig.sendDigit('5');
    await rig.waitEvent('end:welcome:finished', 2);
    assert.deepEqual(rig.events.filter((e) => e.startsWith('prompt:')), ['prompt:welcome', 'prompt:welcome']);
  });

  it('barge-in: a digit during the prompt stops it at once', async () => {
    rig.start(config((c) => (c.menus.main.prompt = 'long')));
    await until(() => rig.heard.length >= 10, 'the start of the long prompt');
    rig.sendDigit('1');
    const r = await rig.waitDone();
    assert.equal(r.kind, 'intent');
    assert.ok(rig.events.includes('end:long:barge-in'));
    assertReleased();
    const atDone = rig.heard.length;
    await sleep(200);
    assert.ok(rig.heard.length <= atDone + 2, `prompt kept playing after the digit: ${atDone} → ${rig.heard.length}`);
    assert.ok(rig.heard.length < 60, `${rig.heard.length} of 150 frames sent`);
  });

  it('barge-in during the invalid prompt is taken as the choice', async () => {
    rig.start(config((c) => (c.menus.main.invalidPrompt = 'long')));
    await rig.waitEvent('end:welcome:finished');
    rig.sendDigit('8');
    await until(() => rig.heard.length >= 10, 'the invalid prompt playing');
    rig.sendDigit('3');
    await rig.waitEvent('end:more:finished');
    assert.ok(rig.events.includes('end:long:barge-in'));
    rig.ivr.close();
    assert.deepEqual(rig.results, [{ kind: 'abandoned', reason: 'closed', path: ['3'] }]);
  });

  it('SIP INFO digits fed through pushDigit count like RFC 4733 ones', async () => {
    rig.start();
    await rig.waitEvent('end:welcome:finished');
    rig.ivr.pushDigit('3');
    await rig.waitEvent('prompt:more');
    rig.ivr.pushDigit('1');
    assert.deepEqual(await rig.waitDone(), { kind: 'intent', intent: 'sales', path: ['3', '1'], menu: 'more', fallback: false });
    assert.ok(rig.events.includes('digit:3:info'));
  });

  it('digits pressed while the prompts load are not lost', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inner = new MarkedPrompts();
    const slow: PromptSource = { frames: async (n, c) => (await gate, inner.frames(n, c)) };
    rig.start(config(), slow);
    rig.ivr.pushDigit('2');
    await sleep(20);
    assert.equal(rig.results.length, 0);
    release();
    assert.deepEqual(await rig.waitDone(), { kind: 'intent', intent: 'billing_inquiry', path: ['2'], menu: 'main', fallback: false });
    assertReleased();
  });

  it('multi-digit keys: an ambiguous prefix waits interDigitTimeoutS', async () => {
    const cfg = config((c) => (c.menus.main.choices = { '1': { intent: 'one' }, '12': { intent: 'twelve' }, '34': { intent: 'thirtyfour' } }));
    rig.start(cfg);
    await rig.waitEvent('end:welcome:finished');
    rig.ivr.pushDigit('1');
    rig.timers.advance(2999);
    assert.equal(rig.results.length, 0);
    rig.timers.advance(1);
    assert.deepEqual(await rig.waitDone(), { kind: 'intent', intent: 'one', path: ['1'], menu: 'main', fallback: false });
  });

  it('multi-digit keys: a complete key is taken at once, a dead prefix is invalid', async () => {
    const cfg = config((c) => (c.menus.main.choices = { '1': { intent: 'one' }, '12': { intent: 'twelve' }, '34': { intent: 'thirtyfour' } }));
    rig.start(cfg);
    await rig.waitEvent('end:welcome:finished');
    rig.ivr.pushDigit('3');
    rig.ivr.pushDigit('5');
    assert.ok(rig.events.includes('invalid:main:35'));
    rig.ivr.pushDigit('1');
    rig.ivr.pushDigit('2');
    assert.deepEqual(await rig.waitDone(), { kind: 'intent', intent: 'twelve', path: ['12'], menu: 'main', fallback: false });
    assertReleased();
  });

  it('a menu without onFail ends abandoned (no-input) after its retries', async () => {
    rig.start(config((c) => {
      delete c.menus.main.onFail;
      c.menus.main.retries = 0;
    }));
    await rig.waitEvent('end:welcome:finished');
    rig.timers.advance(5000);
    assert.deepEqual(await rig.waitDone(), { kind: 'abandoned', reason: 'no-input', path: [] });
  });

  it('maxDurationS ends a caller cycling through onFail menus', async () => {
    rig.start(config((c) => {
      c.maxDurationS = 12;
      c.menus.main.retries = 0;
      c.menus.main.onFail = { menu: 'more' };
      c.menus.more.retries = 0;
      c.menus.more.onFail = { menu: 'main' };
    }));
    for (let i = 1; i <= 2; i++) {
      await rig.waitEvent('end:welcome:finished', i);
      rig.timers.advance(5000);
      if (i === 2) break;
      await rig.waitEvent('end:more:finished', i);
      rig.timers.advance(4000);
    }
    assert.deepEqual(await rig.waitDone(), { kind: 'abandoned', reason: 'max-duration', path: [] });
    assertReleased();
  });

  it('close() mid-prompt stops everything and reports abandoned once', async () => {
    rig.start(config((c) => (c.menus.main.prompt = 'long')));
    await until(() => rig.heard.length >= 3, 'the prompt playing');
    rig.ivr.close();
    rig.ivr.close();
    assert.deepEqual(rig.results, [{ kind: 'abandoned', reason: 'closed', path: [] }]);
    assertReleased();
    const n = rig.heard.length;
    rig.sendDigit('1');
    rig.ivr.pushDigit('1');
    await sleep(150);
    assert.ok(rig.heard.length <= n + 2, 'no more prompt packets');
    assert.equal(rig.results.length, 1);
  });

  it('close() while waiting for a digit clears the timeout', async () => {
    rig.start();
    await rig.waitEvent('end:welcome:finished');
    assert.equal(rig.timers.pending, 2, 'menu timeout and max duration');
    rig.ivr.close();
    assertReleased();
  });

  it('a prompt source that fails ends the IVR (abandoned, error) without throwing', async () => {
    rig.start(config(), { frames: () => Promise.reject(new Error('disk gone')) });
    assert.deepEqual(await rig.waitDone(), { kind: 'abandoned', reason: 'error', path: [] });
    assertReleased();
  });

  it('setCodec restarts the prompt being played in the new law', async () => {
    rig.start(config((c) => (c.menus.main.prompt = 'long')));
    await until(() => rig.heard.length >= 3, 'the prompt playing');
    rig.rtp.configure({ payloadType: 0, telephoneEventPayloadType: 101 });
    rig.ivr.setCodec('PCMA');
    await until(() => rig.heard.some((h) => h.prompt === 'long/PCMA'), 'A-law frames');
    rig.ivr.close();
    const runs = rig.runs();
    assert.match(runs[0], /^long\/PCMU×\d+$/);
    assert.match(runs[1], /^long\/PCMA×\d+$/);
  });

  it('logs the result through the call logger (pino), one line with callId', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('debug', { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }).child({ callId: 'c-1' });
    const ivr = new IvrSession({ config: config(), prompts: new MarkedPrompts(), clock: rig.clock, rtp: rig.rtp, codec: 'PCMU', timers: rig.timers, log });
    const done = once(ivr, 'done');
    await ivr.start();
    ivr.pushDigit('1');
    await done;
    const line = lines.find((l) => l.msg === 'IVR done: intent technical_support');
    assert.ok(line, JSON.stringify(lines));
    assert.equal(line.callId, 'c-1');
    assert.deepEqual(line.ivr, { kind: 'intent', intent: 'technical_support', path: ['1'], menu: 'main', fallback: false });
    assert.ok(lines.some((l) => l.msg === 'IVR digit' && l.digit === '1' && l.origin === 'info'));
  });

  it('with IvrPrompts and no files, the generated welcome prompt is what the peer hears', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'ccedge-ivr-'));
    try {
      const cfg = config();
      rig.start(cfg, IvrPrompts.forDataDir(dataDir));
      const expected = generatedPrompt('welcome', 'PCMU');
      const got: Buffer[] = [];
      rig.peer.on('message', (msg) => {
        const p = parseRtp(msg);
        if (p && p.header.payloadType === 0) got.push(Buffer.from(p.payload));
      });
      await rig.waitEvent('end:welcome:finished');
      await until(() => got.length >= expected.length, 'the generated prompt');
      assert.deepEqual(got, expected);
      rig.sendDigit('1');
      assert.equal((await rig.waitDone()).kind, 'intent');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
