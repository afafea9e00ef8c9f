import { BackupService } from '../../gateway/backup';
import type { CallManager } from '../../gateway/calls/call-manager';
import { CertificateExpiryCheck } from '../../gateway/certs/expiry';
import { SiteCertificates, storeOptions } from '../../gateway/certs/site-certs';
import { resolveAdminToken } from '../../gateway/http/admin-token';
import { HttpServer } from '../../gateway/http/http-server';
import { handlePeopleApi, isPeoplePath } from '../../gateway/people/people-api';
import { recordingsApi } from '../../gateway/recording/recordings-api';
import { SetupService } from '../../gateway/setup/setup-service';
import type { CallStore } from '../../gateway/store/call-store';
import { VERSION } from '../../gateway/version';
import { adminTokenCheck, WallboardHub } from '../../gateway/wallboard/wallboard-hub';
import type { HwService } from '../../hw';
import type { MediaWorkers, PortPool } from '../../media';
import type { Vault } from '../../vault';
import type { AgentsWired } from './agents';
import type { CloudLink } from './cloud';
import type { DeskWired } from './desk';
import type { WiringContext } from './context';

export interface HttpWiring extends WiringContext {
  cloud: Pick<CloudLink, 'sync' | 'writeEvent'>;
  vault: Vault;
  store: CallStore;
  calls: CallManager;
  pool: PortPool;
  /** Media worker threads, when running (GET/POST /api/v1/media/workers). */
  workers: MediaWorkers | undefined;
  certs: SiteCertificates | undefined;
  hw: HwService;
  agents: Pick<AgentsWired, 'people' | 'kpi' | 'sessions'>;
  desk: Pick<DeskWired, 'desk' | 'supervisorHub' | 'supervisorAudit'>;
  /** When the daemon started (the health's uptime). */
  startedAt: Date;
  /** The file the config came from: with it the first-run /setup page is on (it rewrites that file, then `onSetupDone`). */
  configFile: string | undefined;
  onSetupDone: (() => void) | undefined;
}

export interface HttpWired {
  http: HttpServer;
  backup: BackupService;
  setup: SetupService | undefined;
}

/**
 * What people and tools reach over HTTP(S): the admin API token, backups (status and run-now on
 * the API), the wallboard, the first-run setup page, the HTTP server itself (not listening yet: the
 * daemon starts it) and, with a site certificate, its reload and expiry check.
 */
export function wireHttp(w: HttpWiring): HttpWired {
  const { config, db, log, metrics, closer, cloud, store, calls, pool, certs, hw, startedAt } = w;
  const { people, kpi, sessions } = w.agents;
  const { desk, supervisorHub, supervisorAudit } = w.desk;
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
    emit: (event) => cloud.writeEvent(event, 'backup'),
  });
  // A backup under way finishes (or fails) before the database it reads closes.
  closer.defer('backups', () => backup.close());
  const wallboard = new WallboardHub({ authorise: adminTokenCheck(admin.token), current: () => kpi.current(), log });
  closer.defer('wallboard', () => wallboard.close());
  kpi.on('update', (snapshot) => wallboard.publish(snapshot));
  const setup = w.configFile
    ? new SetupService({ configFile: w.configFile, dataDir: config.dataDir, config: config.setup, log: log.child({ component: 'setup' }), onDone: w.onSetupDone ?? (() => undefined) })
    : undefined;
  if (setup) closer.defer('first-run setup', () => setup.close());
  const workers = w.workers;
  const http = new HttpServer({
    setup,
    ...(workers ? { mediaWorkers: { status: () => workers.status, restart: (index: number) => workers.kill(index) } } : {}),
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
    sync: { status: () => cloud.sync.status() },
    tokens: config.http.tokens,
    // HTTPS/WSS with the same certificate as SIP over TLS; without a certificate, plain HTTP only.
    https: config.https.enabled && certs ? { host: config.https.host ?? config.http.host, port: config.https.port, certs } : undefined,
    limits: { maxBodyBytes: config.http.maxBodyBytes, tokenFailures: config.http.tokenFailures, log: config.http.log },
    recordings: recordingsApi(w.vault, store),
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
      ...(workers ? { mediaWorkers: workers.status } : {}),
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
      emit: (event) => cloud.writeEvent(event, 'certificate'),
      renew: async () => {
        await SiteCertificates.renew(storeOptions(config, certLog));
        certs.reloadIfChanged();
      },
    });
    expiry.start();
    closer.defer('certificate expiry check', () => expiry.close());
  }
  return { http, backup, setup };
}
