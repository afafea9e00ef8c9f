import assert from 'node:assert/strict';
import { Endpointer, levelDb, type EndpointStep } from '../../speech/endpointer';
import { pcmFrames, silenceFrames, speak } from '../helpers/speech-corpus';

const OPTS = { silenceMs: 700, maxSpeechMs: 8000, noInputMs: 4000 };

/** 20 ms frames of a tone (a stand-in for voiced speech) at `amp`. */
function toneFrames(ms: number, amp = 6000, hz = 440): Int16Array[] {
  const frames: Int16Array[] = [];
  for (let f = 0; f < ms / 20; f++) {
    const fr = new Int16Array(160);
    for (let i = 0; i < 160; i++) fr[i] = Math.round(amp * Math.sin((2 * Math.PI * hz * (f * 160 + i)) / 8000));
    frames.push(fr);
  }
  return frames;
}

function noiseFrames(ms: number, amp: number, seed = 7): Int16Array[] {
  let s = seed;
  const frames: Int16Array[] = [];
  for (let f = 0; f < ms / 20; f++) {
    const fr = new Int16Array(160);
    for (let i = 0; i < 160; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      fr[i] = Math.round(((s / 0xffffffff) * 2 - 1) * amp);
    }
    frames.push(fr);
  }
  return frames;
}

/** Feeds frames until the endpointer ends (or the frames run out); the steps seen, in order, deduplicated. */
function feed(ep: Endpointer, frames: Int16Array[]): EndpointStep[] {
  const steps: EndpointStep[] = [];
  for (const f of frames) {
    const s = ep.push(f);
    if (steps[steps.length - 1] !== s) steps.push(s);
    if (s === 'ended') break;
  }
  return steps;
}

describe('speech endpointer', () => {
  it('a caller who says nothing ends as no-input after noInputMs, not earlier', () => {
    const ep = new Endpointer(OPTS);
    const steps = feed(ep, silenceFrames(3900));
    assert.deepEqual(steps, ['waiting']);
    feed(ep, silenceFrames(1000));
    assert.equal(ep.state, 'ended');
    assert.equal(ep.reason, 'no-input');
    assert.equal(ep.positionMs, 4000);
  });

  it('speech then a pause of silenceMs ends the answer where the speech stopped', () => {
    const ep = new Endpointer(OPTS);
    const steps = feed(ep, [...silenceFrames(500), ...toneFrames(1200), ...silenceFrames(2000)]);
    assert.deepEqual(steps, ['waiting', 'started', 'speech', 'ended']);
    assert.equal(ep.reason, 'silence');
    // Start: 500 ms, less the 200 ms pre-roll; end: the last loud frame (1700 ms).
    assert.equal(ep.speechStartMs, 300);
    assert.equal(ep.speechEndMs, 1700);
    assert.equal(ep.positionMs, 1700 + 700);
  });

  it('a pause shorter than silenceMs between words does not end the answer', () => {
    const ep = new Endpointer(OPTS);
    feed(ep, [...silenceFrames(300), ...toneFrames(600), ...silenceFrames(500), ...toneFrames(600)]);
    assert.equal(ep.state, 'speech');
    feed(ep, silenceFrames(1000));
    assert.equal(ep.reason, 'silence');
    assert.equal(ep.speechEndMs, 300 + 600 + 500 + 600);
  });

  it('a caller who never stops is cut at maxSpeechMs', () => {
    const ep = new Endpointer({ ...OPTS, maxSpeechMs: 3000 });
    feed(ep, [...silenceFrames(400), ...toneFrames(6000)]);
    assert.equal(ep.reason, 'max-length');
    assert.equal(ep.speechEndMs - ep.speechStartMs, 3000);
  });

  it('clicks shorter than minSpeechMs are not speech', () => {
    const ep = new Endpointer(OPTS);
    const clicks: Int16Array[] = [];
    for (let i = 0; i < 13; i++) clicks.push(...silenceFrames(300, i + 2), ...toneFrames(40, 20000));
    const steps = feed(ep, clicks);
    assert.deepEqual(steps, ['waiting', 'ended']);
    assert.equal(ep.reason, 'no-input');
  });

  it('finds speech over a noisy line by the noise floor, and digital silence is no problem', () => {
    const noisy = new Endpointer(OPTS);
    feed(noisy, [...noiseFrames(1000, 300), ...toneFrames(800, 8000).map((f, i) => add(f, noiseFrames(20, 300, i)[0])), ...noiseFrames(1500, 300)]);
    assert.equal(noisy.reason, 'silence');
    assert.ok(noisy.speechStartMs >= 700 && noisy.speechStartMs <= 900, `start ${noisy.speechStartMs}`);

    const zeros = new Endpointer(OPTS);
    const z = Array.from({ length: 50 }, () => new Int16Array(160));
    feed(zeros, [...z, ...toneFrames(500), ...z, ...z]);
    assert.equal(zeros.reason, 'silence');
    assert.equal(levelDb(new Int16Array(160)), -96);
  });

  it('end-points real speech (flite through G.711) around where the words are', async function () {
    this.timeout(30000);
    const clip = await speak('I would like to check my account balance please', 'slt', { leadMs: 1000, trailMs: 1500 });
    const ep = new Endpointer(OPTS);
    feed(ep, pcmFrames(clip));
    assert.equal(ep.reason, 'silence');
    // Within the pre-roll plus a frame or two of where the synthesiser's audio starts and ends
    // (the voice itself begins and ends with a little silence).
    assert.ok(Math.abs(ep.speechStartMs - (clip.speechStartMs - 200)) <= 250, `start ${ep.speechStartMs} vs ${clip.speechStartMs}`);
    assert.ok(Math.abs(ep.speechEndMs - clip.speechEndMs) <= 300, `end ${ep.speechEndMs} vs ${clip.speechEndMs}`);
  });
});

function add(a: Int16Array, b: Int16Array): Int16Array {
  const out = new Int16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}
