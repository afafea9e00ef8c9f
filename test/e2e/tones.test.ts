import assert from 'node:assert/strict';
import { encodeFrame } from '../../media/tones/g711';
import { checkHears, heardTones, toneFrames, toneWav, ToneMeter } from './tones';

/** 20 ms frames of tones mixed at the given amplitudes (as a mixer would hand them on). */
function mixed(parts: Array<[hz: number, amplitude: number]>, frames: number): Buffer[] {
  const out: Buffer[] = [];
  for (let f = 0; f < frames; f++) {
    const pcm = new Int16Array(160);
    for (let i = 0; i < 160; i++) {
      const n = f * 160 + i;
      pcm[i] = Math.round(parts.reduce((sum, [hz, a]) => sum + a * Math.sin((2 * Math.PI * hz * n) / 8000), 0));
    }
    out.push(encodeFrame('PCMA', pcm));
  }
  return out;
}

describe('tone peers: the meters (test helpers)', () => {
  it('a lone tone is heard and no other candidate is', () => {
    const meter = new ToneMeter();
    for (let k = 0; k < 3; k++) for (const f of toneFrames('PCMU', 800)) meter.push(f, 'PCMU');
    const r = meter.report();
    assert.deepEqual(heardTones(r), [800]);
    assert.equal(checkHears('x', r, [800]), null);
    assert.match(checkHears('x', r, [600]) ?? '', /should hear 600 Hz/);
  });

  it('in a three-way mix the quiet Chromium-level tone is still heard, the absent one is not', () => {
    const meter = new ToneMeter();
    // What the caller hears in a conference: the werift agent loud, the Chromium agent ~7 dB lower.
    for (const f of mixed([[800, 6000], [600, 2500]], 100)) meter.push(f, 'PCMA');
    const r = meter.report();
    assert.equal(checkHears('caller', r, [600, 800]), null, JSON.stringify(r.shares));
    assert.match(checkHears('caller', r, [800]) ?? '', /should not hear 600 Hz/);
  });

  it('silence or too little audio is never "heard"', () => {
    const meter = new ToneMeter();
    for (let k = 0; k < 100; k++) meter.push(encodeFrame('PCMU', new Int16Array(160)), 'PCMU');
    assert.deepEqual(heardTones(meter.report()), []);
    meter.reset();
    for (const f of toneFrames('PCMU', 600).slice(0, 10)) meter.push(f, 'PCMU');
    assert.match(checkHears('x', meter.report(), [600]) ?? '', /only 1600 samples/);
  });

  it('the WAV is 16-bit mono PCM of the asked length', () => {
    const wav = toneWav(600, 1, 48_000);
    assert.equal(wav.toString('ascii', 0, 4), 'RIFF');
    assert.equal(wav.readUInt16LE(22), 1);
    assert.equal(wav.readUInt32LE(24), 48_000);
    assert.equal(wav.readUInt32LE(40), 96_000);
    assert.equal(wav.length, 44 + 96_000);
  });
});
