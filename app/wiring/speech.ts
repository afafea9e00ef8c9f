import type { Config } from '../../gateway/config/schema';
import type { Logger } from '../../gateway/logging';
import type { Metrics } from '../../gateway/metrics';
import { ForkService } from '../../gateway/speech/fork-wiring';
import { TranscriptService, type TranscriptOutputs } from '../../gateway/transcripts/transcript-service';
import type { SpeechEngine } from '../../media';
import { PocketsphinxEngine } from '../../media';
import type { Vault } from '../../vault';
import type { Closer } from '../lifecycle';

export interface SpeechWiring {
  config: Config;
  vault: Vault;
  log: Logger;
  metrics: Metrics;
  closer: Closer;
  /** The speech menus' engine when the IVR has one: transcripts share it (one box-wide speech.engine.maxConcurrent). */
  ivrEngine: SpeechEngine | undefined;
  /** Where live utterances go (the agent's desk) and how an event is recorded after the call closed. */
  desk: TranscriptOutputs;
}

/**
 * Live transcripts (speech.transcripts: on the agent's desk, stored encrypted in the vault at call
 * end) and the media fork to on-prem AudioHook endpoints (speech.fork), whose transcript events
 * feed the same transcripts. The engine is not closed here: it outlives the calls' last words
 * (the daemon closes it after the calls end).
 */
export function wireSpeech(w: SpeechWiring): { engine: SpeechEngine | undefined; transcripts: TranscriptService; fork: ForkService } {
  const { config, log } = w;
  let engine = w.ivrEngine;
  if (!engine) {
    const own = new PocketsphinxEngine({ config: config.speech.engine, log: log.child({ component: 'speech' }) });
    const why = own.unavailableReason;
    if (why === null) {
      engine = own;
    } else if (config.speech.transcripts.queues.length || config.speech.transcripts.intents.length) {
      log.warn({ code: 'SPEECH_UNAVAILABLE', reason: why }, 'no built-in transcripts: the speech engine cannot run');
    }
  }
  const transcripts = new TranscriptService(
    w.vault,
    () => config.speech.transcripts,
    () => config.recording,
    w.desk,
    log.child({ component: 'transcripts' }),
    () => engine,
    w.metrics.registry,
  );
  const fork = new ForkService({ config: () => config.speech.fork, log: log.child({ component: 'speech-fork' }), registry: w.metrics.registry, sinkFor: transcripts.sinkForFork });
  w.closer.defer('media fork', () => fork.close());
  return { engine, transcripts, fork };
}
