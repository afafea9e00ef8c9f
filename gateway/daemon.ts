import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { PortPool } from '../media/rtp/port-pool';
import { MediaClock } from '../media/tones/media-clock';
import { HOLD_TONE, RINGBACK_TONE, renderTone } from '../media/tones/tone';
import { Acd } from './acd/acd';
import { AgentDirectory } from './acd/agent-directory';
import { AgentPasswordStore } from './store/agent-password-store';
import { PeopleStore } from './people/people-store';
import { assignPeople, checkWithConfig, PeopleService } from './people/people-service';
import { handlePeopleApi, isPeoplePath } from './people/people-api';
import type { People } from './people/people-edit';
import { isDeepStrictEqual } from 'node:util';
import { SetupService } from './setup/setup-service';
import { siteUrls } from './http/landing-page';
import { AgentDesk } from './agents/agent-desk';
import { AgentSessions, SessionHub } from './agents/agent-sessions';
import { supervisorClientMessage, type SupervisorClientMessage, type SupervisorServerMessage } from './supervisor/protocol';
import { CallMonitoring } from './supervisor/call-monitoring';
import { SupervisorDesk } from './supervisor/supervisor-desk';
import { SupervisorAuditStore } from './store/supervisor-audit-store';
import { CallbackCall } from './callbacks/callback-call';
import { CallbackScheduler } from './callbacks/callback-scheduler';
import { CallbackStore } from './callbacks/callback-store';
import { CallManager } from './calls/call-manager';
import { kpiOptions } from './kpi/config';
import { KpiRecorder } from './kpi/kpi-recorder';
import { KpiService, registerKpiMetrics } from './kpi/kpi-service';
import { KpiStore } from './kpi/kpi-store';
import { adminTokenCheck, WallboardHub } from './wallboard/wallboard-hub';
import { ivrPromptNames } from './ivr/config';
import { IvrPrompts } from './ivr/prompts';
import { createIvrSpeech, type IvrSpeechDeps } from './speech/ivr-speech';
import { Endpointer } from '../media/speech/endpointer';
import { Router } from './routing/router';
import { Vault } from '../media/vault/vault';
import { RecordingService } from './recording/recording-service';
import { ForkService } from './speech/fork-wiring';
import { TranscriptService } from './transcripts/transcript-service';
import { PocketsphinxEngine } from '../media/speech/pocketsphinx';
import type { SpeechEngine } from '../media/speech/contract';
import { recordingsApi } from './recording/recordings-api';
import { resolveSiteSecret, SyncService } from '../sync';
import { registerCloudCommands } from './cloud-commands';
import { siteIPv4Addresses } from './net/addresses';
import { CertificateExpiryCheck } from './certs/expiry';
import { openSiteCertificates, SiteCertificates, storeOptions } from './certs/site-certs';
import { AgentStore } from './store/agent-store';
import type { Config } from './config/schema';
import { assignHotSections, checkDesiredConfig } from './config/live-config';
import { resolveAdminToken } from './http/admin-token';
import { HttpServer } from './http/http-server';
import { Semaphore } from './net/semaphore';
import type { Logger } from './logging';
import { Metrics } from './metrics';
import { SipServer } from './sip/sip-server';
import { CallStore } from './store/call-store';
import { Db } from './store/db';
import { VERSION } from './version';
import { HwService } from '../hw';
import { hwCloudEvent } from './hw-events';
import { registerUpdateCommands, type UpdateCommands } from '../image/update-cloud';
import { BackupService } from './backup';

const SHUTDOWN_BYE_WAIT_MS = 2000;

/** The composition root: builds every part from the validated config, and stops them in reverse. */
export class Daemon {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: Config,
    private readonly log: Logger,
    private readonly db: Db,
    readonly calls: CallManager,
    private readonly sip: SipServer,
    private readonly http: HttpServer,
    readonly httpPort: number,
    private readonly agents: {
      desk: AgentDesk;
      sessions: AgentSessions;
      supervisors: { hub: SessionHub<SupervisorClientMessage, SupervisorServerMessage>; desk: SupervisorDesk };
      acd: Acd;
      directory: AgentDirectory;
      callbacks: CallbackScheduler;
      kpi: KpiService;
      kpiRecorder: KpiRecorder;
      wallboard: WallboardHub;
      sync: SyncService;
      recording: RecordingService;
      transcripts: TranscriptService;
      /** The one on-site engine the speech menus and live transcripts share (closed after the calls). */
      speechEngine: SpeechEngine | undefined;
      hw: HwService;
      backup: BackupService;
      /** Housekeeping intervals (retention sweep), cleared on stop. */
      timers: NodeJS.Timeout[];
      timersStop: Array<() => void>;
    },
  ) {}

  /**
   * `opts.configFile`: the file the config came from; with it the first-run /setup page is on
   * (it rewrites that file, then `onSetupDone` restarts the daemon into it).
   */
  static async start(config: Config, log: Logger, opts: { configFile?: string; onSetupDone?: () => void } = {}): Promise<Daemon> {
    // Config pushes from the cloud are checked against the file's config (desired: cloud wins);
    // `config` itself is the running one that every component shares.
    const fileConfig = structuredClone(config);
    const db = await Db.open(path.join(config.dataDir, 'ccedge.db'));
    const timers: NodeJS.Timeout[] = [];
    let hwRef: HwService | undefined;
    /** Stop hooks of parts that own a timer (run on stop and on a failed start). */
    const timersStop: Array<() => void> = [];
    try {
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
      const vault = Vault.open({ dataDir: config.dataDir, db, log: log.child({ component: 'vault' }) });
      const recovered = await vault.recoverOpen();
      if (recovered.length) log.warn({ recordings: recovered.length }, 'finalised recordings left open by an unclean stop');
      const sweeper = setInterval(() => {
        vault.sweepExpired(new Date()).catch((err: unknown) => log.error({ err }, 'recording retention sweep failed'));
      }, 3600_000);
      sweeper.unref();
      timers.push(sweeper);
      // The audit log's head leaves the site (a hash, nothing else) so a tail cut off the log can be
      // proven later with `ccedge recordings verify --anchor SEQ:HASH`.
      let anchoredSeq = 0;
      const anchorAuditHead = (): void => {
        vault.audit
          .head()
          .then((head) => {
            if (!head || head.seq === anchoredSeq) return;
            anchoredSeq = head.seq;
            return db.transaction((tx) => sync.append(tx, 'recording.audit-head', { seq: head.seq, hash: head.hash })).then(() => undefined);
          })
          .catch((err: unknown) => log.error({ err }, 'audit head anchoring failed'));
      };
      anchorAuditHead();
      const anchorTimer = setInterval(anchorAuditHead, config.recording.anchorEveryS * 1000);
      anchorTimer.unref();
      timers.push(anchorTimer);
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
      const acd = new Acd({ queues: config.queues, agents: directory.list() });
      const people = new PeopleService({ config, store: peopleStore, acd, directory, log: log.child({ component: 'people' }), changed: () => pruneQueueTopics() }, storedPeople);
      acd.on('queuePaused', (queue, paused) => {
        db.transaction((tx) => sync.append(tx, 'queue.paused', { queue, paused })).catch((err: unknown) => log.error({ err, code: 'DB_FAILED' }, 'queue pause event write failed'));
      });
      const kpiStore = new KpiStore(db);
      await kpiStore.closeOpenWrapUps();
      const kpiRecorder = new KpiRecorder({ store: kpiStore, acd, log: log.child({ component: 'kpi' }) });
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
      kpiForSync = kpi;
      registerKpiMetrics(metrics.registry, kpi);
      kpi.on('update', (snapshot) => {
        // Only configured queues: a snapshot taken before a push removed a queue must not bring
        // back the retained message that the push just cleared.
        const live = queueTopics();
        for (const q of snapshot.queues) if (live.has(`queues/${q.name}`)) sync.publishLive(`queues/${q.name}`, q, { qos: 1, retain: true });
      });
      const sessions = new AgentSessions(directory, log, { config: config.agentSessions, metrics });
      const recording = new RecordingService(vault, () => config.recording, log.child({ component: 'recording' }), {
        alarm: (state, freeBytes, minFreeBytes) => {
          db.transaction((tx) => sync.append(tx, 'recording.alarm', { alarm: 'disk-low', state, freeBytes, minFreeBytes })).catch((err: unknown) =>
            log.error({ err, code: 'DB_FAILED' }, 'recording alarm write failed'),
          );
        },
        stopped: (call, agent) => sessions.send(agent, { v: 1, type: 'recording', callId: call.id, active: false, paused: false }),
      });
      // Media fork to on-prem AudioHook endpoints (speech.fork); gateway/transcripts passes its sink as sinkFor.
      // Built-in transcripts share the speech menus' engine (one box-wide speech.engine.maxConcurrent).
      let transcriptEngine: SpeechEngine | undefined = ivr?.speech?.engine;
      if (!transcriptEngine) {
        const own = new PocketsphinxEngine({ config: config.speech.engine, log: log.child({ component: 'speech' }) });
        const why = own.unavailableReason;
        if (why === null) {
          transcriptEngine = own;
        } else if (config.speech.transcripts.queues.length || config.speech.transcripts.intents.length) {
          log.warn({ code: 'SPEECH_UNAVAILABLE', reason: why }, 'no built-in transcripts: the speech engine cannot run');
        }
      }
      // Transcripts (speech.transcripts): live on the agent's desk, stored encrypted in the vault at call end.
      const transcripts = new TranscriptService(
        vault,
        () => config.speech.transcripts,
        () => config.recording,
        {
          push: (agent, callId, u) => sessions.send(agent, { v: 1, type: 'transcript', callId, speaker: u.speaker, text: u.text, startMs: u.startMs, endMs: u.endMs, sentiment: u.sentiment, quality: u.quality }),
          recordAfterClose: (callId, type, data) => store.update(callId, {}, type, data),
        },
        log.child({ component: 'transcripts' }),
        () => transcriptEngine,
        metrics.registry,
      );
      const fork = new ForkService({ config: () => config.speech.fork, log: log.child({ component: 'speech-fork' }), registry: metrics.registry, sinkFor: transcripts.sinkForFork });
      timersStop.push(() => void fork.close());
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
      // Supervisors log in through the same door as agents (shared throttling and limits) at /supervisor.
      const supervisorHub = new SessionHub<SupervisorClientMessage, SupervisorServerMessage>(directory, log, {
        role: 'supervisor',
        schema: supervisorClientMessage,
        metrics,
        shareWith: sessions,
      });
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
      const sip = new SipServer(config, log, metrics, calls, certs);
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
        publish: (suffix, payload, opts) => sync.publishLive(suffix, payload, opts),
        log: log.child({ component: 'update' }),
      });
      updatesForSync = updates;
      timersStop.push(() => updates.stop());
      const startedAt = new Date();
      const { dahdiDir, ...hwConfig } = config.hw;
      const hw = new HwService({
        config: hwConfig,
        dataDir: config.dataDir,
        dahdiDir,
        log: log.child({ component: 'hw' }),
        // Alarms and faults are events like any other: outbox, residency policy, the cloud.
        emit: (...event) => {
          const e = hwCloudEvent(...event);
          db.transaction((tx) => sync.append(tx, e.type, e.data)).catch((err: unknown) => log.error({ err, code: 'DB_FAILED', type: e.type }, 'hardware event write failed'));
        },
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
      hwRef = hw;
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
        emit: ({ type, data }) => {
          db.transaction((tx) => sync.append(tx, type, data)).catch((err: unknown) => log.error({ err, code: 'DB_FAILED', type }, 'backup event write failed'));
        },
      });
      timersStop.push(() => void backup.close());
      const wallboard = new WallboardHub({ authorise: adminTokenCheck(admin.token), current: () => kpi.current(), log });
      kpi.on('update', (snapshot) => wallboard.publish(snapshot));
      const setup = opts.configFile
        ? new SetupService({ configFile: opts.configFile, dataDir: config.dataDir, config: config.setup, log: log.child({ component: 'setup' }), onDone: opts.onSetupDone ?? (() => undefined) })
        : undefined;
      if (setup) timersStop.push(() => setup.close());
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
      if (certs) {
        const certLog = log.child({ component: 'certs' });
        // Renewed or replaced files: the next HTTPS handshakes use them (SIP asks the store per connection).
        certs.watch(config.certificates.reloadCheckS * 1000, () => http.reloadCertificate());
        const expiry = new CertificateExpiryCheck({
          certs,
          alarmDays: config.certificates.expiryAlarmDays,
          registry: metrics.registry,
          log: certLog,
          emit: ({ type, data }) => {
            db.transaction((tx) => sync.append(tx, type, data)).catch((err: unknown) => log.error({ err, code: 'DB_FAILED', type }, 'certificate event write failed'));
          },
          renew: async () => {
            await SiteCertificates.renew(storeOptions(config, certLog));
            certs.reloadIfChanged();
          },
        });
        expiry.start();
        timersStop.push(() => expiry.stop());
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
      return new Daemon(config, log, db, calls, sip, http, httpPort, { desk, sessions, supervisors: { hub: supervisorHub, desk: supervisorDesk }, acd, directory, callbacks, kpi, kpiRecorder, wallboard, sync, recording, transcripts, speechEngine: transcriptEngine, hw, backup, timers, timersStop });
    } catch (e) {
      for (const t of timers) clearInterval(t);
      for (const stop of timersStop) stop();
      await hwRef?.close().catch(() => undefined);
      await db.close().catch(() => undefined);
      throw e;
    }
  }

  /** OPTIONS to our own SIP listener, admitted by the source gate's per-process secret (the update's health check). */
  sipSelfCheck(): Promise<void> {
    return this.sip.selfCheck();
  }

  /** Graceful stop: BYE every call, close SIP and HTTP, flush and close the database. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ calls: this.calls.active }, 'stopping');
      for (const t of this.agents.timers) clearInterval(t);
      for (const stop of this.agents.timersStop) stop();
      await this.agents.callbacks.close();
      this.agents.recording.close();
      await this.calls.closeAll(SHUTDOWN_BYE_WAIT_MS);
      // The ended calls' transcripts are being stored: before the database closes.
      await this.agents.transcripts.drain();
      // Only now: a call's last words were still being recognised while it ended.
      await this.agents.speechEngine?.close();
      this.agents.desk.close();
      this.agents.supervisors.desk.close();
      this.agents.supervisors.hub.close();
      this.agents.sessions.close();
      this.agents.acd.close();
      this.agents.directory.close();
      await this.sip.stop();
      this.agents.kpi.stop();
      this.agents.wallboard.close();
      await this.http.stop();
      await this.agents.kpiRecorder.flush();
      // Before the db closes: the watchdog is disarmed (magic close), serial ports released.
      await this.agents.hw.close();
      // A backup under way finishes (or fails) before the database it reads closes.
      await this.agents.backup.close();
      await this.agents.sync.close();
      await this.db.close();
      this.log.info('stopped');
    })();
    return this.stopping;
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
