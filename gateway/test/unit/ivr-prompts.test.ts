import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { linearToAlaw, linearToUlaw } from '../../../media/tones/g711';
import { generatedPrompt, generatedPromptSpec, IvrPrompts, transcodeFrames } from '../../ivr/prompts';

function wav(format: 6 | 7, audio: Buffer, rate = 8000): Buffer {
  const fmt = Buffer.alloc(24);
  fmt.write('fmt ', 0, 'latin1');
  fmt.writeUInt32LE(16, 4);
  fmt.writeUInt16LE(format, 8);
  fmt.writeUInt16LE(1, 10);
  fmt.writeUInt32LE(rate, 12);
  fmt.writeUInt32LE(rate, 16);
  fmt.writeUInt16LE(1, 20);
  fmt.writeUInt16LE(8, 22);
  const data = Buffer.alloc(8);
  data.write('data', 0, 'latin1');
  data.writeUInt32LE(audio.length, 4);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(4 + fmt.length + data.length + audio.length, 4);
  head.write('WAVE', 8, 'latin1');
  return Buffer.concat([head, fmt, data, audio]);
}

describe('IvrPrompts', () => {
  let dataDir: string;
  let dir: string;
  let warnings: Array<{ obj: object; msg: string }>;
  let prompts: IvrPrompts;
  beforeEach(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ccedge-ivr-prompts-'));
    dir = path.join(dataDir, 'prompts');
    mkdirSync(dir);
    warnings = [];
    prompts = IvrPrompts.forDataDir(dataDir, { warn: (obj, msg) => warnings.push({ obj, msg: msg ?? '' }) });
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('generates a short tone prompt, distinct per name, when there is no file', async () => {
    const welcome = await prompts.frames('welcome', 'PCMU');
    assert.deepEqual(welcome, generatedPrompt('welcome', 'PCMU'));
    assert.ok(welcome.length >= 10 && welcome.length <= 70, `${welcome.length} frames`);
    assert.ok(welcome.every((f) => f.length === 160));
    const specs = ['welcome', 'invalid', 'more', 'billing', 'main', 'support'].map((n) => JSON.stringify(generatedPromptSpec(n).segments));
    assert.equal(new Set(specs).size, specs.length, 'each name has its own pattern');
    assert.equal(warnings.length, 0, 'a missing file is not a warning');
    // Never a DTMF frequency.
    const dtmf = [697, 770, 852, 941, 1209, 1336, 1477, 1633];
    for (let i = 0; i < 200; i++) {
      for (const seg of generatedPromptSpec(`p${i}`).segments) for (const f of seg.freqs) assert.ok(dtmf.every((d) => Math.abs(d - f) > 40), `${f} Hz`);
    }
  });

  it('caches per name and codec', async () => {
    const a = prompts.frames('welcome', 'PCMU');
    assert.equal(prompts.frames('welcome', 'PCMU'), a);
    assert.notEqual(prompts.frames('welcome', 'PCMA'), a);
    assert.notDeepEqual(await prompts.frames('welcome', 'PCMA'), await a);
  });

  it('loads <dataDir>/prompts/<name>.ulaw for PCMU and converts it for PCMA', async () => {
    const audio = Buffer.alloc(400);
    for (let i = 0; i < audio.length; i++) audio[i] = linearToUlaw(Math.round(8000 * Math.sin(i / 3)));
    writeFileSync(path.join(dir, 'welcome.ulaw'), audio);
    const u = await prompts.frames('welcome', 'PCMU');
    assert.equal(u.length, 3);
    assert.deepEqual(u[0], audio.subarray(0, 160));
    assert.equal(u[2][80 - 1], audio[399]);
    assert.equal(u[2][80], 0xff, 'padded with μ-law silence');
    const a = await prompts.frames('welcome', 'PCMA');
    assert.equal(a.length, 3);
    assert.deepEqual(a, transcodeFrames(u, 'PCMU', 'PCMA'));
    assert.equal(warnings.length, 0);
  });

  it('prefers the file in the call own law, then .wav, then the other law', async () => {
    writeFileSync(path.join(dir, 'p.alaw'), Buffer.alloc(160, linearToAlaw(1000)));
    writeFileSync(path.join(dir, 'p.wav'), wav(7, Buffer.alloc(320, linearToUlaw(2000))));
    assert.equal((await prompts.frames('p', 'PCMA')).length, 1, 'own law raw file');
    assert.equal((await prompts.frames('p', 'PCMU')).length, 2, 'the μ-law WAV');
    writeFileSync(path.join(dir, 'q.wav'), wav(6, Buffer.alloc(480, linearToAlaw(2000))));
    const q = await prompts.frames('q', 'PCMU');
    assert.equal(q.length, 3, 'an A-law WAV converted for a PCMU call');
    assert.equal(q[0][0], linearToUlaw(2000));
  });

  it('replaces a bad file by the generated prompt and logs it once', async () => {
    writeFileSync(path.join(dir, 'broken.wav'), Buffer.from('RIFF....WAVEgarbage'));
    writeFileSync(path.join(dir, 'stereo.wav'), wav(7, Buffer.alloc(320), 16000));
    writeFileSync(path.join(dir, 'empty.ulaw'), Buffer.alloc(0));
    assert.deepEqual(await prompts.frames('broken', 'PCMU'), generatedPrompt('broken', 'PCMU'));
    assert.deepEqual(await prompts.frames('broken', 'PCMU'), generatedPrompt('broken', 'PCMU'));
    assert.deepEqual(await prompts.frames('broken', 'PCMA'), generatedPrompt('broken', 'PCMA'));
    assert.deepEqual(await prompts.frames('stereo', 'PCMU'), generatedPrompt('stereo', 'PCMU'));
    assert.deepEqual(await prompts.frames('empty', 'PCMU'), generatedPrompt('empty', 'PCMU'));
    const files = warnings.map((w) => path.basename(String((w.obj as { file?: string }).file)));
    assert.deepEqual(files.sort(), ['broken.wav', 'empty.ulaw', 'stereo.wav']);
    assert.ok(warnings.every((w) => (w.obj as { code?: string }).code === 'PROMPT_INVALID'));
  });

  it('never reads outside the prompts directory: an unsafe name gets the generated prompt', async () => {
    writeFileSync(path.join(dataDir, 'secret.ulaw'), Buffer.alloc(160, 1));
    assert.deepEqual(await prompts.frames('../secret', 'PCMU'), generatedPrompt('../secret', 'PCMU'));
    assert.equal(warnings.length, 1);
  });

  it('works without a prompts directory at all', async () => {
    const none = new IvrPrompts(path.join(dataDir, 'nope'));
    assert.deepEqual(await none.frames('welcome', 'PCMA'), generatedPrompt('welcome', 'PCMA'));
    await none.preload(['a', 'b']);
  });
});
