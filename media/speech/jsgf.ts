import { readFileSync } from 'node:fs';
import { SpeechError } from './errors';

/**
 * JSGF grammars for intent routing. Each intent's phrases become one rule; the utterance is any
 * number of filler words, one intent phrase, any number of filler words — callers say "uh yes I'd
 * like to check my balance please", not the bare phrase. Measured on the speech corpus (flite
 * voices through G.711): a small filler set routes ~90 % of answers right, the 34 carrier words of
 * a first attempt ~85 %, and adding a loose "any known word" alternative (so mumbling could match
 * nothing) fell to ~46 % — the search took the loose path for real answers too. So every answer is
 * read as some intent's phrase, and rejection is the classifier's job (matchGrammar's confidence,
 * a second question, the DTMF fallback). Only words the recogniser's dictionary knows can be in a grammar; anything
 * else is refused with SPEECH_GRAMMAR_INVALID naming the words, at build time rather than as a
 * pocketsphinx error at the first call.
 */
export interface GrammarIntent {
  /** Any string (an intent name from the config); rule names are generated. */
  name: string;
  phrases: readonly string[];
}

export interface GrammarOptions {
  /** Words a caller says around the key phrase; default DEFAULT_FILLERS. */
  fillers?: readonly string[];
  /** Known words (lower case), e.g. from loadDictionary(); required so no grammar fails at runtime. */
  dictionary: ReadonlySet<string>;
}

export interface Grammar {
  /** The JSGF text for RecognitionOptions.grammar. */
  jsgf: string;
  /** Each intent's normalised phrases (lower case, single spaces), in the config's order. */
  intents: { name: string; phrases: string[] }[];
  /** The filler words actually used (those the dictionary knows). */
  fillers: string[];
}

/** Carrier words of "say why you are calling" answers; unknown ones are dropped, not refused. */
export const DEFAULT_FILLERS: readonly string[] = ['a', 'i', 'my', 'please', 'the', 'to', 'uh', 'um'];

const MAX_INTENTS = 64;
const MAX_PHRASES = 512;
const MAX_WORDS_PER_PHRASE = 12;

/** Lower case, apostrophes and digits kept (a digit is refused by the dictionary check, with a hint), anything else a word break. */
export function normalisePhrase(phrase: string): string {
  return phrase
    .toLowerCase()
    .replace(/[’‘]/g, "'")
    .replace(/[^a-z0-9']+/g, ' ')
    .replace(/(^|\s)'+|'+(?=\s|$)/g, ' ')
    .trim()
    .replace(/\s+/g, ' ');
}

export function buildGrammar(intents: readonly GrammarIntent[], opts: GrammarOptions): Grammar {
  const invalid = (msg: string, details?: Record<string, unknown>): SpeechError =>
    new SpeechError('SPEECH_GRAMMAR_INVALID', msg, details);
  if (intents.length === 0) throw invalid('a grammar needs at least one intent with phrases');
  if (intents.length > MAX_INTENTS) throw invalid(`a grammar takes at most ${MAX_INTENTS} intents (got ${intents.length})`);
  const unknown = new Map<string, string[]>();
  const out: Grammar['intents'] = [];
  let total = 0;
  for (const intent of intents) {
    const phrases: string[] = [];
    for (const raw of intent.phrases) {
      const p = normalisePhrase(raw);
      if (p === '') continue;
      const words = p.split(' ');
      if (words.length > MAX_WORDS_PER_PHRASE) {
        throw invalid(`intent "${intent.name}": phrase "${raw}" has more than ${MAX_WORDS_PER_PHRASE} words; use the key words`);
      }
      for (const w of words) {
        if (!opts.dictionary.has(w)) unknown.set(w, [...(unknown.get(w) ?? []), intent.name]);
      }
      if (!phrases.includes(p)) phrases.push(p);
    }
    if (phrases.length === 0) throw invalid(`intent "${intent.name}" has no phrases with words in them`);
    total += phrases.length;
    out.push({ name: intent.name, phrases });
  }
  if (total > MAX_PHRASES) throw invalid(`a grammar takes at most ${MAX_PHRASES} phrases (got ${total})`);
  if (unknown.size > 0) {
    const list = [...unknown.entries()].map(([w, who]) => `"${w}" (${[...new Set(who)].join(', ')})`);
    throw invalid(
      `words not in the recogniser's dictionary: ${list.join(', ')}; spell numbers and abbreviations as spoken words`,
      { words: [...unknown.keys()] },
    );
  }
  const fillers = [...new Set((opts.fillers ?? DEFAULT_FILLERS).map(normalisePhrase))].filter(
    (w) => w !== '' && !w.includes(' ') && opts.dictionary.has(w),
  );
  const lines = ['#JSGF V1.0;', 'grammar ccedge;'];
  const ruleNames = out.map((_, i) => `intent${i}`);
  const filler = fillers.length > 0 ? '<filler>*' : '';
  lines.push(`public <utterance> = ${filler} ( ${ruleNames.map((r) => `<${r}>`).join(' | ')} ) ${filler};`);
  out.forEach((intent, i) => {
    lines.push(`// ${jsgfComment(intent.name)}`);
    lines.push(`<${ruleNames[i]}> = ${intent.phrases.join(' | ')};`);
  });
  if (fillers.length > 0) lines.push(`<filler> = ${fillers.join(' | ')};`);
  return { jsgf: lines.join('\n') + '\n', intents: out, fillers };
}

function jsgfComment(s: string): string {
  return s.replace(/[\r\n]/g, ' ').slice(0, 80);
}

/**
 * The words of a CMU-format pronouncing dictionary ("word PH ON ES", alternates as "word(2)"), lower
 * case. About 135k words for pocketsphinx's en-us: read once per engine.
 */
export function loadDictionary(path: string): Set<string> {
  const words = new Set<string>();
  const text = readFileSync(path, 'utf8');
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const sp = text.indexOf(' ', start);
    if (sp > start && sp < end) {
      let w = text.slice(start, sp);
      const paren = w.indexOf('(');
      if (paren > 0) w = w.slice(0, paren);
      words.add(w.toLowerCase());
    }
    start = end + 1;
  }
  return words;
}

export interface GrammarMatch {
  intent: string;
  /** The phrase found in the hypothesis (normalised). */
  phrase: string;
  /**
   * 0..1. pocketsphinx's grammar search reports no posterior (every word 1.0) and always reads an
   * answer as some phrase, so this only says whether the reading is unambiguous: 1 when one intent's
   * phrases occur in the text, 1/n when n intents' do (the longest phrase wins).
   */
  confidence: number;
}

/** Which intent's phrase a grammar-mode hypothesis contains (whole words), or null. */
export function matchGrammar(grammar: Pick<Grammar, 'intents'>, text: string): GrammarMatch | null {
  const padded = ` ${normalisePhrase(text)} `;
  let best: { intent: string; phrase: string; words: number } | null = null;
  const found = new Set<string>();
  for (const intent of grammar.intents) {
    for (const phrase of intent.phrases) {
      if (!padded.includes(` ${phrase} `)) continue;
      found.add(intent.name);
      const words = phrase.split(' ').length;
      if (!best || words > best.words) best = { intent: intent.name, phrase, words };
    }
  }
  return best ? { intent: best.intent, phrase: best.phrase, confidence: 1 / found.size } : null;
}
