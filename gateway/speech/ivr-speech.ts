import { buildGrammar } from '../../media/speech/jsgf';
import { PocketsphinxEngine } from '../../media/speech/pocketsphinx';
import type { IvrConfig } from '../ivr/config';
import type { IvrSpeech } from '../ivr/ivr-session';
import type { EndpointerLimits, FrameEndpointer } from '../ivr/speech-capture';
import { buildSpeechMenus } from '../ivr/speech-menus';
import type { Logger } from '../logging';
import type { SpeechConfig } from './config';

/** What the IVR's speech menus need from the daemon (the call adds the caller's audio). */
export type IvrSpeechDeps = Omit<IvrSpeech, 'audio' | 'payloadType'>;

/**
 * The on-site engine and the models of the speech menus, or undefined when no menu is `type:
 * speech`. An engine that cannot run here (pocketsphinx or its model not installed) is logged once
 * and the speech menus take keys only. Throws SpeechError SPEECH_GRAMMAR_INVALID for an example
 * word the recogniser's dictionary does not know, so the daemon refuses the config at start.
 */
export function createIvrSpeech(
  ivr: Pick<IvrConfig, 'menus'>,
  intents: ReadonlyArray<{ name: string; examples: readonly string[] }>,
  speech: SpeechConfig,
  endpointer: (limits: EndpointerLimits) => FrameEndpointer,
  log: Logger,
): IvrSpeechDeps | undefined {
  if (!Object.values(ivr.menus).some((m) => m.type === 'speech')) return undefined;
  const engine = new PocketsphinxEngine({ config: speech.engine, log });
  const why = engine.unavailableReason;
  if (why !== null) {
    log.warn({ code: 'SPEECH_UNAVAILABLE', reason: why }, 'speech menus take keys only: the speech engine cannot run');
    return undefined;
  }
  const dictionary = engine.dictionary();
  const menus = buildSpeechMenus(ivr, intents, (list) => buildGrammar(list, { dictionary }).jsgf);
  log.info({ menus: [...menus.keys()], engine: engine.name, maxConcurrent: engine.limit, quality: engine.quality }, 'speech menus on');
  return { engine, menus, endpointer };
}
