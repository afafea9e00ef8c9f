import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../gateway/config/load';
import { REPORT_USAGE } from './report-command';
import { CERT_USAGE } from './cert-command';
import { BACKUP_USAGE } from '../../gateway/backup/usage';
import { explainPolicy, formatOutboxStats, Outbox, Policy } from '../../sync';
import { Vault } from '../../vault';
import { CcedgeError } from '../../gateway/errors';
import { createIvrSpeech } from '../../gateway/speech/ivr-speech';
import { createLogger } from '../../gateway/logging';
import { Endpointer } from '../../media';
import { CallStore, type CallRecord } from '../../gateway/store/call-store';
import { Db, existingDbFile } from '../../gateway/store/db';
import { resolveAdminToken } from '../../gateway/http/admin-token';

export const USAGE = `usage: ccedge <command> [options]

commands:
  run [--config FILE]                 run the daemon (default when no command is given)
  calls [--json] [--limit N] [--config FILE]
                                      list call records, newest first
  config validate FILE                check a config file; exit 0 if valid, 2 if not
${REPORT_USAGE}
  status [--json]                     the running daemon: version, calls, cloud link, trunks (exit 3: not running)
  queues [--json]                     live queue KPIs from the running daemon
  queues list|add|set|remove NAME …   queues, changed live through the daemon (offline: in the
                                      database); ccedge queues --help
  agents list|add|set|remove|import … agents and supervisors, changed live (CSV import, one-time
                                      passwords); ccedge agents --help
  recordings list [--json]            recordings in the on-site vault
  recordings verify [--anchor SEQ:HASH]
                                      check every recording file and the audit chain (and that it
                                      still holds a head the cloud received); exit 1 naming problems
  recordings export ID --out FILE --reason TEXT [--actor NAME]
                                      plain WAV plus a signed manifest (audited)
  recordings hold CALL_ID --reason TEXT [--off] [--actor NAME]
                                      legal hold: retention never deletes that call's recordings
  recordings rotate-key --reason TEXT [--actor NAME]
                                      re-wrap every data key under a new site key (in the running
                                      daemon when it answers on its HTTP port, else offline)
  recordings audit [ID] [--json]      the hash-chained audit log (who did what, and why)
  recordings transcript ID --reason TEXT [--actor NAME] [--json]
                                      a call's transcript (ID: recording, transcript or call id),
                                      decrypted for compliance review; every read audited
${CERT_USAGE}
${BACKUP_USAGE}
  provision [--from FILE] [--force]   first-boot provisioning (site, device, trunk peers, broker, claim code)
  update keygen|build|verify|apply|status|boot|rollback|init|supervise
                                      signed A/B updates (ccedge update help)
  --version                           version, git commit, Node version
  policy explain [EVENT_TYPE]         what of an event may leave the site (residency policy)
  outbox [--json]                     cloud events waiting in the outbox, last seq and ack, drops
  help                                this text

Configuration: ccedge.yaml in the working directory or --config FILE, overridden by
CCEDGE_* environment variables (see README).`;

export async function callsCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false }, limit: { type: 'string', default: '1000' }, config: { type: 'string' } },
    strict: true,
  });
  if (!/^\d+$/.test(values.limit) || Number(values.limit) < 1) throw new CcedgeError('CLI_USAGE', `--limit must be a positive whole number, got "${values.limit}"`);
  const { config } = loadConfig({ file: values.config });
  const db = await Db.open(existingDbFile(config.dataDir));
  try {
    const calls = await new CallStore(db).list({ limit: Number(values.limit) });
    if (values.json) process.stdout.write(`${JSON.stringify(calls, null, 2)}\n`);
    else process.stdout.write(formatCalls(calls));
  } finally {
    await db.close();
  }
  return 0;
}

export function configValidateCommand(argv: string[]): number {
  const file = argv[0];
  if (!file || argv.length > 1) throw new CcedgeError('CLI_USAGE', 'usage: ccedge config validate FILE');
  // The file alone is judged: environment overrides are not part of what the installer wrote.
  const { config } = loadConfig({ file, env: {} });
  // Speech menus: the examples are checked against this box's recogniser, as the daemon does at start.
  let speech = '';
  if (config.ivr && Object.values(config.ivr.menus).some((m) => m.type === 'speech')) {
    const checked = createIvrSpeech(config.ivr, () => config.intents, config.speech, (limits) => new Endpointer(limits), createLogger('silent'));
    speech = checked ? ', speech examples all in the recogniser\'s dictionary' : '; speech engine not installed here, speech examples not checked';
    void checked?.engine.close();
  }
  process.stdout.write(`${file}: valid (${config.trunks.length} trunk${config.trunks.length === 1 ? '' : 's'}, SIP ${config.sip.host}:${config.sip.port}${speech})\n`);
  return 0;
}

function formatCalls(calls: CallRecord[]): string {
  if (calls.length === 0) return 'no calls recorded\n';
  const rows = calls.map((c) => [
    c.createdAt.replace('T', ' ').slice(0, 19),
    c.state,
    c.fromUser ?? c.fromUri,
    c.toUser ?? c.toUri,
    c.trunk,
    c.codec ?? '-',
    duration(c),
    c.endCause ?? '',
    c.dtmf,
  ]);
  const header = ['started', 'state', 'from', 'to', 'trunk', 'codec', 'secs', 'cause', 'dtmf'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => `${r.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd()}\n`;
  return line(header) + rows.map(line).join('');
}

function duration(c: CallRecord): string {
  if (!c.answeredAt) return '-';
  const end = c.endedAt ? Date.parse(c.endedAt) : Date.now();
  return String(Math.round((end - Date.parse(c.answeredAt)) / 1000));
}

export function policyCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({ args: argv, options: { config: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals[0] !== 'explain' || positionals.length > 2) throw new CcedgeError('CLI_USAGE', 'usage: ccedge policy explain [EVENT_TYPE]');
  process.stdout.write(explainPolicy(loadConfig({ file: values.config }).config.sync.policy, positionals[1]));
  return 0;
}

export async function outboxCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false }, config: { type: 'string' } }, strict: true });
  const { config } = loadConfig({ file: values.config });
  const db = await Db.open(existingDbFile(config.dataDir));
  try {
    const stats = await new Outbox(db, { deviceId: config.site.deviceId, bootId: 'cli', policy: new Policy(config.sync.policy, { hmacKey: 'cli-read-only-secret' }) }).stats();
    process.stdout.write(values.json ? `${JSON.stringify(stats, null, 2)}\n` : formatOutboxStats(stats));
  } finally {
    await db.close();
  }
  return 0;
}

export async function recordingsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      config: { type: 'string' },
      out: { type: 'string' },
      reason: { type: 'string' },
      actor: { type: 'string', default: process.env.USER ?? 'cli' },
      off: { type: 'boolean', default: false },
      anchor: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, id] = positionals;
  if (!['list', 'verify', 'export', 'hold', 'rotate-key', 'audit', 'transcript'].includes(sub ?? '')) {
    throw new CcedgeError('CLI_USAGE', 'usage: ccedge recordings list|verify|export|hold|rotate-key|audit|transcript (see ccedge help)');
  }
  if (sub === 'transcript' && (!id || !values.reason?.trim())) throw new CcedgeError('CLI_USAGE', 'usage: ccedge recordings transcript ID --reason TEXT [--actor NAME] [--json] (the reason goes into the audit log)');
  if ((sub === 'hold' || sub === 'rotate-key') && !values.reason?.trim()) throw new CcedgeError('CLI_USAGE', `ccedge recordings ${sub} needs --reason TEXT (it goes into the audit log)`);
  if (sub === 'hold' && !id) throw new CcedgeError('CLI_USAGE', 'usage: ccedge recordings hold CALL_ID --reason TEXT [--off]');
  const { config } = loadConfig({ file: values.config });
  if (sub === 'rotate-key') {
    // The running daemon holds the site key: it must do the rotation itself, or new recordings
    // would be wrapped under a key this command retires.
    const viaDaemon = await rotateInDaemon(config, values.reason as string);
    if (viaDaemon) {
      process.stdout.write(`site key rotated by the running daemon: ${viaDaemon.from} → ${viaDaemon.to}, ${viaDaemon.rewrapped} data keys re-wrapped\n`);
      return 0;
    }
  }
  const db = await Db.open(existingDbFile(config.dataDir));
  try {
    const vault = Vault.open({ dataDir: config.dataDir, db, log: silentLog });
    if (sub === 'list') {
      const list = await vault.list({ limit: 10_000 });
      process.stdout.write(values.json ? `${JSON.stringify(list, null, 2)}\n` : list.map((r) => `${r.id}  ${r.callId}  ${r.state}  ${Math.round(r.durationMs / 1000)} s  ${r.bytes} B\n`).join('') || 'no recordings\n');
      return 0;
    }
    if (sub === 'verify') {
      let anchor: { seq: number; hash: string } | undefined;
      if (values.anchor !== undefined) {
        const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(values.anchor);
        if (!m) throw new CcedgeError('CLI_USAGE', '--anchor must be SEQ:HASH (a recording.audit-head the cloud received, hash in hex)');
        anchor = { seq: Number(m[1]), hash: m[2] };
      }
      const problems = await vault.verify();
      if (anchor) problems.push(...(await vault.audit.verifyAnchor(anchor)));
      for (const p of problems) process.stderr.write(`ccedge: ${p.code}: ${p.message}\n`);
      if (problems.length === 0) process.stdout.write('every recording and the audit chain verified\n');
      return problems.length ? 1 : 0;
    }
    if (sub === 'hold') {
      const n = await vault.setLegalHold(id as string, !values.off, values.actor, values.reason as string);
      process.stdout.write(`legal hold ${values.off ? 'cleared' : 'set'} on call ${id as string} (${n} recording${n === 1 ? '' : 's'} now; later recordings of the call too)\n`);
      return 0;
    }
    if (sub === 'rotate-key') {
      const r = await vault.rotateSiteKey(values.actor, values.reason as string);
      process.stdout.write(`site key rotated (daemon not running): ${r.from} → ${r.to}, ${r.rewrapped} data keys re-wrapped\n`);
      return 0;
    }
    if (sub === 'audit') {
      const entries = await vault.audit.list({ recordingId: id, limit: 10_000 });
      process.stdout.write(
        values.json
          ? `${JSON.stringify(entries, null, 2)}\n`
          : entries.map((e) => `${e.seq}  ${e.ts}  ${e.actor}  ${e.action}${e.recordingId ? `  ${e.recordingId}` : ''}${e.reason ? `  "${e.reason}"` : ''}\n`).join('') || 'no audit entries\n',
      );
      return 0;
    }
    if (sub === 'transcript') {
      const { info, transcript } = await vault.transcripts.read(id as string, { actor: values.actor, reason: values.reason as string });
      process.stdout.write(values.json ? `${JSON.stringify({ ...info, transcript }, null, 2)}\n` : formatTranscript(info, transcript));
      return 0;
    }
    if (!id || !values.out || !values.reason) throw new CcedgeError('CLI_USAGE', 'usage: ccedge recordings export ID --out FILE --reason TEXT [--actor NAME]');
    const out = await vault.exportRecording(id, values.out, values.actor, values.reason);
    process.stdout.write(`${out.wavFile}\n${out.manifestFile}\n`);
    return 0;
  } finally {
    await db.close();
  }
}

type Config = ReturnType<typeof loadConfig>['config'];

/** A transcript for a reader: who said what when, with the engine's quality first so nobody takes it for verbatim. */
function formatTranscript(info: { id: string; callId: string; recordingId: string | null; source: string; quality: string | null }, doc: unknown): string {
  const d = (doc ?? {}) as { utterances?: Array<{ speaker?: string; startMs?: number; text?: string; sentiment?: number }> };
  const mmss = (ms: number): string => `${String(Math.floor(ms / 60_000)).padStart(2, '0')}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}`;
  const head = `transcript ${info.id}  call ${info.callId}${info.recordingId ? `  recording ${info.recordingId}` : ''}\nsource ${info.source}${info.quality ? `  (${info.quality})` : ''}\n`;
  const lines = (d.utterances ?? []).map((u) => `[${mmss(u.startMs ?? 0)}] ${u.speaker ?? '?'}: ${u.text ?? ''}${typeof u.sentiment === 'number' && u.sentiment !== 0 ? `  (sentiment ${u.sentiment > 0 ? '+' : ''}${u.sentiment})` : ''}\n`);
  return head + (lines.join('') || '(no utterances)\n');
}

/**
 * A request to the daemon running with this config (its HTTP port, the admin token); undefined
 * when nothing answers there.
 */
export async function daemonApi<T>(config: Config, pathname: string, init: { method?: 'GET' | 'POST'; body?: unknown; timeoutMs?: number } = {}): Promise<{ status: number; body: T } | undefined> {
  const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host === '::' ? '[::1]' : config.http.host;
  const { token } = resolveAdminToken(config.dataDir, config.http.adminToken);
  let res: Response;
  try {
    res = await fetch(`http://${host}:${config.http.port}${pathname}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
      signal: AbortSignal.timeout(init.timeoutMs ?? 10_000),
    });
  } catch {
    return undefined;
  }
  return { status: res.status, body: (await res.json().catch(() => ({}))) as T };
}

/** Asks the running daemon to rotate the key; undefined when no daemon answers. */
async function rotateInDaemon(config: Config, reason: string): Promise<{ from: string; to: string; rewrapped: number } | undefined> {
  const r = await daemonApi<{ from: string; to: string; rewrapped: number; error?: { message?: string } }>(config, '/api/v1/recordings/rotate-key', { method: 'POST', body: { reason }, timeoutMs: 60_000 });
  if (!r) return undefined; // nothing listening: rotate offline
  if (r.status !== 200) throw new CcedgeError('CLI_USAGE', `the daemon refused the key rotation (HTTP ${r.status}): ${r.body.error?.message ?? 'no reason given'}`);
  return r.body;
}

const NOT_RUNNING = 3;

/** `ccedge status`: the running daemon's health, calls, cloud link and trunks (exit 3 if not running). */
export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false }, config: { type: 'string' } }, strict: true });
  const { config } = loadConfig({ file: values.config });
  const health = await daemonApi<Record<string, unknown>>(config, '/healthz');
  if (!health) {
    process.stderr.write(`ccedge: no daemon answers on ${config.http.host}:${config.http.port} (not running, or another config)\n`);
    return NOT_RUNNING;
  }
  const sync = await daemonApi<Record<string, unknown>>(config, '/api/v1/sync');
  const hw = await daemonApi<Record<string, unknown>>(config, '/api/v1/health');
  const trunks = await daemonApi<{ trunks?: Array<{ name: string; state: string }> }>(config, '/api/v1/trunks');
  const status = { ...health.body, sync: sync?.status === 200 ? sync.body : null, hw: hw?.status === 200 ? hw.body : null, trunks: trunks?.status === 200 ? (trunks.body.trunks ?? []) : [] };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
    return 0;
  }
  const h = health.body;
  const s = status.sync as { connected?: boolean; outboxDepth?: number } | null;
  const lines = [
    `ccedge ${String(h.version)}  site ${String(h.site)}  device ${String(h.device)}  up ${String(h.uptimeS)} s`,
    `calls: ${String(h.calls)} active, ${String(h.rtpPortsInUse)} RTP ports in use`,
    `cloud: ${s ? `${s.connected ? 'connected' : 'offline'}, ${String(s.outboxDepth)} events waiting` : 'unknown'}`,
    ...status.trunks.map((t) => `trunk ${t.name}: ${t.state}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** `ccedge queues`: live queue KPIs from the running daemon. */
export async function queuesCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false }, config: { type: 'string' } }, strict: true });
  const { config } = loadConfig({ file: values.config });
  const r = await daemonApi<{ queues: Array<Record<string, unknown>> }>(config, '/api/v1/queues');
  if (!r) {
    process.stderr.write(`ccedge: no daemon answers on ${config.http.host}:${config.http.port} (not running, or another config)\n`);
    return NOT_RUNNING;
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(r.body.queues, null, 2)}\n`);
    return 0;
  }
  const pct = (v: unknown): string => (typeof v === 'number' ? `${Math.round(v * 100)}%` : '-');
  const sec = (v: unknown): string => (typeof v === 'number' ? `${Math.round(v)} s` : '-');
  process.stdout.write(
    r.body.queues
      .map((q) => `${String(q.name).padEnd(16)} waiting ${String(q.waiting ?? 0).padStart(3)}  longest ${sec(q.longestWaitS)}  SL ${pct(q.serviceLevel)}  ASA ${sec(q.asa)}  AHT ${sec(q.aht)}  abandoned ${pct(q.abandonRate)}`)
      .join('\n') + (r.body.queues.length ? '\n' : 'no queues\n'),
  );
  return 0;
}

const silentLog = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => silentLog };
