/**
 * Speech: the built-in pocketsphinx engine on the test corpus (flite voices through G.711). For each
 * mode (grammar = intent routing, dictation = transcripts) with 1 and maxConcurrent recognitions at
 * once: the real-time factor (wall time from the first sample to the result / audio length, audio
 * fed as fast as the decoder takes it, process start and model load included) and the decoders' CPU
 * seconds per audio second (cutime+cstime of this process: the shells, cat and pocketsphinx it
 * waited for). Then, with audio paced like a call (20 ms frames in real time), the delay from the
 * last frame to the result — what a caller waits after they stop talking (plus the endpointer's
 * silence).
 */
import { readFileSync } from 'node:fs';
import { speechEngineConfigSchema } from '../../media/speech/engine-config';
import { buildGrammar, matchGrammar } from '../../media/speech/jsgf';
import { PocketsphinxEngine } from '../../media/speech/pocketsphinx';
import { FLITE_VOICES, pcmFrames, speak, wordErrorRate, type SpokenClip } from '../../media/test/helpers/speech-corpus';
import { DICTATION_SENTENCES, INTENT_SETS } from '../../media/test/helpers/speech-sets';
import { CLK_TCK, load, machine, percentile, round, sleep, table, writeResult, type BenchResult } from './lib';

/** CPU seconds of the processes this one has waited for (children and their waited-for children). */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / CLK_TCK;
}

interface Row {
  mode: 'grammar' | 'dictation';
  concurrent: number;
  paced: boolean;
  recognitions: number;
  audioS: number;
  wallS: number;
  rtf: number;
  cpuPerAudioS: number;
  /** Paced runs: last frame → result, ms (median, p95). */
  latencyP50Ms?: number;
  latencyP95Ms?: number;
  /** grammar: share routed right; dictation: WER. */
  quality: string;
  loadAvg: [number, number, number];
}

export async function runSpeech(quick: boolean, log: (s: string) => void = () => undefined): Promise<BenchResult> {
  const maxConcurrent = 2;
  const engine = new PocketsphinxEngine({ config: speechEngineConfigSchema.parse({ maxConcurrent }) });
  if (engine.unavailableReason) throw new Error(`speech bench: ${engine.unavailableReason}`);
  const grammar = buildGrammar(INTENT_SETS, { dictionary: engine.dictionary() });
  const voices = quick ? (['slt', 'kal'] as const) : FLITE_VOICES;
  const intentClips: Array<{ clip: SpokenClip; intent: string }> = [];
  const dictationClips: SpokenClip[] = [];
  for (const v of voices) {
    for (const set of INTENT_SETS) for (const a of quick ? set.answers.slice(0, 1) : set.answers) intentClips.push({ clip: await speak(a, v), intent: set.name });
    for (const s of quick ? DICTATION_SENTENCES.slice(0, 2) : DICTATION_SENTENCES) dictationClips.push(await speak(s, v));
  }
  const loadBefore = load();
  const rows: Row[] = [];

  const runSet = async (mode: Row['mode'], concurrent: number, paced: boolean): Promise<Row> => {
    const clips = mode === 'grammar' ? intentClips.map((c) => c.clip) : dictationClips;
    const want = mode === 'grammar' ? intentClips.map((c) => c.intent) : [];
    const texts: string[] = new Array(clips.length).fill('');
    const latencies: number[] = [];
    const cpu0 = childrenCpuSeconds();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrent }, async () => {
        while (next < clips.length) {
          const i = next++;
          const rec = engine.recognize({ mode, grammar: grammar.jsgf, tag: `bench-${i}` });
          const frames = pcmFrames(clips[i]);
          if (paced) {
            const start = performance.now();
            for (let f = 0; f < frames.length; f++) {
              const due = start + f * 20;
              const wait = due - performance.now();
              if (wait > 0) await sleep(wait);
              rec.write(frames[f]);
            }
          } else {
            for (const f of frames) rec.write(f);
          }
          const tEnd = performance.now();
          const hyp = await rec.end();
          latencies.push(performance.now() - tEnd);
          texts[i] = hyp?.text ?? '';
        }
      }),
    );
    const wallS = (performance.now() - t0) / 1000;
    const cpuS = childrenCpuSeconds() - cpu0;
    const audioS = clips.reduce((s, c) => s + c.durationMs, 0) / 1000;
    let quality: string;
    if (mode === 'grammar') {
      const ok = texts.filter((t, i) => matchGrammar(grammar, t)?.intent === want[i]).length;
      quality = `${round((100 * ok) / texts.length)} % intents right (${ok}/${texts.length})`;
    } else {
      let e = 0;
      let n = 0;
      texts.forEach((t, i) => {
        const w = wordErrorRate(clips[i].text, t);
        e += w.errors;
        n += w.words;
      });
      quality = `WER ${round((100 * e) / n)} %`;
    }
    latencies.sort((a, b) => a - b);
    const row: Row = {
      mode,
      concurrent,
      paced,
      recognitions: clips.length,
      audioS: round(audioS),
      wallS: round(wallS, 2),
      // With n decoders at once each takes longer; per recognition, wall × n / audio.
      rtf: round((wallS * concurrent) / audioS, 2),
      cpuPerAudioS: round(cpuS / audioS, 3),
      latencyP50Ms: paced ? round(percentile(latencies, 50)) : undefined,
      latencyP95Ms: paced ? round(percentile(latencies, 95)) : undefined,
      quality,
      loadAvg: load(),
    };
    log(`speech ${mode} ×${concurrent}${paced ? ' paced' : ''}: RTF ${row.rtf}, ${row.cpuPerAudioS} CPU-s/audio-s${paced ? `, result ${row.latencyP50Ms} ms after the last frame (p95 ${row.latencyP95Ms})` : ''}; ${quality}; load ${row.loadAvg.join(' ')}`);
    return row;
  };

  try {
    for (const mode of ['grammar', 'dictation'] as const) {
      for (const n of [1, maxConcurrent]) rows.push(await runSet(mode, n, false));
    }
    for (const n of [1, maxConcurrent]) rows.push(await runSet('grammar', n, true));
  } finally {
    await engine.close();
  }

  const find = (mode: Row['mode'], n: number, paced: boolean): Row | undefined => rows.find((r) => r.mode === mode && r.concurrent === n && r.paced === paced);
  const g1 = find('grammar', 1, false);
  const gN = find('grammar', maxConcurrent, false);
  const d1 = find('dictation', 1, false);
  const p1 = find('grammar', 1, true);
  const result: BenchResult = {
    bench: 'speech',
    date: new Date().toISOString(),
    quick,
    method: `pocketsphinx_continuous (Debian 5prealpha, en-us 16 kHz model, telephone CMN mean, nice 10), one process per recognition; ${intentClips.length} intent answers and ${dictationClips.length} dictation sentences from flite voices ${voices.join(', ')} through the telephone band and G.711 μ-law; RTF = wall × concurrency / audio (audio fed unpaced, process start included); CPU from cutime+cstime of the bench process; paced = 20 ms frames in real time`,
    machine: machine(),
    rows,
    verdicts: [
      {
        target: 'speech: grammar-mode (intent) recognition CPU per audio second (issue: ~0.1; reported)',
        measured: `${g1?.cpuPerAudioS} CPU-s/audio-s alone, ${gN?.cpuPerAudioS} with ${maxConcurrent} at once; RTF ${g1?.rtf} / ${gN?.rtf}; ${g1?.quality}`,
        met: null,
        loadAvg: g1?.loadAvg ?? load(),
      },
      {
        target: 'speech: dictation (transcript) CPU per audio second (reported)',
        measured: `${d1?.cpuPerAudioS} CPU-s/audio-s, RTF ${d1?.rtf}; ${d1?.quality}`,
        met: null,
        loadAvg: d1?.loadAvg ?? load(),
      },
      {
        target: 'speech: result after the caller stops (grammar, paced audio; reported)',
        measured: `median ${p1?.latencyP50Ms} ms, p95 ${p1?.latencyP95Ms} ms after the last frame`,
        met: null,
        loadAvg: p1?.loadAvg ?? load(),
      },
    ],
  };
  const md = [
    `### Speech engine (${result.date.slice(0, 16)}Z${quick ? ', quick' : ''}; load avg before ${loadBefore.join(' ')})`,
    '',
    table(
      ['mode', 'at once', 'audio', 'recognitions', 'audio s', 'RTF', 'CPU-s / audio-s', 'result after last frame p50 / p95 ms', 'accuracy', 'load avg after'],
      rows.map((r) => [r.mode, r.concurrent, r.paced ? 'paced' : 'unpaced', r.recognitions, r.audioS, r.rtf, r.cpuPerAudioS, r.paced ? `${r.latencyP50Ms} / ${r.latencyP95Ms}` : '-', r.quality, r.loadAvg.join(' ')]),
    ),
  ].join('\n');
  writeResult(result, md);
  return result;
}
