/**
 * Intent resolution: which intent a call has, and what decided it. Steps in order, the first
 * that yields a known intent wins:
 *   1. `ivr`        — the caller's IVR choice (RoutingCall.ivrIntent);
 *   2. `dnis`       — the called number (To user): exact rule, else longest prefix, else the first regex;
 *                     rules with `on: original` (or `either`) match the originally called number
 *                     (Diversion/History-Info) first, `on: called` (the default) the To user;
 *   3. `caller`     — the caller (From user): longest matching prefix;
 *   4. `header`     — a header the PBX set (routing.header, default X-Intent);
 *   5. `classifier` — pluggable classifiers in order, within routing.classifierTimeoutMs in total;
 *   6. `default`    — routing.defaultIntent.
 * A value that is not a known intent (IVR, header, classifier) is skipped and reported in
 * `ignored`, never fatal: a call always gets an intent.
 */
import { realClock, type Clock, type Timer } from '../acd/clock';
import { compileDnisMatch, type DnisMatcher, type RoutingRulesConfig } from './config';

/** What routing knows about a call. `headers` keys are matched case-insensitively. */
export interface RoutingCall {
  callId: string;
  /** From user (caller number), null when absent or anonymous. */
  fromUser: string | null;
  /** To user (called number, DNIS). */
  toUser: string | null;
  /** The number originally called, before the PBX diverted the call (Diversion/History-Info). */
  originalCalled?: string | null;
  headers: Record<string, string>;
  /** The intent the caller chose in the IVR, if an IVR ran. */
  ivrIntent?: string;
  /** Set when a speech menu decided ivrIntent: what was recognised (on site only) and how sure. */
  ivrSpeech?: SpeechRouting;
}

/** A speech menu's decision as routing carries it to `call.queued`. */
export interface SpeechRouting {
  text: string;
  confidence: number;
  /** grammar | classifier (gateway/speech/intent-classifier.ts). */
  how: string;
}

/** `speech`: the IVR step, decided by a speech menu (the caller said it rather than pressed it). */
export type IntentSource = 'ivr' | 'speech' | 'dnis' | 'caller' | 'header' | 'classifier' | 'default';

/**
 * Pluggable intent detection (speech/NLU service, CRM lookup, …), consulted after the header step.
 * Return an intent name, or null for "no opinion". Throwing, rejecting, returning an unknown
 * intent or taking longer than the time left are all treated as no opinion.
 */
export interface IntentClassifier {
  name: string;
  classify(call: RoutingCall): Promise<string | null> | string | null;
}

/** A step's value that was not used, and why. */
export interface IgnoredStep {
  source: IntentSource;
  /** The value offered (IVR choice, header value, classifier answer), or the classifier's name. */
  value: string;
  reason: 'unknown-intent' | 'timeout' | 'error';
  /** The classifier's name, for classifier steps. */
  classifier?: string;
  /** The error message for reason `error`. */
  error?: string;
}

export interface IntentResult {
  intent: string;
  source: IntentSource;
  /** Which rule decided: the DNIS match, the caller prefix, the header name or the classifier name. */
  rule?: string;
  ignored: IgnoredStep[];
}

export interface IntentResolverOptions {
  /** Known intent names. */
  intents: readonly string[];
  routing: Pick<RoutingRulesConfig, 'dnis' | 'callerPrefixes' | 'header' | 'defaultIntent'> & { classifierTimeoutMs?: number };
  classifiers?: readonly IntentClassifier[];
  clock?: Clock;
}

const DEFAULT_CLASSIFIER_TIMEOUT_MS = 500;

export class IntentResolver {
  private readonly known = new Map<string, string>();
  /** DNIS rules by what they match: the called number (To user) or the original called number. */
  private readonly dnisOn: Record<'called' | 'original', DnisRules> = { called: newDnisRules(), original: newDnisRules() };
  private readonly callerPrefixes: Array<{ prefix: string; intent: string }>;
  private readonly header: string | null;
  private readonly defaultIntent: string;
  private readonly timeoutMs: number;
  private readonly classifiers: readonly IntentClassifier[];
  private readonly clock: Clock;

  constructor(opts: IntentResolverOptions) {
    for (const n of opts.intents) this.known.set(n.toLowerCase(), n);
    const check = (intent: string, where: string): string => {
      if (!this.known.has(intent.toLowerCase())) throw new RangeError(`${where} names unknown intent "${intent}"`);
      return this.known.get(intent.toLowerCase()) as string;
    };
    this.defaultIntent = check(opts.routing.defaultIntent, 'defaultIntent');
    for (const r of opts.routing.dnis) {
      const m = compileDnisMatch(r.match);
      const entry = { matcher: m, intent: check(r.intent, `DNIS rule "${r.match}"`), rule: r.match };
      const on = r.on ?? 'called';
      for (const set of on === 'either' ? [this.dnisOn.called, this.dnisOn.original] : [this.dnisOn[on]]) {
        if (m.kind === 'exact') {
          if (!set.exact.has(m.text)) set.exact.set(m.text, entry);
        } else if (m.kind === 'prefix') set.prefixes.push(entry);
        else set.regexes.push(entry);
      }
    }
    // Longest prefix first; equal lengths keep their configured order (sort is stable).
    for (const set of [this.dnisOn.called, this.dnisOn.original]) set.prefixes.sort((a, b) => b.matcher.text.length - a.matcher.text.length);
    this.callerPrefixes = opts.routing.callerPrefixes
      .map((r) => ({ prefix: r.prefix, intent: check(r.intent, `caller prefix "${r.prefix}"`) }))
      .sort((a, b) => b.prefix.length - a.prefix.length);
    this.header = opts.routing.header ? opts.routing.header.toLowerCase() : null;
    this.timeoutMs = opts.routing.classifierTimeoutMs ?? DEFAULT_CLASSIFIER_TIMEOUT_MS;
    this.classifiers = opts.classifiers ?? [];
    this.clock = opts.clock ?? realClock;
  }

  /** The canonical name of a known intent (matched case-insensitively, trimmed), or undefined. */
  canonical(value: string | null | undefined): string | undefined {
    if (typeof value !== 'string') return undefined;
    return this.known.get(value.trim().toLowerCase());
  }

  /** Resolves without classifiers' time: every step but `classifier` (for callers that cannot wait). */
  resolveRules(call: RoutingCall): IntentResult | { ignored: IgnoredStep[]; intent?: undefined } {
    const ignored: IgnoredStep[] = [];
    if (call.ivrIntent !== undefined && call.ivrIntent !== '') {
      const intent = this.canonical(call.ivrIntent);
      if (intent) return { intent, source: call.ivrSpeech ? 'speech' : 'ivr', ignored };
      ignored.push({ source: 'ivr', value: call.ivrIntent, reason: 'unknown-intent' });
    }
    // The original called number first: a diverted call keeps the intent of the number dialled.
    const original = call.originalCalled;
    if (original) {
      const hit = matchDnis(this.dnisOn.original, original);
      if (hit) return { intent: hit.intent, source: 'dnis', rule: hit.rule, ignored };
    }
    const to = call.toUser;
    if (to) {
      const hit = matchDnis(this.dnisOn.called, to);
      if (hit) return { intent: hit.intent, source: 'dnis', rule: hit.rule, ignored };
    }
    const from = call.fromUser;
    if (from) {
      const hit = this.callerPrefixes.find((r) => from.startsWith(r.prefix));
      if (hit) return { intent: hit.intent, source: 'caller', rule: hit.prefix, ignored };
    }
    if (this.header) {
      const raw = headerValue(call.headers, this.header);
      if (raw !== undefined) {
        // `billing_inquiry;confidence=0.9` or a repeated header joined with commas: the first value.
        const value = raw.split(/[;,]/)[0].trim();
        const intent = this.canonical(value);
        if (intent) return { intent, source: 'header', rule: this.header, ignored };
        ignored.push({ source: 'header', value: raw, reason: 'unknown-intent' });
      }
    }
    return { ignored };
  }

  /** The call's intent; never rejects (classifier failures fall through to the default). */
  async resolve(call: RoutingCall): Promise<IntentResult> {
    const ruled = this.resolveRules(call);
    if (ruled.intent !== undefined) return ruled;
    const ignored = ruled.ignored;
    if (this.classifiers.length > 0) {
      const deadline = this.clock.now() + this.timeoutMs;
      for (const c of this.classifiers) {
        const left = deadline - this.clock.now();
        if (left <= 0) {
          ignored.push({ source: 'classifier', value: c.name, classifier: c.name, reason: 'timeout' });
          continue;
        }
        const outcome = await this.consult(c, call, left);
        if (outcome.kind === 'value') {
          if (outcome.value === null || outcome.value === undefined || outcome.value === '') continue;
          const intent = this.canonical(outcome.value);
          if (intent) return { intent, source: 'classifier', rule: c.name, ignored };
          ignored.push({ source: 'classifier', value: String(outcome.value), classifier: c.name, reason: 'unknown-intent' });
        } else if (outcome.kind === 'timeout') {
          ignored.push({ source: 'classifier', value: c.name, classifier: c.name, reason: 'timeout' });
        } else {
          ignored.push({ source: 'classifier', value: c.name, classifier: c.name, reason: 'error', error: outcome.error });
        }
      }
    }
    return { intent: this.defaultIntent, source: 'default', ignored };
  }

  /** One classifier, raced against the time left; a late answer or rejection is dropped. */
  private consult(c: IntentClassifier, call: RoutingCall, ms: number): Promise<{ kind: 'value'; value: string | null } | { kind: 'timeout' } | { kind: 'error'; error: string }> {
    let result: Promise<string | null> | string | null;
    try {
      result = c.classify({ ...call, headers: { ...call.headers } });
    } catch (e) {
      return Promise.resolve({ kind: 'error', error: errorMessage(e) });
    }
    if (!isThenable(result)) return Promise.resolve({ kind: 'value', value: typeof result === 'string' ? result : null });
    return new Promise((resolve) => {
      let done = false;
      const timer: Timer = this.clock.setTimeout(() => {
        if (done) return;
        done = true;
        resolve({ kind: 'timeout' });
      }, ms);
      Promise.resolve(result).then(
        (value) => {
          if (done) return;
          done = true;
          this.clock.clearTimeout(timer);
          resolve({ kind: 'value', value: typeof value === 'string' ? value : null });
        },
        (e: unknown) => {
          if (done) return;
          done = true;
          this.clock.clearTimeout(timer);
          resolve({ kind: 'error', error: errorMessage(e) });
        },
      );
    });
  }
}

interface DnisEntry {
  matcher: DnisMatcher;
  intent: string;
  rule: string;
}
interface DnisRules {
  exact: Map<string, DnisEntry>;
  prefixes: DnisEntry[];
  regexes: DnisEntry[];
}

function newDnisRules(): DnisRules {
  return { exact: new Map(), prefixes: [], regexes: [] };
}

function matchDnis(rules: DnisRules, user: string): DnisEntry | undefined {
  return rules.exact.get(user) ?? rules.prefixes.find((r) => r.matcher.test(user)) ?? rules.regexes.find((r) => r.matcher.test(user));
}

/** A header's value by case-insensitive name. */
export function headerValue(headers: Record<string, string>, lowerName: string): string | undefined {
  const direct = headers[lowerName];
  if (typeof direct === 'string') return direct;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === lowerName && typeof v === 'string') return v;
  return undefined;
}

function isThenable(v: unknown): v is PromiseLike<string | null> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
