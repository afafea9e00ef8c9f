/**
 * On-site speech recognition: the contract, the built-in pocketsphinx engine, grammars for intent
 * routing, end-pointing and 8→16 kHz upsampling. The gateway imports from here.
 */
export * from './contract';
export { SpeechError, isSpeechError, type SpeechErrorCode } from './errors';
export { speechEngineConfigSchema, type SpeechEngineConfig } from './engine-config';
export { PocketsphinxEngine, POCKETSPHINX_QUALITY, TELEPHONE_CMN_INIT, type PocketsphinxOptions, type EngineCounters, type EngineLogger } from './pocketsphinx';
export { buildGrammar, matchGrammar, loadDictionary, normalisePhrase, DEFAULT_FILLERS, type Grammar, type GrammarMatch, type GrammarIntent, type GrammarOptions } from './jsgf';
export { Upsampler8to16, upsample8to16 } from './resample';
export { Endpointer, levelDb, type EndpointerOptions, type EndpointReason, type EndpointStep } from './endpointer';
