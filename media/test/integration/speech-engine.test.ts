import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Recognition, RecognitionMode, SpeechHypothesis } from '../../speech/contract';
import { speechEngineConfigSchema } from '../../speech/engine-config';
import { isSpeechError } from '../../speech/errors';
import { buildGrammar, matchGrammar, type Grammar } from '../../speech/jsgf';
import { createSpeechEngine, PocketsphinxEngine } from '../../speech';
import { FLITE_VOICES, pcmFrames, silenceFrames, speak, wordErrorRate, type CorpusVoice, type SpokenClip } from '../helpers/speech-corpus';
import { DICTATION_SENTENCES, INTENT_SETS } from '../helpers/speech-sets';

/** Processes whose command line mentions `dir` (the engine's work directory for this test). */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) pids.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

async function recognise(engine: PocketsphinxEngine, clip: SpokenClip, mode: RecognitionMode, grammar?: Grammar): Promise<SpeechHypothesis | null> {
  const rec = engine.recognize({ mode, grammar: grammar?.jsgf, tag: `${clip.voice}: ${clip.text}` });
  for (const f of pcmFrames(clip)) rec.write(f);
  return rec.end();
}

/** Runs `jobs` with at most `n` at once (the engine's limit). */
async function pool<T>(n: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]();
      }
    }),
  );
  return out;
}

describe('speech engine: pocketsphinx on telephone audio (flite and espeak voices through G.711)', function () {
  this.timeout(600000);
  const workDir = mkdtempSync(join(tmpdir(), 'ccedge-speech-test-'));
  const engine = createSpeechEngine(speechEngineConfigSchema.parse({ maxConcurrent: 2 }), { workDir });
  let grammar: Grammar;

  before(function () {
    if (engine.unavailableReason) throw new Error(`pocketsphinx must be installed for this test: ${engine.unavailableReason}`);
    grammar = buildGrammar(INTENT_SETS, { dictionary: engine.dictionary() });
  });

  after(async () => {
    await engine.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('routes spoken answers to the right intent in grammar mode (flite voices; espeak as the hard case)', async () => {
    const voices: CorpusVoice[] = [...FLITE_VOICES, 'espeak'];
    const cases = voices.flatMap((voice) => INTENT_SETS.flatMap((set) => set.answers.map((text) => ({ voice, text, intent: set.name }))));
    const results = await pool(
      engine.limit,
      cases.map((c) => async () => {
        const hyp = await recognise(engine, await speak(c.text, c.voice), 'grammar', grammar);
        return { ...c, heard: hyp?.text ?? '', got: hyp ? matchGrammar(grammar, hyp.text)?.intent ?? null : null };
      }),
    );
    const score = (vs: readonly CorpusVoice[]): { ok: number; n: number } => {
      const rs = results.filter((r) => vs.includes(r.voice));
      return { ok: rs.filter((r) => r.got === r.intent).length, n: rs.length };
    };
    for (const r of results) if (r.got !== r.intent) console.log(`      miss ${r.voice}: "${r.text}" heard "${r.heard}" → ${r.got ?? 'nothing'}`);
    for (const v of voices) {
      const s = score([v]);
      console.log(`      ${v}: ${s.ok}/${s.n}`);
    }
    const flite = score(FLITE_VOICES);
    const espeak = score(['espeak']);
    console.log(`      intent accuracy, flite voices: ${((100 * flite.ok) / flite.n).toFixed(1)} % (${flite.ok}/${flite.n}); espeak: ${((100 * espeak.ok) / espeak.n).toFixed(1)} % (${espeak.ok}/${espeak.n})`);
    assert.ok(flite.ok / flite.n >= 0.7, `flite intent accuracy ${flite.ok}/${flite.n} is below the 70 % floor`);
  });

  it('transcribes in dictation mode with word times inside the audio (WER printed, keyword grade)', async () => {
    const voices: CorpusVoice[] = ['kal', 'slt', 'rms', 'awb'];
    const cases = voices.flatMap((voice) => DICTATION_SENTENCES.map((text) => ({ voice, text })));
    const results = await pool(
      engine.limit,
      cases.map((c) => async () => {
        const clip = await speak(c.text, c.voice);
        const hyp = await recognise(engine, clip, 'dictation');
        return { ...c, clip, hyp };
      }),
    );
    let errors = 0;
    let words = 0;
    for (const r of results) {
      const w = wordErrorRate(r.text, r.hyp?.text ?? '');
      errors += w.errors;
      words += w.words;
      if (r.hyp) {
        assert.ok(r.hyp.words.length > 0 && r.hyp.confidence >= 0 && r.hyp.confidence <= 1);
        for (const word of r.hyp.words) {
          assert.ok(word.startMs >= 0 && word.endMs >= word.startMs && word.endMs <= r.clip.durationMs + 20, `${word.word} ${word.startMs}-${word.endMs}`);
        }
      }
    }
    const wer = errors / words;
    console.log(`      dictation WER (flite kal, slt, rms, awb through G.711): ${(100 * wer).toFixed(1)} % (${errors} errors / ${words} words)`);
    // Keyword grade: most words right. The floor is far above what is measured so only a broken
    // engine (wrong sample rate, wrong normalisation: ~90 % WER) fails it.
    assert.ok(wer < 0.6, `dictation WER ${wer}`);
  });

  it('refuses a recognition beyond maxConcurrent with SPEECH_BUSY, and close() ends the process and frees the slot', async () => {
    const a = engine.recognize({ mode: 'dictation' });
    const b = engine.recognize({ mode: 'dictation' });
    assert.equal(engine.active, 2);
    assert.throws(() => engine.recognize({ mode: 'dictation' }), (err: unknown) => isSpeechError(err, 'SPEECH_BUSY'));
    // Both decoders run (the shell, cat and pocketsphinx each mention the work directory).
    await until(() => processesUsing(workDir).length >= 2, 'decoders running');
    a.close();
    b.close();
    assert.equal(engine.active, 0);
    await until(() => processesUsing(workDir).length === 0, 'decoders gone after close()');
    const c: Recognition = engine.recognize({ mode: 'dictation' });
    c.close();
    assert.equal(await c.end(), null);
  });

  it('gives nothing (not a made-up intent) for line noise or digital silence, then recognises speech after digital silence', async () => {
    const noise = engine.recognize({ mode: 'grammar', grammar: grammar.jsgf });
    for (const f of silenceFrames(3000)) noise.write(f);
    assert.equal(await noise.end(), null);

    const clip = await speak('I want to report fraud', 'slt');
    const rec = engine.recognize({ mode: 'grammar', grammar: grammar.jsgf });
    for (let i = 0; i < 100; i++) rec.write(new Int16Array(160));
    for (const f of pcmFrames(clip)) rec.write(f);
    const finals: SpeechHypothesis[] = [];
    rec.on('final', (h) => finals.push(h));
    const hyp = await rec.end();
    assert.equal(matchGrammar(grammar, hyp?.text ?? '')?.intent, 'fraud', `heard "${hyp?.text}"`);
    assert.deepEqual(finals[finals.length - 1], hyp);
    // Word times count from the first sample given, digital silence included (2 s).
    assert.ok((hyp?.startMs ?? 0) >= 2000, `starts at ${hyp?.startMs}`);
  });

  it('drops and counts audio beyond maxAudioS instead of buffering it', async () => {
    const small = new PocketsphinxEngine({ config: speechEngineConfigSchema.parse({ maxAudioS: 1 }), workDir });
    try {
      const rec = small.recognize({ mode: 'dictation' });
      for (const f of silenceFrames(3000)) rec.write(f);
      await rec.end();
      assert.equal(small.counters.droppedSamples, 2 * 8000);
    } finally {
      await small.close();
    }
  });

  it('fails a grammar pocketsphinx cannot parse with SPEECH_ENGINE_FAILED and its reason; missing binary or model is SPEECH_UNAVAILABLE', async () => {
    const rec = engine.recognize({ mode: 'grammar', grammar: '#JSGF V1.0;\ngrammar x;\npublic <a> = ( hello | ;\n' });
    const errors: Error[] = [];
    rec.on('error', (e) => errors.push(e));
    for (const f of silenceFrames(500)) rec.write(f);
    await assert.rejects(rec.end(), (err: unknown) => isSpeechError(err, 'SPEECH_ENGINE_FAILED') && /JSGF/.test(err.message));
    assert.equal(errors.length, 1);
    assert.equal(engine.active, 0);
    assert.throws(() => engine.recognize({ mode: 'grammar' }), (err: unknown) => isSpeechError(err, 'SPEECH_GRAMMAR_INVALID'));

    const noBinary = new PocketsphinxEngine({ config: speechEngineConfigSchema.parse({ binary: 'no-such-pocketsphinx' }) });
    assert.match(noBinary.unavailableReason ?? '', /no-such-pocketsphinx not found/);
    assert.throws(() => noBinary.recognize({ mode: 'dictation' }), (err: unknown) => isSpeechError(err, 'SPEECH_UNAVAILABLE'));
    const noModel = new PocketsphinxEngine({ config: speechEngineConfigSchema.parse({ modelDir: join(workDir, 'nothing-here') }) });
    assert.throws(() => noModel.recognize({ mode: 'dictation' }), (err: unknown) => isSpeechError(err, 'SPEECH_UNAVAILABLE') && /model file/.test(err.message));
  });
});

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
