import assert from 'node:assert/strict';
import { AnswerEndpointer } from '../../ivr/answer-endpointer';

const LIMITS = { silenceMs: 400, maxSpeechMs: 1000, noInputMs: 600 };

function frame(amplitude: number): Int16Array {
  const f = new Int16Array(160);
  for (let i = 0; i < f.length; i++) f[i] = i % 2 === 0 ? amplitude : -amplitude;
  return f;
}

/** Verdicts with the frame index they came at. */
function run(ep: AnswerEndpointer, frames: Int16Array[]): string[] {
  const out: string[] = [];
  frames.forEach((f, i) => {
    const v = ep.push(f);
    if (v !== null) out.push(`${v}@${i}`);
  });
  return out;
}

const quiet = (n: number): Int16Array[] => Array.from({ length: n }, () => frame(20));
const loud = (n: number): Int16Array[] => Array.from({ length: n }, () => frame(3000));

describe('AnswerEndpointer', () => {
  it('speech starts after 60 ms of loud frames and ends after silenceMs of quiet', () => {
    assert.deepEqual(run(new AnswerEndpointer(LIMITS), [...quiet(5), ...loud(10), ...quiet(30)]), ['speech-start@7', 'speech-end@34']);
  });

  it('a click (one or two loud frames) is not an answer; nothing within noInputMs is no-input, once', () => {
    assert.deepEqual(run(new AnswerEndpointer(LIMITS), [...quiet(3), ...loud(2), ...quiet(40)]), ['no-input@29']);
  });

  it('an answer that does not stop is cut at maxSpeechMs', () => {
    assert.deepEqual(run(new AnswerEndpointer(LIMITS), [...loud(80)]), ['speech-start@2', 'max-length@49']);
  });

  it('short pauses inside the answer do not end it', () => {
    assert.deepEqual(run(new AnswerEndpointer({ ...LIMITS, maxSpeechMs: 5000 }), [...loud(10), ...quiet(10), ...loud(10), ...quiet(25)]), ['speech-start@2', 'speech-end@49']);
  });
});
