import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { PortPool } from '../media';
import { MediaClock } from '../media';
import { HOLD_TONE, RINGBACK_TONE, renderTone } from '../media';
import { Acd } from '../gateway/acd/acd';
import { AgentDirectory } from '../gateway/acd/agent-directory';
import { AgentPasswordStore } from '../gateway/store/agent-password-store';
import { PeopleStore } from '../gateway/people/people-store';
import { assignPeople, checkWithConfig, PeopleService } from '../gateway/people/people-service';
import { handlePeopleApi, isPeoplePath } from '../gateway/people/people-api';
import type { People } from '../gateway/people/people-edit';
import { isDeepStrictEqual } from 'node:util';
import { SetupService } from '../gateway/setup/setup-service';
import { siteUrls } from '../gateway/http/landing-page';
import { AgentDesk } from '../gateway/agents/agent-desk';
import { AgentSessions, SessionHub } from '../gateway/agents/agent-sessions';
import { supervisorClientMessage, type SupervisorClientMessage, type SupervisorServerMessage } from '../gateway/supervisor/protocol';
import { CallMonitoring } from '../gateway/supervisor/call-monitoring';
import { SupervisorDesk } from '../gateway/supervisor/supervisor-desk';
import { SupervisorAuditStore } from '../gateway/store/supervisor-audit-store';
import { CallbackCall } from '../gateway/callbacks/callback-call';
import { CallbackScheduler } from '../gateway/callbacks/callback-scheduler';
import { CallbackStore } from '../gateway/callbacks/callback-store';
import { CallManager } from '../gateway/calls/call-manager';
import { kpiOptions } from '../gateway/kpi/config';
import { KpiRecorder } from '../gateway/kpi/kpi-recorder';
import { KpiService, registerKpiMetrics } from '../gateway/kpi/kpi-service';
import { KpiStore } from '../gateway/kpi/kpi-store';
import { adminTokenCheck, WallboardHub } from '../gateway/wallboard/wallboard-hub';
import { ivrPromptNames } from '../gateway/ivr/config';
import { IvrPrompts } from '../gateway/ivr/prompts';
import { createIvrSpeech, type IvrSpeechDeps } from '../gateway/speech/ivr-speech';
import { Endpointer } from '../media';
import { Router } from '../gateway/routing/router';
import { openVault } from './wiring/vault';
import { RecordingService } from '../gateway/recording/recording-service';
import type { TranscriptService } from '../gateway/transcripts/transcript-service';
import { wireSpeech } from './wiring/speech';
import type { SpeechEngine } from '../media';
import { recordingsApi } from '../gateway/recording/recordings-api';
import { resolveSiteSecret, SyncService, type CloudEvent } from '../sync';
import { registerCloudCommands } from '../gateway/cloud-commands';
import { siteIPv4Addresses } from '../gateway/net/addresses';
import { CertificateExpiryCheck } from '../gateway/certs/expiry';
import { openSiteCertificates, SiteCertificates, storeOptions } from '../gateway/certs/site-certs';
import { AgentStore } from '../gateway/store/agent-store';
import type { Config } from '../gateway/config/schema';
import { assignHotSections, checkDesiredConfig } from '../gateway/config/live-config';
import { resolveAdminToken } from '../gateway/http/admin-token';
import { HttpServer } from '../gateway/http/http-server';
import { Semaphore } from '../gateway/net/semaphore';
import type { Logger } from '../gateway/logging';
import { Metrics } from '../gateway/metrics';
import { SipServer } from '../gateway/sip/sip-server';
import { CallStore } from '../gateway/store/call-store';
import { Db } from '../gateway/store/db';
import { VERSION } from '../gateway/version';
import { HwService } from '../hw';
import { hwCloudEvent } from '../gateway/hw-events';
import { registerUpdateCommands, type UpdateCommands } from '../image/update-cloud';
import { BackupService } from '../gateway/backup';
import { Closer } from './lifecycle';

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
   */
  static async start(config: Config, log: Logger, opts: { configFile?: string; onSetupDone?: () => void } = {}): Promise<Daemon> {
    // Config pushes from the cloud are checked against the file's config (desired: cloud wins);
    // `config` itself is the running one that every component shares.
    const fileConfig = structuredClone(config);
    // Every part registers its close as soon as it exists: a start that fails half way closes
    // exactly what it opened, in reverse (app/lifecycle.ts).
    const closer = new Closer(log);
    try {
      const db = await Db.open(path.join(config.dataDir, 'ccedge.db'));
      closer.defer('database', () => db.close());
      const bootId = randomUUID();
      let kpiForSync: KpiService | undefined;
      let applyPushed: ((next: Config) => Promise<void>) | undefined;
      // People and queues changed live (API, CLI, cloud) live in the database and replace the
      // file's agents/queues/away reasons (gateway/people/).
      const peopleStore = new PeopleStore(db);
      let storedPeople: People | undefined;
      const stored = await peopleStore.get();
      if (stored) {
        try {
          checkWithConfig(config, stored.people);
          storedPeople = stored.people;
          assignPeople(config, storedPeople);
          log.info({ version: stored.version, source: stored.source, updatedAt: stored.updatedAt, agents: storedPeople.agents.length, queues: storedPeople.queues.length }, 'agents and queues come from the database (changed live); the config file\'s agents, queues and away reasons are not used');
        } catch (err) {
          log.error({ err, code: 'CONFIG_INVALID', version: stored.version }, 'the agents and queues changed live no longer fit this config file; running the file\'s');
        }
      }
      // Pushes are checked against the file's config with the live people in place.
      const pushBase = (): Config => ({ ...fileConfig, agents: config.agents, queues: config.queues });
      let updatesForSync: UpdateCommands | undefined;
      // The retained `queues/<q>` topics that may exist: those of the running config's queues.
      const queueTopics = (): Set<string> => new Set(config.queues.map((q) => `queues/${q.name}`));
      const pruneQueueTopics = (): void => {
        sync.retained.prune('queues/', queueTopics()).catch((err: unknown) => log.warn({ err }, 'clearing retained snapshots of removed queues failed'));
      };
      const sync = new SyncService<Config>({
        db,
        log: log.child({ component: 'sync' }),
        siteId: config.site.id,
        deviceId: config.site.deviceId,
        version: VERSION,
        bootId,
        startedAt: new Date(),
        mqtt: config.mqtt,
        sync: config.sync,
        hmacKey: config.sync.policy.numbers.mode === 'hmac' ? resolveSiteSecret(config.dataDir, config.sync.hmacSecret).key : undefined,
        // After every (re)connect the cloud gets the full live state: queue snapshots (aggregates only).
        republish: (publish) => {
          for (const q of kpiForSync?.current().queues ?? []) if (queueTopics().has(`queues/${q.name}`)) publish(`queues/${q.name}`, q, { qos: 1, retain: true });
          updatesForSync?.republish();
          // Queues gone since their snapshot was retained (a push, or a restart with a smaller config
          // file) are cleared on the broker; a clear that failed before is retried here.
          pruneQueueTopics();
        },
        config: {
          validate: (desired) => checkDesiredConfig(pushBase(), desired),
          apply: async (next) => {
            if (!applyPushed) throw new Error('the daemon is still starting');
            await applyPushed(next);
          },
        },
      });
      closer.defer('cloud sync', () => sync.close());
      /**
       * An event with no call behind it (queue, recording, hardware, backup, certificate) in its own
       * transaction; a failed write is logged, never thrown at the part that raised it.
       */
      const writeEvent = (event: CloudEvent, what: string): void => {
        db.transaction((tx) => sync.append(tx, event.type, event.data)).catch((err: unknown) => log.error({ err, code: 'DB_FAILED', type: event.type }, `${what} event write failed`));
      };
      const pushed = await sync.config.applied();
      if (pushed) {
        // The last config the cloud pushed runs again after a restart, unless it no longer fits the file's.
        const checked = checkDesiredConfig(pushBase(), pushed.config);
        if (checked.ok) {
          assignHotSections(config, checked.value);
          log.info({ version: pushed.version, appliedAt: pushed.appliedAt }, 'running the config pushed by the cloud');
        } else log.error({ code: 'CONFIG_INVALID', version: pushed.version, error: checked.error }, 'the config pushed by the cloud no longer fits this config file; running the file config');
        // A push also saved its people; a later live change (API, CLI) is newer than the push.
        if (storedPeople) assignPeople(config, storedPeople);
      }
      const store = new CallStore(db, sync);
      const vault = await openVault({
        config,
        db,
        log,
        closer,
        anchor: (head) => db.transaction((tx) => sync.append(tx, 'recording.audit-head', { seq: head.seq, hash: head.hash })).then(() => undefined),
      });
      const orphans = await store.closeOrphans('daemon-restart');
      if (orphans > 0) log.warn({ orphans }, 'closed call records left open by an unclean stop');
      const metrics = new Metrics();
      const pool = new PortPool(PortPool.parseRange(config.rtp.ports));
      const tone = config.calls.holdTone === 'ringback' ? RINGBACK_TONE : HOLD_TONE;
      const clock = new MediaClock();
      let ivr: { config: NonNullable<Config['ivr']>; prompts: IvrPrompts; speech?: IvrSpeechDeps } | undefined;
      if (config.ivr) {
        // Prompts are read (or generated) once here, so a call's IVR starts without disk I/O.
        const prompts = IvrPrompts.forDataDir(config.dataDir, log.child({ component: 'ivr' }));
        await prompts.preload(ivrPromptNames(config.ivr));
        const speech = createIvrSpeech(config.ivr, () => config.intents, config.speech, (limits) => new Endpointer(limits), log.child({ component: 'speech' }));
        ivr = { config: config.ivr, prompts, ...(speech ? { speech } : {}) };
        log.info({ entry: config.ivr.entry, menus: Object.keys(config.ivr.menus).length, prompts: prompts.dir }, 'IVR on');
      }
      const callHoldFrames = { PCMU: renderTone(tone, 'PCMU'), PCMA: renderTone(tone, 'PCMA') };
      const calls = new CallManager(
        { config, store, metrics, clock, holdFrames: callHoldFrames, ivr },
        pool,
        log,
      );
      // One gate for every scrypt of the process: logins and config-password hashing share it, so
      // at most `concurrency` libuv pool threads hash and the rest stay free for sqlite3.
      const hashGate = new Semaphore({ concurrency: config.agentSessions.passwordHashing.concurrency, maxQueue: config.agentSessions.passwordHashing.maxQueue });
      const agentPasswords = new AgentPasswordStore(db);
      const directory = await AgentDirectory.create(config.agents, {
        sessionIdleS: config.agentSessions.idleTimeoutS,
        hashGate,
        changedPasswords: { initial: await agentPasswords.all(), save: (agent, changed) => agentPasswords.save(agent, changed) },
      });
      closer.defer('agent directory', () => directory.close());
      const acd = new Acd({ queues: config.queues, agents: directory.list() });
      closer.defer('acd', () => acd.close());
      const people = new PeopleService({ config, store: peopleStore, acd, directory, log: log.child({ component: 'people' }), changed: () => pruneQueueTopics() }, storedPeople);
      acd.on('queuePaused', (queue, paused) => {
        writeEvent({ type: 'queue.paused', data: { queue, paused } }, 'queue pause');
      });
      const kpiStore = new KpiStore(db);
      await kpiStore.closeOpenWrapUps();
      const kpiRecorder = new KpiRecorder({ store: kpiStore, acd, log: log.child({ component: 'kpi' }) });
      closer.defer('kpi recorder', () => kpiRecorder.flush());
      const kpi = new KpiService({
        store: kpiStore,
        recorder: kpiRecorder,
        snapshot: () => acd.snapshot(),
        agentQueues: (n) => config.agents.find((a) => a.name === n)?.queues ?? null,
        window: config.kpi.window,
        kpi: kpiOptions(config.kpi),
        targets: config.kpi.targets,
        log,
      });
      await kpi.start();
      closer.defer('kpi', () => kpi.close());
      kpiForSync = kpi;
      registerKpiMetrics(metrics.registry, kpi);
      kpi.on('update', (snapshot) => {
        // Only configured queues: a snapshot taken before a push removed a queue must not bring
        // back the retained message that the push just cleared.
        const live = queueTopics();
        for (const q of snapshot.queues) if (live.has(`queues/${q.name}`)) sync.publishLive(`queues/${q.name}`, q, { qos: 1, retain: true });
      });
      const sessions = new AgentSessions(directory, log, { config: config.agentSessions, metrics });
      closer.defer('agent sessions', () => sessions.close());
      const recording = new RecordingService(vault, () => config.recording, log.child({ component: 'recording' }), {
        alarm: (state, freeBytes, minFreeBytes) => {
          writeEvent({ type: 'recording.alarm', data: { alarm: 'disk-low', state, freeBytes, minFreeBytes } }, 'recording alarm');
        },
        stopped: (call, agent) => sessions.send(agent, { v: 1, type: 'recording', callId: call.id, active: false, paused: false }),
      });
      const { engine: transcriptEngine, transcripts, fork } = wireSpeech({
        config,
        vault,
        log,
        metrics,
        closer,
        ivrEngine: ivr?.speech?.engine,
        desk: {
          push: (agent, callId, u) => sessions.send(agent, { v: 1, type: 'transcript', callId, speaker: u.speaker, text: u.text, startMs: u.startMs, endMs: u.endMs, sentiment: u.sentiment, quality: u.quality }),
          recordAfterClose: (callId, type, data) => store.update(callId, {}, type, data),
        },
      });
      const desk = new AgentDesk({
        acd,
        sessions,
        agentStore: new AgentStore(db, sync),
        log,
        webrtc: { interfaces: webrtcInterfaces(config), portRange: PortPool.parseRange(config.webrtc.ports) },
        reconnectGraceS: config.agentSessions.reconnectGraceS,
        kpi: kpiRecorder,
        recording,
        desk: config.agentDesk,
        callStore: store,
        registry: metrics.registry,
        maxParties: config.calls.maxParties,
        // Transcripts first: a fork endpoint's transcript events feed the transcript it opened.
        bridged: [transcripts.bridged, fork.bridged],
      });
      closer.defer('agent desk', () => desk.close());
      // Supervisors log in through the same door as agents (shared throttling and limits) at /supervisor.
      const supervisorHub = new SessionHub<SupervisorClientMessage, SupervisorServerMessage>(directory, log, {
        role: 'supervisor',
        schema: supervisorClientMessage,
        metrics,
        shareWith: sessions,
      });
      closer.defer('supervisor sessions', () => supervisorHub.close());
      const supervisorAudit = new SupervisorAuditStore(db, sync);
      // Callbacks are not CallManager's: monitoring finds them here while they live.
      const callbackCalls = new Map<string, CallbackCall>();
      const webrtcLegs = { interfaces: webrtcInterfaces(config), portRange: PortPool.parseRange(config.webrtc.ports) };
      const monitoring = new CallMonitoring({ findCall: (id) => calls.get(id) ?? callbackCalls.get(id), webrtc: webrtcLegs, log, registry: metrics.registry });
      const supervisorDesk = new SupervisorDesk({
        monitoring,
        acd,
        hub: supervisorHub,
        agents: sessions,
        callerPrivate: (id) => desk.callerPrivate(id),
        awayReasons: config.agentDesk.awayReasons,
        audit: supervisorAudit,
        config: config.supervisor,
        displayName: (n) => directory.get(n)?.displayName,
        log,
      });
      closer.defer('supervisor desk', () => supervisorDesk.close());
      const routing = { router: new Router({ config }), acd };
      calls.routeAnsweredCallsTo(desk, routing);
      applyPushed = async (next) => {
        // Everything that can refuse runs first; then the swap happens in one synchronous step.
        const router = new Router({ config: next });
        // Only what the push changed: the running agents keep their hashes (a file's clear
        // passwords are hashed by the people service, never saved as they are).
        const agentsChanged = !isDeepStrictEqual(next.agents, config.agents);
        const queuesChanged = !isDeepStrictEqual(next.queues, config.queues);
        if (agentsChanged || queuesChanged) {
          await people.change('cloud', (p) => ({ people: { ...p, agents: agentsChanged ? next.agents : p.agents, queues: queuesChanged ? next.queues : p.queues } }), { against: next, saveOnlyIfLive: true });
        }
        assignHotSections(config, next);
        routing.router = router;
        log.info({ queues: next.queues.map((q) => q.name), intents: next.intents.length }, 'config from the cloud is now running');
        pruneQueueTopics();
      };
      // One certificate store for every TLS listener (SIP over TLS here; HTTPS reuses it).
      const certs = await openSiteCertificates(config, log.child({ component: 'certs' }));
      if (certs) closer.defer('certificate watch', () => certs.close());
      const sip = new SipServer(config, log, metrics, calls, certs);
      closer.defer('sip', () => sip.close());
      // Forwarded calls (routing.forward) place their far leg through a trunk's outbound address.
      calls.placeOutboundWith((trunk, number) => sip.createOutbound(trunk, number));
      const callbackStore = new CallbackStore(db);
      const callbacks: CallbackScheduler = new CallbackScheduler({
        config,
        store: callbackStore,
        log: log.child({ component: 'callbacks' }),
        enqueue: (call, queue, queuedAt) => desk.enqueue(call, queue, queuedAt),
        makeCall: (record) => {
          const call = new CallbackCall(record, {
            config,
            calls: store,
            callbacks: callbackStore,
            metrics,
            clock,
            holdFrames: callHoldFrames,
            trunk: callbacks.trunk as string,
            // The same outbound leg as forwards and REFER: the trunk's outbound address, a pool port.
            dialOutbound: calls.outboundDialer,
            log,
          });
          callbackCalls.set(call.id, call);
          call.once('closed', () => callbackCalls.delete(call.id));
          return call;
        },
      });
      desk.offerCallbacks(callbacks);
      registerCloudCommands(sync, { config, acd, bootId, vault, health: () => ({ calls: calls.active, rtpPortsInUse: pool.inUse }) });
      // Signed A/B updates from the cloud (image/): update.apply, update.chunk, update.status.
      const updates = registerUpdateCommands(sync.commands, {
        dataDir: config.dataDir,
        version: VERSION,
        publish: (suffix, payload, opts) => sync.publishLive(suffix, payload, opts),
        log: log.child({ component: 'update' }),
      });
      updatesForSync = updates;
      closer.defer('update commands', () => updates.close());
      const startedAt = new Date();
      const { dahdiDir, ...hwConfig } = config.hw;
      const hw = new HwService({
        config: hwConfig,
        dataDir: config.dataDir,
        dahdiDir,
        log: log.child({ component: 'hw' }),
        // Alarms and faults are events like any other: outbox, residency policy, the cloud.
        emit: (...event) => writeEvent(hwCloudEvent(...event), 'hardware'),
        panelInfo: () => ({ site: config.site.id, ip: webrtcInterfaces(config)[0] ?? null, activeCalls: calls.active }),
        // The watchdog is fed only while these pass (the event loop is checked by hw itself).
        checks: {
          sip: () => sip.selfCheck(),
          db: async () => {
            await db.get('SELECT 1');
          },
        },
      });
      hw.registerMetrics(metrics.registry);
      hw.on('health', (msg) => sync.publishLive('health', msg, { qos: 0 }));
      // Late in the stop: the watchdog is disarmed (magic close) and serial ports released.
      closer.defer('hardware', () => hw.close());
      const admin = resolveAdminToken(config.dataDir, config.http.adminToken);
      if (admin.file) log.info({ file: admin.file }, 'admin API token is in this file');
      const backup = new BackupService({
        config: () => config.backup,
        db,
        dataDir: config.dataDir,
        site: config.site.id,
        device: config.site.deviceId,
        version: VERSION,
        log: log.child({ component: 'backup' }),
        registry: metrics.registry,
        emit: (event) => writeEvent(event, 'backup'),
      });
      // A backup under way finishes (or fails) before the database it reads closes.
      closer.defer('backups', () => backup.close());
      const wallboard = new WallboardHub({ authorise: adminTokenCheck(admin.token), current: () => kpi.current(), log });
      closer.defer('wallboard', () => wallboard.close());
      kpi.on('update', (snapshot) => wallboard.publish(snapshot));
      const setup = opts.configFile
        ? new SetupService({ configFile: opts.configFile, dataDir: config.dataDir, config: config.setup, log: log.child({ component: 'setup' }), onDone: opts.onSetupDone ?? (() => undefined) })
        : undefined;
      if (setup) closer.defer('first-run setup', () => setup.close());
      const http = new HttpServer({
        setup,
        host: config.http.host,
        port: config.http.port,
        adminToken: admin.token,
        metrics,
        store,
        log,
        agents: { login: (body, remote) => sessions.login(body, remote), handleUpgrade: (req, socket, head) => sessions.handleUpgrade(req, socket, head) },
        supervisors: { login: (body, remote) => supervisorHub.login(body, remote), handleUpgrade: (req, socket, head) => supervisorHub.handleUpgrade(req, socket, head) },
        supervisorAudit: (limit) => supervisorAudit.list(limit),
        agentStates: () => desk.agentStatuses(),
        people: {
          handles: isPeoplePath,
          handle: (req) => handlePeopleApi(people, { agentStates: () => desk.agentStatuses(), queueKpis: () => kpi.queues() }, req),
        },
        transfers: { transfer: (callId, target) => desk.transferCall(callId, target) },
        kpi,
        wallboard,
        sync: { status: () => sync.status() },
        tokens: config.http.tokens,
        // HTTPS/WSS with the same certificate as SIP over TLS; without a certificate, plain HTTP only.
        https: config.https.enabled && certs ? { host: config.https.host ?? config.http.host, port: config.https.port, certs } : undefined,
        limits: { maxBodyBytes: config.http.maxBodyBytes, tokenFailures: config.http.tokenFailures, log: config.http.log },
        recordings: recordingsApi(vault, store),
        hw: { health: () => hw.healthSnapshot(), trunks: () => hw.trunksSnapshot() },
        backup: { status: () => backup.status(), run: (to) => backup.runNow(to) },
        health: () => ({
          version: VERSION,
          pid: process.pid,
          site: config.site.id,
          device: config.site.deviceId,
          startedAt: startedAt.toISOString(),
          uptimeS: Math.round((Date.now() - startedAt.getTime()) / 1000),
          calls: calls.active,
          rtpPortsInUse: pool.inUse,
          backup: backup.status(),
        }),
      });
      closer.defer('http', () => http.close());
      if (certs) {
        const certLog = log.child({ component: 'certs' });
        // Renewed or replaced files: the next HTTPS handshakes use them (SIP asks the store per connection).
        certs.watch(config.certificates.reloadCheckS * 1000, () => http.reloadCertificate());
        const expiry = new CertificateExpiryCheck({
          certs,
          alarmDays: config.certificates.expiryAlarmDays,
          registry: metrics.registry,
          log: certLog,
          emit: (event) => writeEvent(event, 'certificate'),
          renew: async () => {
            await SiteCertificates.renew(storeOptions(config, certLog));
            certs.reloadIfChanged();
          },
        });
        expiry.start();
        closer.defer('certificate expiry check', () => expiry.close());
      }
      await sync.start();
      await sip.start();
      const httpPort = await http.start();
      await hw.start();
      await hw.ready(`ccedge ${VERSION} ready`);
      if (callbacks.enabled) await callbacks.restore();
      await backup.start();
      log.info({ version: VERSION, site: config.site.id, device: config.site.deviceId, dataDir: config.dataDir, sipPort: config.sip.port, httpPort, httpsPort: http.httpsPort ?? null }, 'ccedge ready');
      logSiteUrls(log, config, httpPort, http.httpsPort, setup?.open ?? false);
      return new Daemon(config, log, calls, sip, httpPort, { callbacks, recording, transcripts, speechEngine: transcriptEngine }, closer);
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

/** Host-candidate addresses for agent legs: configured, else the site's IPv4 addresses. */
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

function webrtcInterfaces(config: Config): string[] {
  if (config.webrtc.interfaces) return config.webrtc.interfaces;
  const site = siteIPv4Addresses();
  return site.length ? site : ['127.0.0.1'];
}
