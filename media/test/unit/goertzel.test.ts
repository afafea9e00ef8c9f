import assert from 'node:assert/strict';
import { Goertzel, toneShareG711, toneShareLinear } from '../../tones/goertzel';
import { encodeFrame } from '../../tones/g711';
import { renderTone } from '../../tones/tone';
import { leastAllocatedBy } from '../helpers/heap-allocation';

function sine(hz: number, n: number, amp = 8000, phase = 0): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amp * Math.sin((2 * Math.PI * hz * i) / 8000 + phase));
  return out;
}

function mix(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts[0].length);
  for (const p of parts) for (let i = 0; i < out.length; i++) out[i] += p[i];
  return out;
}

describe('goertzel', () => {
  it('a clean tone has nearly all its power at its frequency and almost none at a neighbour 300 Hz away', () => {
    const s = sine(1000, 1600);
    assert.ok(toneShareLinear(s, 1000) > 0.9, String(toneShareLinear(s, 1000)));
    assert.ok(toneShareLinear(s, 700) < 0.02);
    assert.ok(toneShareLinear(s, 1300) < 0.02);
  });

  it('does not depend on level', () => {
    const loud = toneShareLinear(sine(700, 1600, 20000), 700);
    const quiet = toneShareLinear(sine(700, 1600, 300), 700);
    assert.ok(Math.abs(loud - quiet) < 0.05, `${loud} vs ${quiet}`);
  });

  it('splits power between mixed tones (400 + 1000 + 1300: each about a third, 700 absent)', () => {
    const s = mix(sine(400, 1600, 5000), sine(1000, 1600, 5000, 1), sine(1300, 1600, 5000, 2));
    for (const hz of [400, 1000, 1300]) {
      const share = toneShareLinear(s, hz);
      assert.ok(share > 0.25 && share < 0.42, `${hz}: ${share}`);
    }
    assert.ok(toneShareLinear(s, 700) < 0.02);
  });

  it('silence is 0, not NaN', () => {
    assert.equal(toneShareLinear(new Int16Array(160), 400), 0);
    assert.equal(new Goertzel(400).share, 0);
  });

  it('streams across frames: pushing 20 ms frames one by one equals one long push', () => {
    const s = sine(425, 1600);
    const g = new Goertzel(425);
    for (let off = 0; off < s.length; off += 160) g.pushLinear(s, off, off + 160);
    assert.equal(g.samples, 1600);
    assert.ok(Math.abs(g.share - toneShareLinear(s, 425)) < 1e-9);
    g.reset();
    assert.equal(g.share, 0);
  });

  it('reads G.711 payloads of either law (the hold tone is 425 Hz)', () => {
    for (const codec of ['PCMU', 'PCMA'] as const) {
      const frames = renderTone({ name: 't', segments: [{ freqs: [425], ms: 400 }] }, codec);
      assert.ok(toneShareG711(frames, codec, 425) > 0.85, codec);
      assert.ok(toneShareG711(frames, codec, 1000) < 0.02, codec);
      assert.ok(toneShareG711(encodeFrame(codec, sine(1300, 160)), codec, 1300) > 0.8);
    }
  });

  it('does not allocate per push (heap stays flat over 100k frames)', () => {
    const s = sine(1000, 160);
    const pcmu = encodeFrame('PCMU', s);
    const g = new Goertzel(1000);
    for (let i = 0; i < 1000; i++) g.pushLinear(s);
    // Heap growth between GCs (not heapUsed before/after, which counts garbage other tests left behind).
    const bytes = leastAllocatedBy(() => {
      for (let i = 0; i < 100000; i++) {
        g.pushLinear(s);
        g.pushG711(pcmu, 'PCMU');
      }
    });
    assert.ok(bytes / 200_000 < 4, `heap allocation ${bytes} bytes over 200 000 pushes`);
  });
});
