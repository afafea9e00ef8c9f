/** `ccedge update …`: build, verify and apply signed bundles; the A/B slot steps. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../gateway/config/load';
import { buildCommit, VERSION } from '../../gateway/version';
import { buildBundle, generateSigningKey, verifyBundle } from '../../image/bundle';
import { ImageError } from '../../image/errors';
import { isBinary } from '../../image/runtime';
import { loadUpdateSettings, type UpdateSettings } from '../../image/settings';
import { Slots } from '../../image/slots';
import { supervise } from '../../image/supervisor';

export const UPDATE_USAGE = `usage: ccedge update <step> [options]

  keygen --out DIR --name NAME        an Ed25519 signing key (NAME.key, keep it off the devices)
                                      and NAME.pub for the image's trusted keys directory
  build --key FILE --version V --payload ccedge=FILE [--payload NAME=FILE …] [--entry ccedge]
        [--compatible C] [--min-version V] [--commit SHA] --out BUNDLE
                                      a signed bundle (tar: manifest.json, manifest.sig, payload/…)
  verify BUNDLE [--json]              signature, compatible string, version floor, payload hashes
  apply BUNDLE [--restart auto|systemd|supervisor|none] [--reinstall] [--config FILE]
                                      write the inactive slot, copy the database, switch to it on
                                      trial and restart; it commits itself after its health window
  status [--json]                     slots, versions, trial, last result
  boot                                the boot check before each start (systemd ExecStartPre)
  rollback                            give up a version on trial now
  init [--binary FILE]                create the A/B layout with this binary in slot a
  supervise [-- RUN-ARGS]             run the daemon the way the systemd unit does (no systemd)

common: --root DIR (${'$'}CCEDGE_UPDATE_ROOT, /opt/ccedge), --keys DIR (${'$'}CCEDGE_UPDATE_KEYS,
/etc/ccedge/update-keys.d), --compatible C (${'$'}CCEDGE_UPDATE_COMPATIBLE); defaults from
/etc/ccedge/update.json. Refusals exit 1 with a stable code: UPDATE_BAD_SIGNATURE,
UPDATE_UNTRUSTED_KEY, UPDATE_INCOMPATIBLE, UPDATE_DOWNGRADE, UPDATE_MIN_VERSION,
UPDATE_PAYLOAD_HASH, UPDATE_BUNDLE_MALFORMED, UPDATE_IN_PROGRESS, …`;

const OPTIONS = {
  root: { type: 'string' },
  keys: { type: 'string' },
  compatible: { type: 'string' },
  json: { type: 'boolean', default: false },
  key: { type: 'string' },
  version: { type: 'string' },
  'min-version': { type: 'string' },
  commit: { type: 'string' },
  payload: { type: 'string', multiple: true },
  entry: { type: 'string', default: 'ccedge' },
  out: { type: 'string' },
  name: { type: 'string' },
  restart: { type: 'string', default: 'auto' },
  reinstall: { type: 'boolean', default: false },
  config: { type: 'string' },
  binary: { type: 'string' },
  'restart-sec': { type: 'string', default: '1' },
} as const;

function usage(msg: string): ImageError {
  return new ImageError('IMAGE_USAGE', `${msg}\n\n${UPDATE_USAGE}`);
}

export async function updateCommand(argv: string[]): Promise<number> {
  const [step, ...rest] = argv;
  if (!step || step === 'help' || step === '--help') {
    process.stdout.write(`${UPDATE_USAGE}\n`);
    return step ? 0 : 2;
  }
  const dashdash = rest.indexOf('--');
  const own = dashdash >= 0 ? rest.slice(0, dashdash) : rest;
  const passThrough = dashdash >= 0 ? rest.slice(dashdash + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({ args: own, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  const settings = loadUpdateSettings(process.env, { root: v.root, keysDir: v.keys, compatible: v.compatible });
  const slots = new Slots(settings, (line) => process.stdout.write(`${line}\n`));
  switch (step) {
    case 'keygen': {
      if (!v.out || !v.name) throw usage('keygen needs --out DIR and --name NAME');
      const k = generateSigningKey(v.out, v.name);
      process.stdout.write(`signing key ${k.privateKey} (keep it secret, off the devices)\npublic key  ${k.publicKey} (key id ${k.keyId}): put it in ${settings.keysDir} of the image\n`);
      return 0;
    }
    case 'build': {
      if (!v.key || !v.version || !v.out || !v.payload?.length) throw usage('build needs --key, --version, --payload NAME=FILE and --out');
      const payloads: Record<string, string> = {};
      for (const p of v.payload) {
        const eq = p.indexOf('=');
        if (eq <= 0) throw usage(`--payload ${p}: use NAME=FILE`);
        const file = p.slice(eq + 1);
        if (!existsSync(file)) throw usage(`--payload ${p}: ${file} does not exist`);
        payloads[p.slice(0, eq)] = file;
      }
      const m = buildBundle({
        out: v.out,
        version: v.version,
        compatible: settings.compatible,
        minVersion: v['min-version'],
        commit: v.commit,
        signingKey: v.key,
        payloads,
        entry: v.entry,
      });
      process.stdout.write(`${v.out}: ccedge ${m.version} for ${m.compatible}, ${Object.keys(m.payloads).length} payload(s), signed\n`);
      return 0;
    }
    case 'verify': {
      const file = positionals[0];
      if (!file) throw usage('verify needs BUNDLE');
      const installed = slots.installed() ? slots.installedVersion() : VERSION;
      try {
        const b = await verifyBundle(file, { keysDir: settings.keysDir, compatible: settings.compatible, installedVersion: installed, allowSameVersion: v.reinstall });
        if (v.json) process.stdout.write(`${JSON.stringify({ ok: true, version: b.manifest.version, compatible: b.manifest.compatible, keyId: b.keyId, installed })}\n`);
        else process.stdout.write(`${file}: valid: ccedge ${b.manifest.version} for ${b.manifest.compatible}, signed by key ${b.keyId}; installed ${installed}\n`);
        return 0;
      } catch (e) {
        if (v.json && e instanceof ImageError) {
          process.stdout.write(`${JSON.stringify({ ok: false, code: e.code, error: e.message })}\n`);
          return 1;
        }
        throw e;
      }
    }
    case 'apply': {
      const file = positionals[0];
      if (!file) throw usage('apply needs BUNDLE');
      if (!['auto', 'systemd', 'supervisor', 'none'].includes(v.restart)) throw usage(`--restart ${v.restart}: auto, systemd, supervisor or none`);
      const { config } = loadConfig({ file: v.config });
      const trial = await slots.apply(file, { dataDir: config.dataDir, reinstall: v.reinstall });
      process.stdout.write(`${trial.version} is in slot ${trial.slot} on trial (from ${trial.from.version}); database copied: ${trial.dbBackup ? trial.dbBackup.file : 'no database yet'}\n`);
      process.stdout.write(`${restartService(settings, v.restart)}\n`);
      return 0;
    }
    case 'boot': {
      const r = await slots.boot();
      const s = r.state;
      if (r.action === 'rolled-back') process.stdout.write(`rolled back: ${s.last?.reason}: ${s.last?.message}\n`);
      else if (r.action === 'trial') process.stdout.write(`starting ${s.trial?.version} on trial (start ${s.trial?.boots} of ${s.trial?.maxBoots})\n`);
      else if (r.action === 'repaired') process.stdout.write('current pointed at an uncommitted slot without a trial: back to the committed slot\n');
      return 0;
    }
    case 'rollback': {
      const s = await slots.rollback('MANUAL', 'rolled back by an operator');
      process.stdout.write(`rolled back ${s.last?.version} to ${s.last?.from}; restart the service\n`);
      return 0;
    }
    case 'status': {
      const status = updateStatus(slots);
      if (v.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      else process.stdout.write(formatStatus(status));
      return 0;
    }
    case 'init': {
      const binary = v.binary ?? (isBinary() ? process.execPath : undefined);
      if (!binary) throw usage('init needs --binary FILE when not run as the single binary');
      const version = v.binary ? (v.version ?? versionOf(binary)) : VERSION;
      slots.init(binary, { version, commit: v.binary ? undefined : buildCommit() });
      process.stdout.write(`A/B layout under ${settings.root}: slot a has ccedge ${version}\n`);
      return 0;
    }
    case 'supervise':
      if (!slots.installed()) throw new ImageError('UPDATE_NOT_INSTALLED', `no A/B layout under ${settings.root}`);
      return supervise(settings, passThrough, { restartSec: Number(v['restart-sec']) });
    default:
      throw usage(`unknown update step "${step}"`);
  }
}

function versionOf(binary: string): string {
  try {
    const out = execFileSync(binary, ['--version', '--json'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).toString();
    return (JSON.parse(out) as { version: string }).version;
  } catch {
    throw usage(`cannot ask ${binary} for its version: pass --version`);
  }
}

/** After an apply from the command line: restart the service into the new slot. */
function restartService(settings: UpdateSettings, how: string): string {
  const pidFile = path.join(settings.root, 'supervisor.pid');
  const supervisorPid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
  if ((how === 'auto' || how === 'supervisor') && supervisorPid) {
    try {
      process.kill(supervisorPid, 'SIGHUP');
      return `asked the supervisor (pid ${supervisorPid}) to restart into the new slot`;
    } catch (e) {
      if (how === 'supervisor') throw new ImageError('UPDATE_APPLY_FAILED', `cannot signal the supervisor ${supervisorPid}: ${(e as Error).message}`);
    }
  }
  if (how === 'systemd' || (how === 'auto' && existsSync('/run/systemd/system'))) {
    execFileSync('systemctl', ['restart', '--no-block', settings.unit], { stdio: 'inherit' });
    return `restarting ${settings.unit}`;
  }
  return `restart ccedge to start the new version (it runs on trial and commits itself after ${settings.healthWindowS} s of good health)`;
}

export interface UpdateStatus {
  root: string;
  installed: boolean;
  current?: string;
  committed?: string;
  slots?: Record<string, { version: string; commit?: string }>;
  trial?: unknown;
  last?: unknown;
  lastReported?: boolean;
  history?: unknown[];
}

export function updateStatus(slots: Slots): UpdateStatus {
  if (!slots.installed()) return { root: slots.root, installed: false };
  const s = slots.state();
  const info = (x: 'a' | 'b'): { version: string; commit?: string } => {
    const m = slots.slotManifest(x);
    return { version: existsSync(path.join(slots.slotDir(x), 'ccedge')) ? m.version : '(empty)', commit: m.commit };
  };
  return { root: slots.root, installed: true, current: slots.current(), committed: slots.committed(), slots: { a: info('a'), b: info('b') }, trial: s.trial, last: s.last, lastReported: s.lastReported, history: s.history };
}

function formatStatus(s: UpdateStatus): string {
  if (!s.installed) return `no A/B layout under ${s.root}\n`;
  const lines = [`root ${s.root}`];
  for (const x of ['a', 'b'] as const) {
    const tags = [s.current === x ? 'current' : '', s.committed === x ? 'committed' : ''].filter(Boolean).join(', ');
    lines.push(`slot ${x}: ${s.slots?.[x].version}${tags ? ` (${tags})` : ''}`);
  }
  if (s.trial) lines.push(`trial: ${JSON.stringify(s.trial)}`);
  if (s.last) lines.push(`last: ${JSON.stringify(s.last)}`);
  return `${lines.join('\n')}\n`;
}
