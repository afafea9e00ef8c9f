import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Recognition, RecognitionEvents, RecognitionOptions, SpeechEngine, SpeechHypothesis, SpeechWord } from './contract';
import type { SpeechEngineConfig } from './engine-config';
import { SpeechError } from './errors';
import { loadDictionary } from './jsgf';
import { Upsampler8to16 } from './resample';
import type { Log } from '../../lib/log';

/**
 * The built-in engine: Debian's pocketsphinx 5prealpha, one `pocketsphinx_continuous` process per
 * recognition fed 16 kHz audio on stdin. A process per recognition costs ~0.2 s of start-up (model
 * load) but isolates the C decoder: a crash or a hang kills one recognition, never the daemon, and
 * `nice` plus the concurrency limit keep speech from starving the media path.
 */

/**
 * The cepstral mean pocketsphinx starts live normalisation from, measured on telephone speech (flite
 * voices through the 300–3400 Hz band, G.711 μ-law, upsampled by resample.ts; the mean over all
 * frames after ~3 minutes). The model's own value is for wide-band speech; starting from it, the
 * first seconds of a telephone utterance decode as nonsense until the running mean catches up, which
 * for a 2-second answer is the whole answer. Re-measure with `npm run bench:run -- --only speech`.
 */
export const TELEPHONE_CMN_INIT = [40.16, 17.31, -40.93, 24.7, -31.73, 2.44, -12.09, -9.28, -7.22, -2.82, -5.15, -5.64, -1.24];

/** Measured (README "Speech engine"): what transcripts from this engine are good for. */
export const POCKETSPHINX_QUALITY = 'keyword-grade: ~45-50 % WER on synthetic telephone speech (flite through G.711), worse on real callers';

/** Audio written to the process in one go: 100 ms at 16 kHz, so not one pipe write per 20 ms frame. */
const CHUNK_BYTES = 3200;
/** Audio queued to a process that does not keep up (~30 s) before we drop instead of buffering. */
const MAX_QUEUED_BYTES = 1024 * 1024;
/** pocketsphinx prints an utterance's hypothesis and word lines in one burst; after this quiet it is complete. */
const HYP_SETTLE_MS = 40;
/** How long end() waits for the decoder after stdin closes, beyond 1 s per 10 s of audio given. */
const END_GRACE_MS = 15000;
const STDERR_TAIL = 2048;

export type EngineLogger = Pick<Log, 'info' | 'warn'>;

export interface PocketsphinxOptions {
  config: SpeechEngineConfig;
  log?: EngineLogger;
  /** Where the engine keeps its adapted model directory and grammar files (default: os.tmpdir()). */
  workDir?: string;
  /** Overrides TELEPHONE_CMN_INIT (a site that measured its own trunks). */
  cmnInit?: readonly number[];
}

export interface EngineCounters {
  recognitions: number;
  busy: number;
  failed: number;
  /** 8 kHz samples dropped: beyond maxAudioS, or queued while the process did not keep up. */
  droppedSamples: number;
}

interface ModelPaths {
  hmm: string;
  dict: string;
  lm: string;
  binary: string;
}

export class PocketsphinxEngine implements SpeechEngine {
  readonly name = 'pocketsphinx';
  readonly quality = POCKETSPHINX_QUALITY;
  readonly counters: EngineCounters = { recognitions: 0, busy: 0, failed: 0, droppedSamples: 0 };
  private readonly running = new Set<PocketsphinxRecognition>();
  private readonly problem: string | null;
  private paths: ModelPaths | null = null;
  private dir: string | null = null;
  private dict: Set<string> | null = null;
  private seq = 0;
  private closed = false;

  constructor(private readonly opts: PocketsphinxOptions) {
    this.problem = findProblem(opts.config);
  }

  get active(): number {
    return this.running.size;
  }

  get limit(): number {
    return this.opts.config.maxConcurrent;
  }

  /** null when the binary and model are there; otherwise why not (what SPEECH_UNAVAILABLE says). */
  get unavailableReason(): string | null {
    return this.closed ? 'the engine is closed' : this.problem;
  }

  /** The dictionary's words, for building grammars (jsgf.ts buildGrammar). */
  dictionary(): ReadonlySet<string> {
    this.assertAvailable();
    this.dict ??= loadDictionary(join(this.opts.config.modelDir, 'cmudict-en-us.dict'));
    return this.dict;
  }

  recognize(opts: RecognitionOptions): Recognition {
    this.assertAvailable();
    if (this.running.size >= this.opts.config.maxConcurrent) {
      this.counters.busy++;
      throw new SpeechError('SPEECH_BUSY', `${this.running.size} recognitions already running (speech.engine.maxConcurrent)`, {
        limit: this.opts.config.maxConcurrent,
      });
    }
    if (opts.mode === 'grammar' && !opts.grammar?.trim()) {
      throw new SpeechError('SPEECH_GRAMMAR_INVALID', 'grammar mode needs a JSGF grammar (media/speech/jsgf.ts buildGrammar)');
    }
    let paths: ModelPaths;
    try {
      paths = this.prepare();
    } catch (err) {
      throw new SpeechError('SPEECH_UNAVAILABLE', `cannot prepare the pocketsphinx model copy: ${(err as Error).message}`);
    }
    const id = ++this.seq;
    let grammarFile: string | null = null;
    const args = ['-hmm', paths.hmm, '-dict', paths.dict, '-cmn', 'live', '-time', 'yes',
      // Digital silence (all-zero μ-law 0xff) has no log energy; a little (seeded) dither keeps the
      // features finite.
      '-dither', 'yes', '-seed', '1',
      // Spectral noise subtraction, measured on the corpus both ways: dictation WER 54 % with it,
      // 46 % without; grammar intent accuracy 88 % with it, 82 % without. So per mode.
      '-remove_noise', opts.mode === 'grammar' ? 'yes' : 'no'];
    if (opts.mode === 'grammar') {
      grammarFile = join(this.workDir(), `grammar-${process.pid}-${id}.jsgf`);
      try {
        writeFileSync(grammarFile, opts.grammar ?? '');
      } catch (err) {
        throw new SpeechError('SPEECH_ENGINE_FAILED', `cannot write the grammar file: ${(err as Error).message}`);
      }
      args.push('-jsgf', grammarFile);
    } else {
      args.push('-lm', paths.lm);
    }
    let child: ChildProcessWithoutNullStreams;
    try {
      // pocketsphinx_continuous fopen()s its -infile, and Node's stdio pipes are socketpairs, which
      // /dev/stdin cannot be opened on (ENXIO); `cat` in a process substitution turns the socket
      // into a real pipe while the decoder stays this child's own pid (exec), so its death is seen
      // at once. The child leads its own process group: close() ends decoder and cat together; if
      // the daemon dies instead, the socket closes, cat ends and the decoder finishes on end of file.
      const script = `exec nice -n ${this.opts.config.nice} "$0" "$@" -infile /dev/stdin < <(exec cat 2>/dev/null)`;
      child = spawn('/bin/bash', ['-c', script, paths.binary, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      if (grammarFile) rmQuiet(grammarFile);
      throw new SpeechError('SPEECH_UNAVAILABLE', `cannot start ${paths.binary}: ${(err as Error).message}`);
    }
    this.counters.recognitions++;
    const rec = new PocketsphinxRecognition(child, {
      mode: opts.mode,
      tag: opts.tag ?? `rec-${id}`,
      maxSamples: this.opts.config.maxAudioS * 8000,
      counters: this.counters,
      log: this.opts.log,
      onDone: () => {
        this.running.delete(rec);
        if (grammarFile) rmQuiet(grammarFile);
      },
    });
    this.running.add(rec);
    return rec;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const rec of [...this.running]) rec.close();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
    this.paths = null;
  }

  private assertAvailable(): void {
    const why = this.unavailableReason;
    if (why) throw new SpeechError('SPEECH_UNAVAILABLE', `pocketsphinx cannot run: ${why}`);
  }

  private workDir(): string {
    this.dir ??= mkdtempSync(join(this.opts.workDir ?? tmpdir(), 'ccedge-pocketsphinx-'));
    return this.dir;
  }

  /**
   * The model as shipped, except feat.params: pocketsphinx 5prealpha lets the model's feat.params
   * override -cmninit given on the command line, so the telephone mean only takes effect in a copy.
   * The other files are symlinks (the acoustic model is ~30 MB).
   */
  private prepare(): ModelPaths {
    if (this.paths) return this.paths;
    const { modelDir, binary } = this.opts.config;
    const src = join(modelDir, 'en-us');
    const hmm = join(this.workDir(), 'hmm');
    rmSync(hmm, { recursive: true, force: true });
    mkdirSync(hmm);
    for (const f of readdirSync(src)) if (f !== 'feat.params') symlinkSync(join(src, f), join(hmm, f));
    const cmn = (this.opts.cmnInit ?? TELEPHONE_CMN_INIT).map((v) => v.toFixed(2)).join(',');
    const params = readFileSync(join(src, 'feat.params'), 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('-cmninit') && !l.startsWith('-cmn '))
      .concat([`-cmninit ${cmn}`, ''])
      .join('\n');
    writeFileSync(join(hmm, 'feat.params'), params);
    this.paths = { hmm, dict: join(modelDir, 'cmudict-en-us.dict'), lm: join(modelDir, 'en-us.lm.bin'), binary: resolveBinary(binary) ?? binary };
    return this.paths;
  }
}

function findProblem(config: SpeechEngineConfig): string | null {
  if (resolveBinary(config.binary) === null) return `${config.binary} not found (apt-get install pocketsphinx)`;
  const need = [join('en-us', 'feat.params'), join('en-us', 'mdef'), 'cmudict-en-us.dict', 'en-us.lm.bin'];
  for (const f of need) {
    if (!existsSync(join(config.modelDir, f))) return `model file ${join(config.modelDir, f)} missing (apt-get install pocketsphinx-en-us)`;
  }
  return null;
}

function resolveBinary(name: string): string | null {
  const candidates = isAbsolute(name) || name.includes('/') ? [name] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

function rmQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

interface RecognitionParams {
  mode: RecognitionOptions['mode'];
  tag: string;
  maxSamples: number;
  counters: EngineCounters;
  log?: EngineLogger;
  onDone: () => void;
}

/** Words pocketsphinx prints that are not words a caller said. */
function isMarker(word: string): boolean {
  return word === '<s>' || word === '</s>' || word === '<sil>' || word === '(NULL)' || word.startsWith('[') || word.startsWith('++');
}

const WORD_LINE = /^(\S+) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$/;

class PocketsphinxRecognition extends EventEmitter<RecognitionEvents> implements Recognition {
  private readonly up = new Upsampler8to16();
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private chunkLen = 0;
  private samples = 0;
  private stdoutRest = '';
  private stderrTail = '';
  private pendingWords: SpeechWord[] | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  private last: SpeechHypothesis | null = null;
  private state: 'open' | 'ending' | 'done' = 'open';
  private exited = false;
  private failure: SpeechError | null = null;
  private endPromise: Promise<SpeechHypothesis | null> | null = null;
  private resolveEnd: ((h: SpeechHypothesis | null) => void) | null = null;
  private rejectEnd: ((e: Error) => void) | null = null;
  private endTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly p: RecognitionParams,
  ) {
    super();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => this.onStdout(s));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      this.stderrTail = (this.stderrTail + s).slice(-STDERR_TAIL);
    });
    // EPIPE when the process died mid-write: the exit handler reports it.
    child.stdin.on('error', () => undefined);
    child.on('error', (err) => this.fail(new SpeechError('SPEECH_UNAVAILABLE', `cannot run pocketsphinx: ${err.message}`)));
    // When the decoder is gone, `cat` would keep the stdio pipes open until our stdin ends: end it,
    // so 'close' (all output read) follows.
    child.on('exit', () => child.stdin.destroy());
    child.on('close', (code, signal) => this.onExit(code, signal));
  }

  write(samples: Int16Array): void {
    if (this.state !== 'open') return;
    if (this.samples + samples.length > this.p.maxSamples || this.child.stdin.writableLength > MAX_QUEUED_BYTES) {
      this.p.counters.droppedSamples += samples.length;
      return;
    }
    this.samples += samples.length;
    const wide = this.up.push(samples);
    for (let i = 0; i < wide.length; i++) {
      this.chunk.writeInt16LE(wide[i], this.chunkLen);
      this.chunkLen += 2;
      if (this.chunkLen === CHUNK_BYTES) this.flushChunk();
    }
  }

  end(): Promise<SpeechHypothesis | null> {
    if (this.endPromise) return this.endPromise;
    this.endPromise = new Promise<SpeechHypothesis | null>((resolve, reject) => {
      this.resolveEnd = resolve;
      this.rejectEnd = reject;
    });
    if (this.state === 'done') {
      this.settle();
    } else {
      this.state = 'ending';
      this.flushChunk();
      this.child.stdin.end();
      const waitMs = END_GRACE_MS + Math.ceil(this.samples / 80);
      this.endTimer = setTimeout(() => {
        this.fail(new SpeechError('SPEECH_ENGINE_FAILED', `pocketsphinx did not finish within ${waitMs} ms`));
        this.kill();
      }, waitMs);
    }
    return this.endPromise;
  }

  close(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.kill();
    this.finish();
  }

  private flushChunk(): void {
    if (this.chunkLen === 0) return;
    const out = this.chunk.subarray(0, this.chunkLen);
    this.chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    this.chunkLen = 0;
    if (!this.exited) this.child.stdin.write(out);
  }

  private onStdout(s: string): void {
    const text = this.stdoutRest + s;
    const lines = text.split('\n');
    this.stdoutRest = lines.pop() ?? '';
    for (const line of lines) this.onLine(line.trimEnd());
    if (this.pendingWords) {
      if (this.settleTimer) clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => this.emitPending(), HYP_SETTLE_MS);
    }
  }

  private onLine(line: string): void {
    const m = WORD_LINE.exec(line);
    if (!m) {
      // A hypothesis line starts the next utterance (its words follow as word lines).
      this.emitPending();
      this.pendingWords = [];
      return;
    }
    const words = (this.pendingWords ??= []);
    const word = m[1].replace(/\(\d+\)$/, '').toLowerCase();
    if (isMarker(m[1])) return;
    words.push({
      word,
      startMs: Math.round(Number(m[2]) * 1000),
      endMs: Math.round(Number(m[3]) * 1000),
      confidence: Math.min(1, Math.max(0, Number(m[4]))),
    });
  }

  private emitPending(): void {
    if (this.settleTimer) {
      clearTimeout(this.settleTimer);
      this.settleTimer = null;
    }
    const words = this.pendingWords;
    this.pendingWords = null;
    if (!words || words.length === 0 || this.state === 'done') return;
    let weighted = 0;
    let dur = 0;
    for (const w of words) {
      const d = Math.max(10, w.endMs - w.startMs);
      weighted += (w.confidence ?? 0) * d;
      dur += d;
    }
    const hyp: SpeechHypothesis = {
      text: words.map((w) => w.word).join(' '),
      confidence: dur > 0 ? weighted / dur : 0,
      startMs: words[0].startMs,
      endMs: words[words.length - 1].endMs,
      words,
    };
    this.last = hyp;
    this.emit('final', hyp);
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exited = true;
    if (this.stdoutRest) {
      this.onLine(this.stdoutRest.trimEnd());
      this.stdoutRest = '';
    }
    this.emitPending();
    if (this.state === 'done') return;
    if (code !== 0 && !this.failure) {
      const why = this.stderrTail.split('\n').filter((l) => /ERROR|FATAL/.test(l)).slice(-2).join(' | ') || `exit ${code ?? signal}`;
      this.fail(new SpeechError('SPEECH_ENGINE_FAILED', `pocketsphinx failed: ${why}`, { code, signal }));
    }
    if (this.state === 'ending' || this.failure) this.settle();
    else {
      // Exited while the caller was still writing (e.g. killed from outside).
      this.fail(new SpeechError('SPEECH_ENGINE_FAILED', `pocketsphinx exited early (${code ?? signal})`));
      this.settle();
    }
  }

  private fail(err: SpeechError): void {
    if (this.failure || this.state === 'done') return;
    this.failure = err;
    this.p.counters.failed++;
    this.p.log?.warn({ tag: this.p.tag, err: err.message }, 'speech recognition failed');
    // An 'error' event without a listener would throw out of a child-process callback.
    if (this.listenerCount('error') > 0) this.emit('error', err);
    if (this.exited || this.state === 'ending') this.settle();
  }

  private settle(): void {
    if (this.state !== 'done') {
      this.state = 'done';
      this.finish();
    }
    if (this.endTimer) clearTimeout(this.endTimer);
    if (this.failure) this.rejectEnd?.(this.failure);
    else this.resolveEnd?.(this.last);
    this.resolveEnd = null;
    this.rejectEnd = null;
  }

  private finish(): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    if (this.endTimer) clearTimeout(this.endTimer);
    this.p.onDone();
  }

  private kill(): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // The group is already gone.
    }
  }
}
