import { SpeechIntentClassifier } from '../speech/intent-classifier';
import { speechMenuIntents, speechSettings, type IvrConfig, type SpeechMenuSettings } from './config';

/** What a speech menu listens with, built once per config (not per call). */
export interface SpeechMenuModel {
  /** The intents the answer may be, in config order. */
  intents: readonly string[];
  /** JSGF text of those intents' examples (grammar mode). */
  grammar: string;
  classifier: SpeechIntentClassifier;
  settings: SpeechMenuSettings;
}

/** Builds a grammar from intents and their phrases; throws SpeechError SPEECH_GRAMMAR_INVALID (media/speech/jsgf.ts). */
export type GrammarBuilder = (intents: ReadonlyArray<{ name: string; phrases: readonly string[] }>) => string;

/**
 * The model of every `type: speech` menu. Throws the grammar builder's error (a word the
 * recogniser's dictionary does not know) so the daemon refuses the config at start, not at the
 * first caller.
 */
export function buildSpeechMenus(
  ivr: Pick<IvrConfig, 'menus'>,
  intents: ReadonlyArray<{ name: string; examples: readonly string[] }>,
  grammarOf: GrammarBuilder,
): Map<string, SpeechMenuModel> {
  const out = new Map<string, SpeechMenuModel>();
  const byName = new Map(intents.map((i) => [i.name, i]));
  for (const [name, menu] of Object.entries(ivr.menus)) {
    if (menu.type !== 'speech') continue;
    const names = speechMenuIntents(menu, intents);
    const list = names.map((n) => ({ name: n, examples: byName.get(n)?.examples ?? [] })).filter((i) => i.examples.length > 0);
    let grammar: string;
    try {
      grammar = grammarOf(list.map((i) => ({ name: i.name, phrases: i.examples })));
    } catch (err) {
      (err as Error).message = `ivr.menus.${name}: ${(err as Error).message}`;
      throw err;
    }
    out.set(name, { intents: list.map((i) => i.name), grammar, classifier: new SpeechIntentClassifier(list), settings: speechSettings(menu) });
  }
  return out;
}
