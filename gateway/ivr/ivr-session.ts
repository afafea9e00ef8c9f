import { EventEmitter } from 'node:events';
import type { DtmfDigit, DtmfDigitEvent } from '../../media';
import type { SpeechEngine } from '../../media';
import type { G711Codec } from '../../media';
import type { IntentDecisionHow } from '../speech/intent-classifier';
import { ivrPromptNames, type IvrAction, type IvrConfig, type IvrMenu } from './config';
import { PromptPlayer, type FrameSink, type PromptPlayback, type TickSource } from '../../media';
import type { PromptSource } from './prompts';
import { SpeechCapture, type CallerAudio, type CaptureResult, type EndpointerLimits, type FrameEndpointer } from './speech-capture';
import type { SpeechMenuModel } from './speech-menus';
import type { Log } from '../../lib/log';

/** How a speech menu decided: what was recognised (stays on site) and how sure. */
export interface IvrSpeechDecision {
  text: string;
  confidence: number;
  how: IntentDecisionHow;
  /** Listening turns it took (1 or 2). */
  turns: number;
}

/** One listening turn of a speech menu, as the call's record keeps it. */
export interface IvrSpeechTurn {
  menu: string;
  turn: number;
  /**
   * recognised: an intent at or above minConfidence; rejected: below it, or no intent in what was
   * heard; no-input: nothing said; unavailable: the engine could not listen (busy, missing, failed).
   */
  result: 'recognised' | 'rejected' | 'no-input' | 'unavailable';
  text?: string;
  intent?: string;
  confidence?: number;
  how?: IntentDecisionHow;
  /** SpeechError code for `unavailable`. */
  code?: string;
}

/** Speech menus' needs: the on-site engine, the models of the menus, and the caller's audio. */
export interface IvrSpeech {
  engine: SpeechEngine;
  menus: ReadonlyMap<string, SpeechMenuModel>;
  /** The caller's RTP (the call's RtpSession). */
  audio: CallerAudio;
  /** The caller's audio payload type now. */
  payloadType: () => number;
  endpointer: (limits: EndpointerLimits) => FrameEndpointer;
}

/**
 * How the IVR ended. `path` is the choice keys taken, in order (e.g. ['3', '2'] for 3 in the
 * entry menu then 2 in the submenu); `menu` is the menu whose choice or onFail decided;
 * `fallback` is true when that was the menu's onFail (the caller did not choose).
 */
export type IvrResult =
  | { kind: 'intent'; intent: string; path: string[]; menu: string; fallback: boolean; speech?: IvrSpeechDecision }
  | { kind: 'callback'; path: string[]; menu: string; fallback: boolean }
  | {
      kind: 'abandoned';
      /**
       * closed: close() before a decision (the caller hung up, shutdown);
       * no-input: retries used up in a menu without onFail;
       * max-duration: still in the IVR after ivr.maxDurationS (e.g. onFail menus cycling);
       * error: the prompt source failed.
       */
      reason: 'closed' | 'no-input' | 'max-duration' | 'error';
      path: string[];
    };

export type DigitOrigin = 'rfc4733' | 'info';

export interface IvrSessionEvents {
  /** Exactly once per started session, including on close() (`abandoned`, reason `closed`). */
  done: [IvrResult];
  /** Entered a menu, or replayed it (attempt 1 = first play). */
  menu: [menu: string, attempt: number];
  prompt: [prompt: string];
  promptEnd: [prompt: string, how: 'finished' | 'barge-in'];
  digit: [digit: DtmfDigit, origin: DigitOrigin];
  /** Input that is no choice of the menu (the digits collected). */
  invalid: [menu: string, input: string];
  /** No key within the menu's timeoutS after its prompt. */
  timeout: [menu: string];
  /** A speech menu started listening (turn 1 or 2). */
  listening: [menu: string, turn: number];
  /** A speech menu's listening turn ended. */
  speech: [IvrSpeechTurn];
}

/** Opaque timer handle, as returned by IvrTimers.setTimeout. */
export type IvrTimer = object;

/** One-shot timers, injectable so timeouts are tested without sleeping (see ManualClock). */
export interface IvrTimers {
  setTimeout(fn: () => void, ms: number): IvrTimer;
  clearTimeout(t: IvrTimer): void;
}

export const realIvrTimers: IvrTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};

/** RFC 4733 digits: the call's RtpSession fits. */
export interface DigitSource {
  on(event: 'dtmf', listener: (ev: DtmfDigitEvent) => void): unknown;
  off(event: 'dtmf', listener: (ev: DtmfDigitEvent) => void): unknown;
}

export type IvrLog = Pick<Log, 'info' | 'warn' | 'debug'>;

export interface IvrSessionOptions {
  config: IvrConfig;
  prompts: PromptSource;
  /** The shared MediaClock: one prompt frame per tick. */
  clock: TickSource;
  /**
   * The call's RTP session: prompts go out on it (unless `player` plays them), and (unless
   * `digits` is given) RFC 4733 digits come from it.
   */
  rtp: Partial<FrameSink> & Partial<DigitSource>;
  /** Plays one prompt (a session on a media worker plays it there); default: a PromptPlayer on `rtp`. */
  player?: (frames: readonly Buffer[], onEnd: () => void) => PromptPlayback;
  codec: G711Codec;
  digits?: DigitSource;
  timers?: IvrTimers;
  log?: IvrLog;
  /** Absent: speech menus take keys only (their choices, then onFail). */
  speech?: IvrSpeech;
}

type State = 'idle' | 'loading' | 'prompt' | 'invalid-prompt' | 'waiting' | 'collecting' | 'listening' | 'done';

/** Listening turns of a speech menu before it falls back to its keys: the answer, and one "say again". */
const SPEECH_TURNS = 2;
/** Beyond noInputS + maxSpeechS a turn ends even if the end-pointer never decides (the engine's flush included). */
const TURN_SLACK_MS = 2000;

const ALL_CODECS: readonly G711Codec[] = ['PCMU', 'PCMA'];

/**
 * The IVR for one answered call: plays the menu prompt, collects digits (RFC 4733 from the RTP
 * session, SIP INFO through pushDigit), barge-in, timeouts, retries and invalid input, and ends
 * with one `done` carrying an intent, a callback request or `abandoned`.
 *
 * Choice keys may be several digits: a key that is also the prefix of a longer key waits
 * `interDigitTimeoutS` for the next digit; a prefix of no key is invalid at once.
 *
 * close() releases everything (player, timers, digit listener) and is safe to call at any time,
 * any number of times.
 */
export class IvrSession extends EventEmitter<IvrSessionEvents> {
  private state: State = 'idle';
  private codecValue: G711Codec;
  private readonly frames = new Map<string, Buffer[]>();
  private readonly timers: IvrTimers;
  private readonly digits: DigitSource | undefined;
  private readonly earlyDigits: Array<[DtmfDigit, DigitOrigin]> = [];
  private player: PromptPlayback | null = null;
  private playing: { prompt: string; then: () => void } | null = null;
  private inputTimer: IvrTimer | null = null;
  private maxTimer: IvrTimer | null = null;
  private menuName = '';
  private menu!: IvrMenu;
  private failures = 0;
  private buffer = '';
  private readonly path: string[] = [];
  private resultValue: IvrResult | null = null;
  private capture: SpeechCapture | null = null;
  /** Listening turns taken in the current menu. */
  private speechTurns = 0;
  /** The current speech menu takes keys only now (fallback, or the caller pressed one). */
  private speechOff = false;

  constructor(private readonly opts: IvrSessionOptions) {
    super();
    this.codecValue = opts.codec;
    this.timers = opts.timers ?? realIvrTimers;
    if (opts.digits) this.digits = opts.digits;
    else if (typeof opts.rtp.on === 'function' && typeof opts.rtp.off === 'function') this.digits = opts.rtp as DigitSource;
  }

  /** The result once done, else null. */
  get result(): IvrResult | null {
    return this.resultValue;
  }

  /** The current menu ('' before start). */
  get currentMenu(): string {
    return this.menuName;
  }

  get codec(): G711Codec {
    return this.codecValue;
  }

  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * Loads the prompts (both laws, so a codec change needs no I/O) and enters the entry menu.
   * Digits arriving meanwhile are kept and applied once the first prompt starts.
   */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'loading';
    this.digits?.on('dtmf', this.onRtpDigit);
    this.maxTimer = this.timers.setTimeout(() => this.finish({ kind: 'abandoned', reason: 'max-duration', path: [...this.path] }), this.opts.config.maxDurationS * 1000);
    try {
      const names = ivrPromptNames(this.opts.config);
      await Promise.all(
        ALL_CODECS.flatMap((codec) => names.map(async (name) => this.frames.set(frameKey(codec, name), await this.opts.prompts.frames(name, codec)))),
      );
    } catch (err) {
      this.opts.log?.warn({ err, code: 'IVR_PROMPTS_FAILED' }, 'IVR prompts could not be loaded');
      this.finish({ kind: 'abandoned', reason: 'error', path: [] });
      return;
    }
    if (this.state !== 'loading') return; // closed while loading
    this.enterMenu(this.opts.config.entry);
    const early = this.earlyDigits.splice(0);
    for (const [d, origin] of early) this.onDigit(d, origin);
  }

  /** A digit from outside the RTP stream (SIP INFO). Ignored once done. */
  pushDigit(digit: DtmfDigit, origin: DigitOrigin = 'info'): void {
    this.onDigit(digit, origin);
  }

  /** The call's codec changed (re-INVITE): a prompt being played restarts in the new law. */
  setCodec(codec: G711Codec): void {
    if (codec === this.codecValue) return;
    this.codecValue = codec;
    if (this.playing && this.player) {
      const { prompt, then } = this.playing;
      this.player.stop();
      this.play(prompt, then);
    }
  }

  /** Stops everything; emits `done` (abandoned, closed) if no result yet. Idempotent. */
  close(): void {
    if (this.state === 'done') return;
    this.finish({ kind: 'abandoned', reason: 'closed', path: [...this.path] });
  }

  private readonly onRtpDigit = (ev: DtmfDigitEvent): void => {
    this.onDigit(ev.digit, 'rfc4733');
  };

  private onDigit(d: DtmfDigit, origin: DigitOrigin): void {
    if (this.state === 'done') return;
    if (this.state === 'idle' || this.state === 'loading') {
      if (this.earlyDigits.length < 16) this.earlyDigits.push([d, origin]);
      return;
    }
    this.emit('digit', d, origin);
    this.opts.log?.debug({ menu: this.menuName, digit: d, origin }, 'IVR digit');
    if (this.menu.type === 'speech') {
      // A caller who presses keys wants keys: the menu stops listening for good.
      this.speechOff = true;
      this.capture?.close();
      this.capture = null;
    }
    if (this.playing) {
      // Barge-in: the caller knows what they want; stop talking.
      const prompt = this.playing.prompt;
      this.stopPlayer();
      this.emit('promptEnd', prompt, 'barge-in');
    }
    this.clearInputTimer();
    this.buffer += d;
    const key = this.buffer;
    const choices = this.menu.choices;
    const exact = Object.prototype.hasOwnProperty.call(choices, key) ? choices[key] : undefined;
    const longer = Object.keys(choices).some((k) => k.length > key.length && k.startsWith(key));
    if (exact && !longer) {
      this.take(key, exact);
    } else if (longer) {
      this.state = 'collecting';
      this.inputTimer = this.timers.setTimeout(() => {
        this.inputTimer = null;
        if (exact) this.take(key, exact);
        else this.invalid(key);
      }, this.opts.config.interDigitTimeoutS * 1000);
    } else {
      this.invalid(key);
    }
  }

  private enterMenu(name: string): void {
    this.menuName = name;
    this.menu = this.opts.config.menus[name];
    this.failures = 0;
    this.speechTurns = 0;
    this.speechOff = false;
    this.playMenu();
  }

  private playMenu(): void {
    this.buffer = '';
    this.emit('menu', this.menuName, this.failures + 1);
    this.opts.log?.debug({ menu: this.menuName, attempt: this.failures + 1 }, 'IVR menu');
    this.state = 'prompt';
    this.play(this.menu.prompt, () => (this.listens() ? this.listen() : this.waitForInput()));
  }

  private listens(): boolean {
    return this.menu.type === 'speech' && !this.speechOff && this.opts.speech?.menus.has(this.menuName) === true;
  }

  /** A speech menu's turn: the caller's answer, end-pointed and recognised (keys still work). */
  private listen(): void {
    const speech = this.opts.speech;
    const model = speech?.menus.get(this.menuName);
    if (!speech || !model) return this.waitForInput();
    this.state = 'listening';
    this.speechTurns++;
    const turn = this.speechTurns;
    const menu = this.menuName;
    const s = model.settings;
    const limits = { silenceMs: s.silenceMs, maxSpeechMs: s.maxSpeechS * 1000, noInputMs: s.noInputS * 1000 };
    this.emit('listening', menu, turn);
    const capture = new SpeechCapture({
      engine: speech.engine,
      grammar: model.grammar,
      audio: speech.audio,
      payloadType: speech.payloadType,
      codec: () => this.codecValue,
      endpointer: speech.endpointer(limits),
      maxTurnMs: limits.noInputMs + limits.maxSpeechMs + TURN_SLACK_MS,
      timers: this.timers,
      tag: menu,
      log: this.opts.log,
      onResult: (r) => {
        if (this.capture !== capture) return;
        this.capture = null;
        this.heard(menu, turn, model, r);
      },
    });
    this.capture = capture;
    capture.start();
  }

  private heard(menu: string, turn: number, model: SpeechMenuModel, r: CaptureResult): void {
    if (this.state !== 'listening' || menu !== this.menuName) return;
    if (r.kind === 'unavailable') {
      this.speechTurn({ menu, turn, result: 'unavailable', code: r.code });
      this.opts.log?.warn({ menu, code: r.code, err: r.message }, 'speech menu cannot listen: keys only');
      this.speechFallback();
      return;
    }
    if (r.kind === 'no-input') {
      this.speechTurn({ menu, turn, result: 'no-input' });
      this.speechFailed();
      return;
    }
    const text = r.check?.text ?? r.hypothesis?.text ?? '';
    const decision = r.hypothesis ? model.classifier.classify(r.hypothesis, r.check) : null;
    if (decision && decision.confidence >= model.settings.minConfidence && model.intents.includes(decision.intent)) {
      this.speechTurn({ menu, turn, result: 'recognised', text: decision.text, intent: decision.intent, confidence: decision.confidence, how: decision.how });
      this.finish({ kind: 'intent', intent: decision.intent, path: [...this.path], menu, fallback: false, speech: { text: decision.text, confidence: decision.confidence, how: decision.how, turns: turn } });
      return;
    }
    this.speechTurn(decision ? { menu, turn, result: 'rejected', text, intent: decision.intent, confidence: decision.confidence, how: decision.how } : { menu, turn, result: 'rejected', text });
    this.speechFailed();
  }

  private speechTurn(t: IvrSpeechTurn): void {
    // The text is left out of the log: it is the caller's words (the call record keeps it on site).
    this.opts.log?.info({ menu: t.menu, turn: t.turn, result: t.result, intent: t.intent, confidence: t.confidence, how: t.how, code: t.code }, `IVR speech: ${t.result}`);
    this.emit('speech', t);
  }

  /** Not understood: ask once more (after invalidPrompt, if any), then keys. */
  private speechFailed(): void {
    if (this.speechTurns < SPEECH_TURNS) {
      const prompt = this.menu.invalidPrompt;
      if (prompt === undefined) this.playMenu();
      else {
        this.state = 'invalid-prompt';
        this.play(prompt, () => this.playMenu());
      }
      return;
    }
    this.speechFallback();
  }

  /** The menu's keys (its prompt again, then the usual timeouts and retries), or onFail without any. */
  private speechFallback(): void {
    this.speechOff = true;
    if (Object.keys(this.menu.choices).length > 0) {
      this.playMenu();
      return;
    }
    const onFail = this.menu.onFail;
    if (onFail) this.act(onFail, true);
    else this.finish({ kind: 'abandoned', reason: 'no-input', path: [...this.path] });
  }

  private waitForInput(): void {
    this.state = 'waiting';
    this.clearInputTimer();
    this.inputTimer = this.timers.setTimeout(() => {
      this.inputTimer = null;
      this.emit('timeout', this.menuName);
      this.opts.log?.debug({ menu: this.menuName }, 'IVR timeout');
      this.failed();
    }, this.menu.timeoutS * 1000);
  }

  private take(key: string, action: IvrAction): void {
    this.buffer = '';
    this.path.push(key);
    this.act(action, false);
  }

  private invalid(input: string): void {
    this.buffer = '';
    this.emit('invalid', this.menuName, input);
    this.opts.log?.debug({ menu: this.menuName, input }, 'IVR invalid input');
    const prompt = this.menu.invalidPrompt;
    if (prompt === undefined) {
      this.failed();
      return;
    }
    this.state = 'invalid-prompt';
    this.play(prompt, () => this.failed());
  }

  /** A timeout or an invalid entry: replay the menu, or leave by onFail once retries are spent. */
  private failed(): void {
    this.failures++;
    if (this.failures <= this.menu.retries) {
      this.playMenu();
      return;
    }
    const onFail = this.menu.onFail;
    if (onFail) this.act(onFail, true);
    else this.finish({ kind: 'abandoned', reason: 'no-input', path: [...this.path] });
  }

  private act(action: IvrAction, fallback: boolean): void {
    if (action.intent !== undefined) {
      this.finish({ kind: 'intent', intent: action.intent, path: [...this.path], menu: this.menuName, fallback });
    } else if (action.callback === true) {
      this.finish({ kind: 'callback', path: [...this.path], menu: this.menuName, fallback });
    } else if (action.menu !== undefined) {
      this.enterMenu(action.menu);
    }
  }

  private play(prompt: string, then: () => void): void {
    this.stopPlayer();
    const frames = this.frames.get(frameKey(this.codecValue, prompt)) ?? [];
    this.playing = { prompt, then };
    this.emit('prompt', prompt);
    const onEnd = (): void => {
      if (this.player !== player) return;
      this.player = null;
      this.playing = null;
      this.emit('promptEnd', prompt, 'finished');
      then();
    };
    const player = this.opts.player ? this.opts.player(frames, onEnd) : new PromptPlayer(this.opts.clock, this.sink(), frames, onEnd);
    this.player = player;
    player.start();
  }

  private sink(): FrameSink {
    const rtp = this.opts.rtp;
    if (typeof rtp.sendPayload !== 'function') throw new Error('IvrSession needs an rtp with sendPayload, or a player');
    return rtp as FrameSink;
  }

  private stopPlayer(): void {
    this.player?.stop();
    this.player = null;
    this.playing = null;
  }

  private clearInputTimer(): void {
    if (this.inputTimer !== null) this.timers.clearTimeout(this.inputTimer);
    this.inputTimer = null;
  }

  private finish(result: IvrResult): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.stopPlayer();
    this.clearInputTimer();
    this.capture?.close();
    this.capture = null;
    if (this.maxTimer !== null) this.timers.clearTimeout(this.maxTimer);
    this.maxTimer = null;
    this.digits?.off('dtmf', this.onRtpDigit);
    this.earlyDigits.length = 0;
    this.resultValue = result;
    this.opts.log?.info({ ivr: result, menu: this.menuName }, `IVR done: ${result.kind === 'intent' ? `intent ${result.intent}` : result.kind}`);
    this.emit('done', result);
  }
}

function frameKey(codec: G711Codec, prompt: string): string {
  return `${codec}\0${prompt}`;
}
