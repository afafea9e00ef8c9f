import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSY_TONE, HOLD_TONE, RINGBACK_TONE, renderTone, type ToneSpec } from '../../tones/tone';
import { ulawToLinear } from '../../tones/g711';
import { MediaClock } from '../../tones/media-clock';
import { loadPromptFrames } from '../../tones/prompt-file';
import { MediaError } from '../../errors';

const totalMs = (t: ToneSpec): number => t.segments.reduce((a, s) => a + s.ms, 0);

describe('tones', () => {
  for (const tone of [HOLD_TONE, RINGBACK_TONE, BUSY_TONE]) {
    it(`${tone.name}: one cycle of 160-byte frames, cycle length = total ms / 20`, () => {
      for (const codec of ['PCMU', 'PCMA'] as const) {
        const frames = renderTone(tone, codec);
        assert.equal(frames.length, totalMs(tone) / 20);
        assert.ok(frames.every((f) => f.length === 160));
      }
    });
  }

  it('busy tone: tone in the first half, digital silence in the second', () => {
    const frames = renderTone(BUSY_TONE, 'PCMU');
    assert.ok(frames[10].some((b) => b !== 0xff));
    assert.ok(frames.slice(25).every((f) => f.every((b) => b === 0xff)));
  });

  it('is phase-continuous across frame boundaries (no jump bigger than one sample step)', () => {
    const pcm = renderTone({ name: 't', segments: [{ freqs: [425], ms: 200 }] }, 'PCMU').flatMap((f) => [...f].map(ulawToLinear));
    const amp = Math.max(...pcm);
    const maxStep = amp * 2 * Math.sin((Math.PI * 425) / 8000) * 1.15 + 64;
    for (let i = 1; i < pcm.length; i++) assert.ok(Math.abs(pcm[i] - pcm[i - 1]) <= maxStep, `sample ${i}`);
  });

  it('pads a cycle that is not a multiple of 20 ms', () => {
    assert.equal(renderTone({ name: 't', segments: [{ freqs: [400], ms: 30 }] }, 'PCMA').length, 2);
  });
});

describe('MediaClock', () => {
  it('ticks about 50 times in one second (sanity, not a benchmark) and stops without subscribers', async () => {
    const clock = new MediaClock();
    let n = 0;
    const off = clock.subscribe(() => n++);
    assert.equal(clock.running, true);
    await new Promise((r) => setTimeout(r, 1000));
    off();
    assert.equal(clock.running, false);
    assert.ok(n >= 47 && n <= 53, `ticked ${n} times`);
    assert.equal(clock.ticks, n);
    const after = n;
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(n, after);
  });

  it('shares one tick among subscribers and survives one that throws', async () => {
    const errors: unknown[] = [];
    const clock = new MediaClock({ onError: (e) => errors.push(e) });
    let a = 0;
    const offA = clock.subscribe(() => a++);
    const offB = clock.subscribe(() => {
      throw new Error('boom');
    });
    await new Promise((r) => setTimeout(r, 110));
    offA();
    offB();
    assert.ok(a >= 3, `a=${a}`);
    assert.equal(errors.length, clock.ticks);
  });

  it('resynchronises instead of bursting after the event loop was blocked', async () => {
    const clock = new MediaClock();
    let n = 0;
    const off = clock.subscribe(() => n++);
    const until = Date.now() + 300; // 15 frames of blocked loop
    while (Date.now() < until) { /* block */ }
    await new Promise((r) => setTimeout(r, 30));
    off();
    assert.ok(clock.resyncs >= 1);
    assert.ok(n <= 4, `burst of ${n} ticks`);
  });
});

describe('loadPromptFrames', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ccedge-prompt-'));

  function wav(format: number, rate: number, data: Buffer, extraChunk = false): Buffer {
    const fmt = Buffer.alloc(16);
    fmt.writeUInt16LE(format, 0);
    fmt.writeUInt16LE(1, 2);
    fmt.writeUInt32LE(rate, 4);
    fmt.writeUInt32LE(rate, 8);
    fmt.writeUInt16LE(1, 12);
    fmt.writeUInt16LE(8, 14);
    const chunk = (id: string, body: Buffer): Buffer => {
      const h = Buffer.alloc(8);
      h.write(id, 0, 'latin1');
      h.writeUInt32LE(body.length, 4);
      return Buffer.concat([h, body, body.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
    };
    const body = Buffer.concat([
      Buffer.from('WAVE'),
      chunk('fmt ', fmt),
      extraChunk ? chunk('LIST', Buffer.from('INFOabc')) : Buffer.alloc(0),
      chunk('data', data),
    ]);
    const riff = Buffer.alloc(8);
    riff.write('RIFF', 0, 'latin1');
    riff.writeUInt32LE(body.length, 4);
    return Buffer.concat([riff, body]);
  }

  it('splits a raw .ulaw file and pads the last frame with μ-law silence', async () => {
    const p = join(dir, 'a.ulaw');
    writeFileSync(p, Buffer.alloc(400, 0x11));
    const frames = await loadPromptFrames(p, 'PCMU');
    assert.equal(frames.length, 3);
    assert.equal(frames[2][79], 0x11);
    assert.equal(frames[2][80], 0xff);
  });

  it('reads a μ-law WAV with an extra LIST chunk and pads A-law WAVs with 0xD5', async () => {
    const pu = join(dir, 'u.wav');
    writeFileSync(pu, wav(7, 8000, Buffer.alloc(320, 0x22), true));
    assert.equal((await loadPromptFrames(pu, 'PCMU')).length, 2);
    const pa = join(dir, 'a.wav');
    writeFileSync(pa, wav(6, 8000, Buffer.alloc(161, 0x33)));
    const frames = await loadPromptFrames(pa, 'PCMA');
    assert.equal(frames.length, 2);
    assert.equal(frames[1][1], 0xd5);
  });

  it('gives clear errors for bad files', async () => {
    const cases: Array<[string, Buffer | null, 'PCMU' | 'PCMA', RegExp]> = [
      ['pcm.wav', wav(1, 8000, Buffer.alloc(320)), 'PCMU', /format 1 is not G.711/],
      ['wide.wav', wav(7, 16000, Buffer.alloc(320)), 'PCMU', /16000/],
      ['law.wav', wav(6, 8000, Buffer.alloc(320)), 'PCMU', /PCMA but the call uses PCMU/],
      ['junk.wav', Buffer.from('hello world, not a wav'), 'PCMU', /not a RIFF/],
      ['x.mp3', Buffer.alloc(10), 'PCMU', /unsupported extension/],
      ['empty.alaw', Buffer.alloc(0), 'PCMA', /no audio/],
      ['missing.ulaw', null, 'PCMU', /cannot read/],
    ];
    for (const [name, data, codec, msg] of cases) {
      const p = join(dir, name);
      if (data) writeFileSync(p, data);
      await assert.rejects(loadPromptFrames(p, codec), (e: unknown) => e instanceof MediaError && msg.test(e.message), name);
    }
  });
});
