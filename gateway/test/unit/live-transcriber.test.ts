import assert from 'node:assert/strict';
import { PocketsphinxEngine } from '../../../media/speech/pocketsphinx';
import { speechEngineConfigSchema } from '../../../media/speech/engine-config';
import { speak, ulawFrames } from '../../../media/test/helpers/speech-corpus';
import { linearToUlaw } from '../../../media/tones/g711';
import { CallTranscript, type StoredUtterance } from '../../transcripts/call-transcript';
import { KeywordMatcher } from '../../transcripts/keywords';
import { LiveTranscriber } from '../../transcripts/live-transcriber';

const quiet = { warn: () => undefined, info: () => undefined };

function overlap(said: string, heard: string): number {
  const h = new Set(heard.split(' '));
  return said.split(' ').filter((w) => h.has(w)).length;
}

/** `n` frames of quiet line noise (about -66 dBFS), µ-law: a trunk is never digitally silent. */
function noise(n: number): Buffer[] {
  let x = 12345;
  return Array.from({ length: n }, () => {
    const f = Buffer.alloc(160);
    for (let i = 0; i < 160; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      f[i] = linearToUlaw((x % 33) - 16);
    }
    return f;
  });
}

/** Pushes 20 ms frames at the pace RTP brings them. */
async function play(frames: Buffer[], push: (f: Buffer) => void): Promise<void> {
  const start = Date.now();
  for (let i = 0; i < frames.length; i++) {
    push(frames[i]);
    const wait = start + (i + 1) * 20 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

describe('live transcription with the on-site engine (pocketsphinx)', function () {
  this.timeout(120_000);
  const engine = new PocketsphinxEngine({ config: speechEngineConfigSchema.parse({ maxConcurrent: 2 }) });
  before(function () {
    if (engine.unavailableReason) this.skip();
  });
  after(() => engine.close());

  it('transcribes both sides on one timeline, rotating recognitions at utterance boundaries without losing words', async () => {
    const first = 'hello i would like to cancel my subscription';
    const second = 'i lost my credit card yesterday';
    const answer = 'thank you for calling how can i help you';
    const [a, b, c] = await Promise.all([speak(first, 'awb'), speak(second, 'awb'), speak(answer, 'awb')]);
    const got: StoredUtterance[] = [];
    const sink = new CallTranscript('c1', { keywords: new KeywordMatcher([]), maxUtterances: 100, maxUtteranceChars: 500, quality: engine.quality }, { onUtterance: (u) => got.push(u) });
    // segmentS 1: every utterance boundary rotates the recognition. With maxConcurrent 2 and two
    // sides, the new one is refused (SPEECH_BUSY) until the old has flushed: its audio must wait.
    const live = new LiveTranscriber({ callId: 'c1', codec: 'PCMU', engine, sink, speakers: ['caller', 'agent'], segmentS: 1, log: quiet });
    // The agent sends nothing while the caller speaks (and the other way round): the silent side is padded.
    await play([...ulawFrames(a), ...noise(75), ...ulawFrames(b)], (f) => live.pushCaller(f));
    await play([...noise(50), ...ulawFrames(c), ...noise(50)], (f) => live.pushAgent(f));
    await live.stop();
    const caller = got.filter((u) => u.speaker === 'caller');
    const agent = got.filter((u) => u.speaker === 'agent');
    console.log(`      heard: ${got.map((u) => `[${u.startMs}-${u.endMs} ${u.speaker}] ${u.text}`).join(' | ')}`);
    const callerText = caller.map((u) => u.text).join(' ');
    assert.ok(overlap(first, callerText) >= 5, callerText);
    assert.ok(overlap(second, callerText) >= 4, `the words after a rotation are not lost: ${callerText}`);
    assert.ok(overlap(answer, agent.map((u) => u.text).join(' ')) >= 5, JSON.stringify(agent));
    // One timeline: the caller's second sentence after the first, the agent's answer after both.
    const firstEnd = caller[0].endMs;
    assert.ok(caller[caller.length - 1].startMs > firstEnd, JSON.stringify(caller));
    const lastCallerEnd = Math.max(...caller.map((u) => u.endMs));
    assert.ok(agent[0].startMs >= lastCallerEnd - 300, `agent at ${agent[0].startMs} ms, caller until ${lastCallerEnd} ms`);
    assert.equal(live.untranscribed, 0);
    assert.equal(engine.active, 0, 'every recognition released');
  });
});
