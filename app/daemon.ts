import type { CallbackScheduler } from '../gateway/callbacks/callback-scheduler';
import type { CallManager } from '../gateway/calls/call-manager';
import type { Config } from '../gateway/config/schema';
import { siteUrls } from '../gateway/http/landing-page';
import type { Logger } from '../gateway/logging';
import { Metrics } from '../gateway/metrics';
import type { RecordingService } from '../gateway/recording/recording-service';
import type { SipServer } from '../gateway/sip/sip-server';
import type { TranscriptService } from '../gateway/transcripts/transcript-service';
import { VERSION } from '../gateway/version';
import type { SpeechEngine } from '../media';
import { Closer } from './lifecycle';
import { wireAgents } from './wiring/agents';
import { wireCallbacks } from './wiring/callbacks';
import { wireCalls } from './wiring/calls';
import { openCloudLink, wireCloudCommands } from './wiring/cloud';
import { wireDesk } from './wiring/desk';
import { wireHardware } from './wiring/hardware';
import { wireHttp } from './wiring/http';
import { wireRouting } from './wiring/routing';
import { wireSip } from './wiring/sip';
import { openStore } from './wiring/store';
import { openVault } from './wiring/vault';

const SHUTDOWN_BYE_WAIT_MS = 2000;

/** The composition root: builds every part from the validated config, and stops them in reverse. */
export class Daemon {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly config: Config,
    private readonly log: Logger,
    readonly calls: CallManager,
    private readonly sip: SipServer,
    readonly httpPort: number,
    /** What ends the calls, before anything else closes. */
    private readonly drain: {
      callbacks: CallbackScheduler;
      recording: RecordingService;
      transcripts: TranscriptService;
      /** The one on-site engine the speech menus and live transcripts share (closed after the calls). */
      speechEngine: SpeechEngine | undefined;
    },
    /** Everything else, closed in reverse order of opening. */
    private readonly closer: Closer,
  ) {}

  /**
   * `opts.configFile`: the file the config came from; with it the first-run /setup page is on
   * (it rewrites that file, then `onSetupDone` restarts the daemon into it).
   *
   * Each step below (app/wiring/) builds one subsystem from what the earlier steps built and
   * registers its closes with the Closer as its parts open, so the stop runs this list backwards.
   */
  static async start(config: Config, log: Logger, opts: { configFile?: string; onSetupDone?: () => void } = {}): Promise<Daemon> {
    // Config pushes from the cloud are checked against the file's config (desired: cloud wins);
    // `config` itself is the running one that every component shares.
    const fileConfig = structuredClone(config);
    // Every part registers its close as soon as it exists: a start that fails half way closes
    // exactly what it opened, in reverse (app/lifecycle.ts).
    const closer = new Closer(log);
    try {
      const { db, peopleStore, storedPeople } = await openStore({ config, log, closer });
      const cloud = await openCloudLink({ config, fileConfig, db, log, closer, storedPeople });
      const vault = await openVault({ config, db, log, closer, anchor: cloud.anchorAuditHead });
      const metrics = new Metrics();
      const { store, calls, pool, workers, media, ivrEngine } = await wireCalls({ config, db, sync: cloud.sync, metrics, log, closer });
      const agents = await wireAgents({ config, db, log, metrics, closer, peopleStore, storedPeople, cloud });
      // The link's republish and config-apply hooks reach parts built after it (wiring/cloud.ts, CloudLateBound).
      cloud.late.kpi = agents.kpi;
      const desk = wireDesk({ config, db, log, metrics, closer, cloud, vault, store, calls, agents, ivrEngine, mediaWorkers: workers?.count ?? 0 });
      cloud.late.applyPushed = wireRouting({ config, log, calls, desk: desk.desk, acd: agents.acd, people: agents.people, cloud });
      const { certs, sip } = await wireSip({ config, log, metrics, closer, calls });
      const callbacks = wireCallbacks({ config, db, log, metrics, store, calls, media, desk: desk.desk, liveCallbacks: desk.liveCallbacks });
      cloud.late.updates = wireCloudCommands({ config, log, closer, cloud, acd: agents.acd, vault, health: () => ({ calls: calls.active, rtpPortsInUse: pool.inUse }) });
      const startedAt = new Date();
      const hw = wireHardware({ config, db, log, metrics, closer, cloud, calls, sip });
      const { http, backup, setup } = wireHttp({ config, db, log, metrics, closer, cloud, vault, store, calls, pool, workers, certs, hw, agents, desk, startedAt, configFile: opts.configFile, onSetupDone: opts.onSetupDone });
      await cloud.sync.start();
      await sip.start();
      const httpPort = await http.start();
      await hw.start();
      await hw.ready(`ccedge ${VERSION} ready`);
      if (callbacks.enabled) await callbacks.restore();
      await backup.start();
      log.info({ version: VERSION, site: config.site.id, device: config.site.deviceId, dataDir: config.dataDir, sipPort: config.sip.port, httpPort, httpsPort: http.httpsPort ?? null }, 'ccedge ready');
      logSiteUrls(log, config, httpPort, http.httpsPort, setup?.open ?? false);
      const drain = { callbacks, recording: desk.recording, transcripts: desk.transcripts, speechEngine: desk.speechEngine };
      return new Daemon(config, log, calls, sip, httpPort, drain, closer);
    } catch (e) {
      log.error({ err: e, closing: closer.order }, 'start failed; closing what was opened');
      await closer.close();
      throw e;
    }
  }

  /** OPTIONS to our own SIP listener, admitted by the source gate's per-process secret (the update's health check). */
  sipSelfCheck(): Promise<void> {
    return this.sip.selfCheck();
  }

  /**
   * Graceful stop, idempotent: first the calls end (callbacks stop dialling, recordings close, every
   * call gets its BYE, their transcripts are stored, the speech engine finishes their last words),
   * then every other part closes in reverse order of opening (the database last).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.log.info({ calls: this.calls.active }, 'stopping');
      await this.drain.callbacks.close();
      this.drain.recording.close();
      await this.calls.closeAll(SHUTDOWN_BYE_WAIT_MS);
      // The ended calls' transcripts are being stored: before the database closes.
      await this.drain.transcripts.drain();
      // Only now: a call's last words were still being recognised while it ended.
      await this.drain.speechEngine?.close();
      await this.closer.close();
      this.log.info('stopped');
    })();
    return this.closing;
  }
}

/** Where people open the box: one line a human reads in the journal, the full list as fields. */
function logSiteUrls(log: Logger, config: Config, httpPort: number, httpsPort: number | undefined, setupOpen: boolean): void {
  const urls = siteUrls({ httpHost: config.http.host, httpPort, httpsHost: config.https.host ?? config.http.host, httpsPort, names: [...config.certificates.names, ...config.https.names] });
  const first = (p: string): string => urls.pages[p]?.[0] ?? '';
  const setup = setupOpen ? `; first run: ${urls.landing[0]}setup (claim code)` : '';
  log.info(
    { urls: urls.landing, agent: urls.pages['/agent'], supervisor: urls.pages['/supervisor'], wallboard: urls.pages['/wallboard'], ca: urls.pages['/ca.crt'], trust: urls.pages['/trust'], health: urls.pages['/healthz'] },
    `open ${urls.landing.join(' ')} — agents ${first('/agent')}, supervisors ${first('/supervisor')}, wallboard ${first('/wallboard')}, site CA ${first('/ca.crt')} (${first('/trust')}), status ${first('/healthz')}${setup}`,
  );
}
