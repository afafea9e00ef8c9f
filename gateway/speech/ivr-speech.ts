import { buildGrammar } from '../../media';
import { PocketsphinxEngine } from '../../media';
import type { IvrConfig } from '../ivr/config';
import type { IvrSpeech } from '../ivr/ivr-session';
import type { EndpointerLimits, FrameEndpointer } from '../ivr/speech-capture';
import { buildSpeechMenus, type SpeechMenuModel } from '../ivr/speech-menus';
import { isSpeechError } from '../../media';
import type { Logger } from '../logging';
import type { SpeechConfig } from './config';
import { CcedgeError } from '../errors';

/** What the IVR's speech menus need from the daemon (the call adds the caller's audio). */
export type IvrSpeechDeps = Omit<IvrSpeech, 'audio' | 'payloadType'>;

/**
 * The on-site engine and the models of the speech menus, or undefined when no menu is `type:
 * speech`. An engine that cannot run here (pocketsphinx or its model not installed) is logged once
 * and the speech menus take keys only. Throws CONFIG_INVALID for an example word the recogniser's
 * dictionary does not know, so the daemon (and `ccedge config validate`) refuses the config.
 */
export function createIvrSpeech(
  ivr: Pick<IvrConfig, 'menus'>,
  /** The running config's intents: a hot change (cloud, API) rebuilds the menus' models at the next call. */
  intents: () => ReadonlyArray<{ name: string; examples: readonly string[] }>,
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
  const build = (list: ReadonlyArray<{ name: string; examples: readonly string[] }>): Map<string, SpeechMenuModel> =>
    buildSpeechMenus(ivr, list, (l) => buildGrammar(l, { dictionary }).jsgf);
  let builtFor = intents();
  let menus: Map<string, SpeechMenuModel>;
  try {
    menus = build(builtFor);
  } catch (err) {
    // A word the recogniser cannot hear is a config mistake: the same exit (2) and wording as any other.
    if (isSpeechError(err, 'SPEECH_GRAMMAR_INVALID')) throw new CcedgeError('CONFIG_INVALID', `intents: ${err.message}`);
    throw err;
  }
  log.info({ menus: [...menus.keys()], engine: engine.name, maxConcurrent: engine.limit, quality: engine.quality }, 'speech menus on');
  return {
    engine,
    endpointer,
    get menus(): ReadonlyMap<string, SpeechMenuModel> {
      const now = intents();
      if (now !== builtFor) {
        builtFor = now;
        try {
          menus = build(now);
          log.info({ menus: [...menus.keys()] }, 'speech menus rebuilt from the new intents');
        } catch (err) {
          // The live config check does not know the dictionary: keep listening with the last good models.
          log.warn({ err, code: isSpeechError(err) ? err.code : undefined }, 'speech menus keep their previous examples: the new ones cannot be recognised');
        }
      }
      return menus;
    },
  };
}
