import type { CallDeps } from '../../gateway/calls/call';
import { CallManager } from '../../gateway/calls/call-manager';
import type { Config } from '../../gateway/config/schema';
import { ivrPromptNames } from '../../gateway/ivr/config';
import { IvrPrompts } from '../../gateway/ivr/prompts';
import type { Logger } from '../../gateway/logging';
import type { Metrics } from '../../gateway/metrics';
import { createIvrSpeech } from '../../gateway/speech/ivr-speech';
import { CallStore } from '../../gateway/store/call-store';
import type { Db } from '../../gateway/store/db';
import type { SpeechEngine } from '../../media';
import { Endpointer, HOLD_TONE, MediaClock, MediaWorkers, mediaWorkerCount, PortPool, renderTone, RINGBACK_TONE } from '../../media';
import type { Closer } from '../lifecycle';
import type { SyncService } from '../../sync';

export interface CallsWiring {
  config: Config;
  db: Db;
  /** Where call events go (the cloud link's outbox). */
  sync: SyncService<Config>;
  metrics: Metrics;
  log: Logger;
  closer: Closer;
}

export interface CallsWired {
  /** Call records (events go to the cloud). */
  store: CallStore;
  calls: CallManager;
  pool: PortPool;
  /** Media worker threads (forwarded calls), when media.workers is not 0. */
  workers: MediaWorkers | undefined;
  /** The media clock and hold audio that callback calls share with inbound calls. */
  media: Pick<CallDeps, 'clock' | 'holdFrames'>;
  /** The speech menus' engine when the IVR has one (live transcripts share it). */
  ivrEngine: SpeechEngine | undefined;
}

/**
 * The call path: call records (closing those an unclean stop left open), the RTP port pool, hold
 * audio, the IVR (prompts read once here, so a call's IVR starts without disk I/O) and the
 * CallManager. Nothing here needs closing: the daemon ends the calls before the rest closes.
 */
export async function wireCalls(w: CallsWiring): Promise<CallsWired> {
  const { config, log } = w;
  const store = new CallStore(w.db, w.sync);
  const orphans = await store.closeOrphans('daemon-restart');
  if (orphans > 0) log.warn({ orphans }, 'closed call records left open by an unclean stop');
  const pool = new PortPool(PortPool.parseRange(config.rtp.ports));
  const tone = config.calls.holdTone === 'ringback' ? RINGBACK_TONE : HOLD_TONE;
  const clock = new MediaClock();
  let ivr: CallDeps['ivr'];
  if (config.ivr) {
    // Prompts are read (or generated) once here, so a call's IVR starts without disk I/O.
    const prompts = IvrPrompts.forDataDir(config.dataDir, log.child({ component: 'ivr' }));
    await prompts.preload(ivrPromptNames(config.ivr));
    const speech = createIvrSpeech(config.ivr, () => config.intents, config.speech, (limits) => new Endpointer(limits), log.child({ component: 'speech' }));
    ivr = { config: config.ivr, prompts, ...(speech ? { speech } : {}) };
    log.info({ entry: config.ivr.entry, menus: Object.keys(config.ivr.menus).length, prompts: prompts.dir }, 'IVR on');
  }
  const holdFrames = { PCMU: renderTone(tone, 'PCMU'), PCMA: renderTone(tone, 'PCMA') };
  const workers = await startMediaWorkers(config, log, w.closer);
  if (workers) {
    w.metrics.mediaWorkerStatus = () => workers.status;
    workers.on('lost', (index) => w.metrics.mediaWorkerDeaths.inc({ worker: String(index) }));
  }
  const calls = new CallManager({ config, store, metrics: w.metrics, clock, holdFrames, ivr }, pool, log, workers);
  return { store, calls, pool, workers, media: { clock, holdFrames }, ivrEngine: ivr?.speech?.engine };
}

/** media.workers threads (none: 0, or a bundle without the worker script). Closed after the calls ended. */
async function startMediaWorkers(config: Config, log: Logger, closer: Closer): Promise<MediaWorkers | undefined> {
  const count = mediaWorkerCount(config.media.workers);
  if (count === 0) return undefined;
  if (!MediaWorkers.available()) {
    log.warn({ script: MediaWorkers.SCRIPT }, 'media worker script missing: forwarded calls use the main thread');
    return undefined;
  }
  const workers = await MediaWorkers.start({ count, log: log.child({ component: 'media-workers' }) });
  closer.defer('media workers', () => workers.close());
  log.info({ workers: count }, 'media workers started');
  return workers;
}
