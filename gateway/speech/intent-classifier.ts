/**
 * Which intent a recognised answer means, from the grammar-mode hypothesis and, when the engine
 * had room for it, a dictation hypothesis of the same audio (the check):
 *   - `grammar`    — an intent's example phrase (whole words, in order; the longest wins, see
 *                    media/speech/jsgf.ts matchGrammar) in the check, or in the grammar hypothesis
 *                    and confirmed by the check sharing one of that phrase's content words;
 *   - `classifier` — an n-gram cosine classifier (ml-classify-text) trained on the examples, on the
 *                    check's free wording ("a problem with my invoice"): what the grammar missed;
 *   - an unconfirmed grammar match is kept at a fraction of its confidence (below any sensible
 *     minConfidence): the grammar search has no garbage model and reads mumbling as some phrase.
 * Without a check the grammar hypothesis alone decides, a short phrase being weaker evidence.
 * The confidence folds the engine's with how sure the step is, so one threshold (the menu's
 * minConfidence) judges every path.
 */
import { Classifier } from 'ml-classify-text';
import { matchGrammar, normalisePhrase, type Grammar } from '../../media';
export type IntentDecisionHow = 'grammar' | 'classifier';

export interface IntentDecision {
  intent: string;
  /** 0..1. */
  confidence: number;
  /** The recognised text the decision was made on (stays on site). */
  text: string;
  how: IntentDecisionHow;
}

export interface IntentExamples {
  name: string;
  examples: readonly string[];
}

/**
 * Words that say nothing about why someone calls. Left out of the classifier's vectors: with a
 * handful of examples per intent, shared "i", "my", "the" would otherwise pull unrelated intents
 * together.
 */
const STOP_WORDS = new Set(['a', 'an', 'the', 'i', "i'm", 'im', 'me', 'my', 'to', 'is', 'it', 'of', 'and', 'in', 'on', 'for', 'with', 'about', 'want', 'would', 'like', 'please', 'need', 'have', 'has', 'do', 'does', 'can', 'you', 'this', 'that', 'um', 'uh', 'er']);

/**
 * Words of a matched phrase that count as full evidence. pocketsphinx's grammar search has no
 * garbage model and reports no posterior: it reads any sound as some phrase, and mumbling most
 * easily as a short one (in the e2e, "well hmm let me see" came out as the one-word example
 * "billing"). A one-word match is a third of the evidence, two words two thirds.
 */
const FULL_EVIDENCE_WORDS = 3;

/** What an unconfirmed grammar match keeps of its confidence. */
const UNCONFIRMED = 0.3;
/**
 * A check at or above this posterior is taken as heard right (its own posterior then does not
 * scale the decision); below, it scales it. Measured on flite voices over G.711: 0.6-0.7 for clear
 * answers, ~0.3 for mumbling ("well hmm let me see" → "well laid out and let me think").
 */
const CHECK_TRUST = 0.5;

/** A cosine below this is taken as no resemblance at all. */
const MIN_SIMILARITY = 0.15;
/** A cosine at or above this counts as a full match of wording (short answers rarely reach 1). */
const FULL_SIMILARITY = 0.5;

export class SpeechIntentClassifier {
  private readonly grammar: Pick<Grammar, 'intents'>;
  private readonly classifier = new Classifier({ nGramMin: 1, nGramMax: 2 });
  private readonly trained: boolean;
  readonly intents: readonly string[];

  constructor(intents: readonly IntentExamples[]) {
    let trained = false;
    this.grammar = { intents: intents.map((i) => ({ name: i.name, phrases: i.examples.map(normalisePhrase).filter((p) => p !== '') })) };
    for (const intent of intents) {
      const texts: string[] = [];
      for (const ex of intent.examples) {
        const words = tokens(ex);
        if (words.length === 0) continue;
        const content = contentWords(words);
        if (content.length > 0) texts.push(content.join(' '));
      }
      if (texts.length > 0) {
        this.classifier.train(texts, intent.name);
        trained = true;
      }
    }
    this.trained = trained;
    this.intents = intents.map((i) => i.name);
  }

  /**
   * The decision for a grammar-mode hypothesis and, if there is one, the dictation check of the
   * same audio; null when nothing points at an intent.
   */
  classify(hyp: { text: string; confidence: number }, check?: { text: string; confidence: number } | null): IntentDecision | null {
    const words = tokens(hyp.text);
    const text = words.join(' ');
    const engine = clamp01(hyp.confidence);
    // When n intents' phrases are in the answer ("my bill, and the internet is down") the
    // confidence is 1/n: a caller naming two reasons deserves the keypad.
    const grammar = words.length > 0 ? matchGrammar(this.grammar, text) : null;
    if (check === undefined || check === null) {
      if (words.length === 0) return null;
      if (grammar) {
        const evidence = Math.min(1, grammar.phrase.split(' ').length / FULL_EVIDENCE_WORDS);
        return { intent: grammar.intent, confidence: engine * grammar.confidence * evidence, text, how: 'grammar' };
      }
      return this.classifierMatch(words, text, engine);
    }
    const checkWords = tokens(check.text);
    const checkText = checkWords.join(' ');
    const posterior = clamp01(check.confidence);
    const checkEngine = posterior >= CHECK_TRUST ? 1 : posterior;
    const heard = checkWords.length > 0 ? matchGrammar(this.grammar, checkText) : null;
    if (heard) return { intent: heard.intent, confidence: (heard.intent === grammar?.intent ? engine : checkEngine) * heard.confidence, text: checkText, how: 'grammar' };
    if (grammar) {
      const said = new Set(checkWords);
      const confirmed = contentWords(tokens(grammar.phrase)).some((w) => said.has(w));
      if (confirmed) return { intent: grammar.intent, confidence: engine * grammar.confidence, text: checkText, how: 'grammar' };
    }
    const free = checkWords.length > 0 ? this.classifierMatch(checkWords, checkText, checkEngine) : null;
    if (free && (!grammar || free.confidence > engine * grammar.confidence * UNCONFIRMED)) return free;
    if (grammar) return { intent: grammar.intent, confidence: engine * grammar.confidence * UNCONFIRMED, text: checkText || text, how: 'grammar' };
    return words.length > 0 ? this.classifierMatch(words, text, engine * UNCONFIRMED) : null;
  }

  private classifierMatch(words: string[], text: string, engine: number): IntentDecision | null {
    if (!this.trained) return null;
    const content = contentWords(words);
    if (content.length === 0) return null;
    const [top, second] = this.classifier.predict(content.join(' '), 2, 0);
    if (top === undefined || top.confidence < MIN_SIMILARITY) return null;
    const strength = Math.min(1, top.confidence / FULL_SIMILARITY);
    // How far ahead of the runner-up: a near tie is a guess.
    const lead = second === undefined ? 1 : (top.confidence - second.confidence) / top.confidence;
    return { intent: top.label, confidence: engine * strength * (0.5 + 0.5 * lead), text, how: 'classifier' };
  }
}

/** Lower-case words (letters and apostrophes); pocketsphinx's alternates like "read(2)" lose their suffix. */
export function tokens(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/\(\d+\)/g, '')
    .split(/[^a-z']+/)
    .filter((w) => w.length > 0 && w !== "'");
}

function contentWords(words: readonly string[]): string[] {
  return words.filter((w) => !STOP_WORDS.has(w));
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
