import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { daemonApi } from './data-commands';
import { loadConfig } from '../../gateway/config/load';
import { CcedgeError } from '../../gateway/errors';
import { Db } from '../../gateway/store/db';
import { VERSION } from '../../gateway/version';
import { decryptFrom, deriveKeys } from '../../gateway/backup/crypto';
import { checkManifest, listBackups, readManifest, verifyFiles, type Manifest } from '../../gateway/backup/manifest';
import { resolvePassphrase } from '../../gateway/backup/passphrase';
import { restoreBackup } from '../../gateway/backup/restore';
import { runBackup, type BackupResult } from '../../gateway/backup/run-backup';
import { BACKUP_USAGE } from '../../gateway/backup/usage';


const HELP: Record<string, string> = {
  now: `usage: ccedge backup now [--to DIR] [--config FILE] [--passphrase-file FILE] [--json]

Backs up the database (sqlite online backup, consistent while calls run), the keys (encrypted with
the backup passphrase) and the recordings (already encrypted; only new ones are copied) into DIR
(default backup.path). A running daemon does it itself, with its own passphrase; otherwise it runs
here on the data dir. Exit 0 done, 1 failed, 2 usage or not configured.`,
  list: `usage: ccedge backup list [--from DIR] [--config FILE] [--json]

Lists the complete backups in DIR (default backup.path). Reads nothing in the data dir.`,
  verify: `usage: ccedge backup verify [--from DIR] [--id ID] [--config FILE] [--passphrase-file FILE]

Checks every file of every backup in DIR (or backup ID) against the size and SHA-256 in its
manifest. With a passphrase (--passphrase-file, CCEDGE_BACKUP_PASSPHRASE or backup.passphraseFile)
it also checks the manifest's seal and decrypts the database and keys. Exit 0 all good, 1 problems
(named on stderr), 2 usage.`,
  restore: `usage: ccedge backup restore [--from DIR] [--id ID] [--force] [--config FILE] [--passphrase-file FILE]

Restores the newest backup in DIR (or backup ID) into the data dir (CCEDGE_DATA_DIR): database,
keys and recordings, after checking every file. The data dir must be empty or absent; --force
moves what is there aside (stop the daemon first). The outbox seq is moved past anything the old
box can have sent since the backup, so the cloud never sees a seq twice. Exit 0 done, 1 failed.`,
};

const EXIT_PROBLEMS = 1;

type Config = ReturnType<typeof loadConfig>['config'];

function backupRoot(config: Config, dir: string | undefined, flag: string): string {
  const root = dir ?? config.backup.path;
  if (!root) throw new CcedgeError('CLI_USAGE', `no backup directory: pass ${flag} DIR or set backup.path`);
  return path.resolve(root);
}

function out(text: string): void {
  process.stdout.write(text);
}

function human(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 ** 2 ? `${(bytes / 1024).toFixed(1)} KiB` : bytes < 1024 ** 3 ? `${(bytes / 1024 ** 2).toFixed(1)} MiB` : `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

async function pick(root: string, id: string | undefined): Promise<Manifest> {
  if (id !== undefined) return readManifest(root, id);
  const all = await listBackups(root);
  const last = all.at(-1);
  if (!last) throw new CcedgeError('BACKUP_NOT_FOUND', `no complete backup in ${root}`);
  return last;
}

/** `ccedge backup now|list|verify|restore`. */
export async function backupCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(`usage:\n${BACKUP_USAGE}\n\nccedge backup SUBCOMMAND --help for details.\n`);
    return sub === undefined ? 2 : 0;
  }
  if (!(sub in HELP)) throw new CcedgeError('CLI_USAGE', `unknown backup subcommand "${sub}"\n\nusage:\n${BACKUP_USAGE}`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      help: { type: 'boolean', short: 'h', default: false },
      config: { type: 'string' },
      to: { type: 'string' },
      from: { type: 'string' },
      id: { type: 'string' },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'passphrase-file': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(`${HELP[sub]}\n`);
    return 0;
  }
  if (positionals.length) throw new CcedgeError('CLI_USAGE', `unexpected argument "${positionals[0]}"\n\n${HELP[sub]}`);
  const allowed: Record<string, string[]> = { now: ['to'], list: ['from'], verify: ['from', 'id'], restore: ['from', 'id', 'force'] };
  for (const k of ['to', 'from', 'id', 'force'] as const) {
    if (values[k] !== undefined && values[k] !== false && !allowed[sub].includes(k)) throw new CcedgeError('CLI_USAGE', `--${k} is not an option of backup ${sub}\n\n${HELP[sub]}`);
  }
  const { config } = loadConfig({ file: values.config });
  const passphraseFile = values['passphrase-file'];
  switch (sub) {
    case 'now':
      return now(config, backupRoot(config, values.to, '--to'), passphraseFile, values.json);
    case 'list':
      return list(backupRoot(config, values.from, '--from'), values.json);
    case 'verify':
      return verify(config, backupRoot(config, values.from, '--from'), values.id, passphraseFile);
    default:
      return restore(config, backupRoot(config, values.from, '--from'), values.id, values.force, passphraseFile);
  }
}

async function now(config: Config, root: string, passphraseFile: string | undefined, json: boolean): Promise<number> {
  const dbFile = path.join(config.dataDir, 'ccedge.db');
  // Never create a data dir (or a token in it) just to back up nothing.
  if (!existsSync(dbFile)) throw new CcedgeError('BACKUP_FAILED', `no database at ${dbFile}: nothing to back up (is CCEDGE_DATA_DIR right?)`);
  let result: BackupResult;
  let by = 'the running daemon';
  const viaDaemon = passphraseFile === undefined ? await daemonApi<BackupResult & { error?: { code?: string; message?: string } }>(config, '/api/v1/backup', { method: 'POST', body: { to: root }, timeoutMs: 3600_000 }) : undefined;
  if (viaDaemon && viaDaemon.status !== 404) {
    if (viaDaemon.status !== 200) {
      const code = viaDaemon.body.error?.code ?? 'BACKUP_FAILED';
      throw new CcedgeError(code.startsWith('BACKUP_') ? (code as 'BACKUP_FAILED') : 'BACKUP_FAILED', `the daemon's backup failed (HTTP ${viaDaemon.status}): ${viaDaemon.body.error?.message ?? 'no reason given'}`);
    }
    result = viaDaemon.body;
  } else {
    // No daemon (or --passphrase-file: this command's passphrase): back up here, in one step. A
    // step is one read transaction, so a daemon writing meanwhile (another connection) can
    // neither block it nor make it start over, as it would between smaller steps.
    by = 'this command';
    const passphrase = resolvePassphrase({ file: passphraseFile, configFile: config.backup.passphraseFile }) as string;
    const db = await Db.open(dbFile);
    try {
      result = await runBackup({
        db, dataDir: config.dataDir, root, passphrase, keep: config.backup.keep, pagesPerStep: -1,
        site: config.site.id, device: config.site.deviceId, version: VERSION,
      });
    } finally {
      await db.close();
    }
  }
  if (json) out(`${JSON.stringify(result, null, 2)}\n`);
  else {
    out(`backup ${result.id} written to ${path.join(root, result.id)} by ${by}\n`);
    out(`  ${human(result.bytes)} in ${(result.durationMs / 1000).toFixed(1)} s; ${result.recordings} recordings (${result.recordingsCopied} copied now); outbox seq ${result.lastSeq}\n`);
    if (result.deleted.length) out(`  retention deleted ${result.deleted.join(', ')}\n`);
  }
  return 0;
}

async function list(root: string, json: boolean): Promise<number> {
  const all = await listBackups(root);
  if (json) {
    out(`${JSON.stringify(all.map(({ mac: _m, check: _c, kdf: _k, ...m }) => ({ ...m, bytes: m.files.reduce((a, f) => a + f.bytes, 0) })), null, 2)}\n`);
    return 0;
  }
  if (!all.length) {
    out(`no backups in ${root}\n`);
    return 0;
  }
  for (const m of all) {
    const bytes = m.files.reduce((a, f) => a + f.bytes, 0);
    const recs = m.files.filter((f) => f.kind === 'recording' || f.kind === 'recording-open').length;
    out(`${m.id}  ${m.createdAt}  ${m.device}  ${human(bytes)}  ${m.db.calls} calls  ${recs} recordings  seq ${m.outbox.lastSeq}  ccedge ${m.version}\n`);
  }
  return 0;
}

async function verify(config: Config, root: string, id: string | undefined, passphraseFile: string | undefined): Promise<number> {
  const backups = id !== undefined ? [await readManifest(root, id)] : await listBackups(root);
  if (!backups.length) throw new CcedgeError('BACKUP_NOT_FOUND', `no complete backup in ${root}`);
  const passphrase = resolvePassphrase({ file: passphraseFile, configFile: config.backup.passphraseFile, optional: true });
  let bad = 0;
  for (const m of backups) {
    const problems = (await verifyFiles(root, m)).map((p) => `${p.path}: ${p.message}`);
    if (passphrase !== undefined && !problems.length) {
      try {
        const keys = await deriveKeys(passphrase, m.kdf);
        checkManifest(m, keys);
        for (const f of m.files.filter((x) => x.kind === 'db' || x.kind === 'keys')) {
          await decryptFrom(path.join(root, f.path), f.kind === 'db' ? 'ccedge.db' : 'keys', keys.enc, async () => undefined);
        }
      } catch (e) {
        if (!(e instanceof CcedgeError)) throw e;
        problems.push(`${e.code}: ${e.message}`);
      }
    }
    if (problems.length) {
      bad++;
      for (const p of problems) process.stderr.write(`ccedge: BACKUP_CORRUPT: ${m.id}: ${p}\n`);
    } else out(`${m.id}: ${m.files.length} files verified${passphrase === undefined ? ' (checksums only: no passphrase given)' : ', sealed and decryptable'}\n`);
  }
  return bad ? EXIT_PROBLEMS : 0;
}

async function restore(config: Config, root: string, id: string | undefined, force: boolean, passphraseFile: string | undefined): Promise<number> {
  const m = await pick(root, id);
  const passphrase = resolvePassphrase({ file: passphraseFile, configFile: config.backup.passphraseFile }) as string;
  const r = await restoreBackup({ root, manifest: m, dataDir: config.dataDir, passphrase, force });
  out(`restored backup ${r.id} (${m.createdAt}, device ${m.device}) into ${config.dataDir}\n`);
  out(`  ${m.db.calls} calls, ${r.recordings} recordings, ${r.keys} key files; outbox seq ${r.lastSeqBefore} → next events from ${r.lastSeqAfter + 1}\n`);
  if (m.device !== config.site.deviceId) out(`  note: this box's device id is "${config.site.deviceId}", the backup's "${m.device}": set CCEDGE_DEVICE_ID=${m.device} so the cloud sees the same device\n`);
  return 0;
}
