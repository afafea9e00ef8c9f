/**
 * Runs inside `ccedge run` when this process is a version on trial (its executable is in the
 * trial slot). It probes the daemon the way a peer would, every second:
 *   - SIP: an OPTIONS over UDP to the configured listener gets a response (any status) when a
 *     trunk admits loopback, else the TCP listener accepts (see sipProbe);
 *   - database: `PRAGMA user_version` equals the migrations this build knows (migrated);
 *   - sync: `GET /api/v1/sync` says connected, or no broker is configured (configured offline).
 * When every probe has passed without a break for `healthWindowS`, the version commits itself.
 * If that has not happened `healthDeadlineS` after start, it rolls back (reason HEALTH_FAILED with
 * the last failing probe) and asks main to exit non-zero, so the service manager restarts into
 * the previous slot. Crashes before the commit are counted by the boot check (BOOT_LIMIT).
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import path from 'node:path';
import { compileAllowList, type Config } from '../gateway/config/schema';
import type { Logger } from '../gateway/logging';
import { resolveAdminToken } from '../gateway/http/admin-token';
import { MIGRATIONS } from '../gateway/store/migrations';
import { loadUpdateSettings, type UpdateSettings } from '../image/settings';
import { readUserVersion, Slots } from '../image/slots';

export interface TrialWatch {
  stop(): void;
  /** Resolves when the trial ended: committed, or rolled back. */
  done: Promise<'committed' | 'rolled-back'>;
}

function loopback(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

export function probeSipUdp(host: string, port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = loopback(host);
    const sock = createSocket(h.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => finish(new Error(`no SIP answer to OPTIONS on ${h}:${port} within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error, line?: string): void => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(line ?? '');
    };
    sock.on('error', (e) => finish(e));
    sock.on('message', (m) => {
      const first = m.toString('utf8').split('\r\n')[0];
      if (/^SIP\/2\.0 \d{3}/.test(first)) finish(undefined, first);
    });
    sock.bind(0, h.includes(':') ? '::1' : '127.0.0.1', () => {
      const local = sock.address();
      const id = randomBytes(6).toString('hex');
      const lh = h.includes(':') ? `[${local.address}]` : local.address;
      const msg = [
        `OPTIONS sip:ccedge@${h.includes(':') ? `[${h}]` : h}:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP ${lh}:${local.port};branch=z9hG4bK-health-${id};rport`,
        'Max-Forwards: 70',
        `From: <sip:health@${lh}>;tag=${id}`,
        `To: <sip:ccedge@${h.includes(':') ? `[${h}]` : h}>`,
        `Call-ID: health-${id}@ccedge`,
        'CSeq: 1 OPTIONS',
        `Contact: <sip:health@${lh}:${local.port}>`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      sock.send(msg, port, h);
    });
  });
}

function probeTcp(host: string, port: number, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: loopback(host), port, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('timeout', () => {
      s.destroy();
      reject(new Error(`SIP TCP ${host}:${port} did not accept within ${timeoutMs} ms`));
    });
    s.once('error', reject);
  });
}

/**
 * How the SIP listener is probed. The SIP stack drops datagrams from outside every trunk's
 * allow-list unparsed, so an OPTIONS from loopback is only answered when a trunk admits it (tests,
 * a same-host PBX); a provisioned box allows just its PBX, and the boot test saw every update roll
 * back for want of an answer. Then the probe is the TCP listener accepting (the SIP stack refuses
 * the connection only after accept), or the daemon's own self-check when main passes it.
 */
export function sipProbe(config: Config): 'udp-options' | 'tcp-accept' {
  const admitted = compileAllowList(config.trunks.flatMap((t) => [...t.allow, ...(t.outbound ? [t.outbound.host] : [])]));
  const local = loopback(config.sip.host);
  const loopbackAdmitted = admitted.check(local, local.includes(':') ? 'ipv6' : 'ipv4');
  return config.sip.udp && (loopbackAdmitted || !config.sip.tcp) ? 'udp-options' : 'tcp-accept';
}

export async function healthProbes(config: Config, httpPort: number, sipCheck?: () => Promise<void>): Promise<string[]> {
  const problems: string[] = [];
  try {
    if (sipCheck) await sipCheck();
    else if (sipProbe(config) === 'udp-options') await probeSipUdp(config.sip.host, config.sip.port);
    else await probeTcp(config.sip.host, config.sip.port);
  } catch (e) {
    problems.push(`sip: ${(e as Error).message}`);
  }
  try {
    const v = await readUserVersion(path.join(config.dataDir, 'ccedge.db'));
    if (v !== MIGRATIONS.length) problems.push(`db: schema version ${v}, this build migrates to ${MIGRATIONS.length}`);
  } catch (e) {
    problems.push(`db: ${(e as Error).message}`);
  }
  if (config.mqtt.url) {
    try {
      const token = resolveAdminToken(config.dataDir, config.http.adminToken).token;
      const res = await fetch(`http://${loopback(config.http.host).includes(':') ? `[${loopback(config.http.host)}]` : loopback(config.http.host)}:${httpPort}/api/v1/sync`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(2000),
      });
      const body = (await res.json()) as { connected?: boolean };
      if (!body.connected) problems.push('sync: not connected to the broker');
    } catch (e) {
      problems.push(`sync: ${(e as Error).message}`);
    }
  }
  return problems;
}

export function startTrialWatch(o: {
  config: Config;
  httpPort: number;
  log: Logger;
  settings?: UpdateSettings;
  /** Called after a rollback: main stops the daemon and exits non-zero. */
  onRollback: (reason: string) => void;
  execPath?: string;
  /** The daemon's own SIP self-check (an OPTIONS its source gate admits); preferred when given. */
  sipCheck?: () => Promise<void>;
}): TrialWatch | undefined {
  const settings = o.settings ?? loadUpdateSettings();
  const slots = new Slots(settings, (line) => o.log.info({ component: 'update' }, line));
  const trial = slots.runningTrial(o.execPath);
  if (!trial) return undefined;
  const log = o.log.child({ component: 'update' });
  const started = Date.now();
  let windowStart: number | undefined;
  let last: string[] = [];
  let stopped = false;
  let busy = false;
  let resolveDone!: (v: 'committed' | 'rolled-back') => void;
  const done = new Promise<'committed' | 'rolled-back'>((r) => (resolveDone = r));
  log.info({ version: trial.version, slot: trial.slot, boot: trial.boots, windowS: settings.healthWindowS, deadlineS: settings.healthDeadlineS }, 'running on trial: health window started');
  const tick = async (): Promise<void> => {
    if (stopped || busy) return;
    busy = true;
    try {
      const problems = await healthProbes(o.config, o.httpPort, o.sipCheck);
      if (stopped) return;
      const now = Date.now();
      if (problems.length === 0) {
        windowStart ??= now;
        if (now - windowStart >= settings.healthWindowS * 1000) {
          stopped = true;
          clearInterval(timer);
          slots.commit();
          log.info({ version: trial.version, slot: trial.slot }, 'update committed: health window passed');
          resolveDone('committed');
          return;
        }
      } else {
        if (windowStart !== undefined || last.join() !== problems.join()) log.warn({ problems }, 'trial health check failed');
        windowStart = undefined;
        last = problems;
      }
      if (now - started >= settings.healthDeadlineS * 1000) {
        stopped = true;
        clearInterval(timer);
        const message = `version ${trial.version} did not pass ${settings.healthWindowS} s of health checks within ${settings.healthDeadlineS} s: ${last.join('; ') || 'unstable'}`;
        await slots.rollback('HEALTH_FAILED', message);
        log.error({ version: trial.version, reason: 'HEALTH_FAILED', problems: last }, 'update rolled back');
        resolveDone('rolled-back');
        o.onRollback('HEALTH_FAILED');
      }
    } catch (err) {
      log.error({ err }, 'trial health watch failed');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), 1000);
  void tick();
  return {
    done,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
