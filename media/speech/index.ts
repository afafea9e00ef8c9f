/**
 * On-site speech recognition: the contract, the built-in pocketsphinx engine, grammars for intent
 * routing, end-pointing and 8→16 kHz upsampling. The gateway imports from here.
 */
import type { SpeechEngineConfig } from './engine-config';
import { PocketsphinxEngine, type EngineLogger } from './pocketsphinx';

export * from './contract';
export { SpeechError, isSpeechError, type SpeechErrorCode } from './errors';
export { speechEngineConfigSchema, type SpeechEngineConfig } from './engine-config';
export { PocketsphinxEngine, POCKETSPHINX_QUALITY, TELEPHONE_CMN_INIT, type PocketsphinxOptions, type EngineCounters, type EngineLogger } from './pocketsphinx';
export { buildGrammar, matchGrammar, loadDictionary, normalisePhrase, DEFAULT_FILLERS, type Grammar, type GrammarIntent, type GrammarMatch, type GrammarOptions } from './jsgf';
export { Upsampler8to16, upsample8to16 } from './resample';
export { lineNoise } from './line-noise';
export { Endpointer, levelDb, type EndpointerOptions, type EndpointReason, type EndpointStep } from './endpointer';

/**
 * The box's one engine. Create it once per daemon and share it (IVR, transcripts): the concurrency
 * limit only holds if every recognition goes through the same instance.
 */
export function createSpeechEngine(config: SpeechEngineConfig, opts: { log?: EngineLogger; workDir?: string } = {}): PocketsphinxEngine {
  switch (config.kind) {
    case 'pocketsphinx':
      return new PocketsphinxEngine({ config, log: opts.log, workDir: opts.workDir });
  }
}
