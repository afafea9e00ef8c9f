/**
 * A/B slots for a Node daemon, in the manner of RAUC/Mender but with directories and symlinks:
 *
 *   <root>/slots/a/{ccedge,manifest.json}   one complete version per slot
 *   <root>/slots/b/…
 *   <root>/current   -> slots/X   what the service runs (ExecStart=<root>/current/ccedge run)
 *   <root>/committed -> slots/Y   the last version that passed its health window; the boot check
 *                                 (ExecStartPre=<root>/committed/ccedge update boot) runs from
 *                                 here, so a broken new version cannot break its own rollback
 *   <root>/state.json             trial in progress, boot counter, last result, history
 *
 * Symlinks are switched atomically (a new link renamed over the old). `apply` writes the inactive
 * slot, copies the database (sqlite VACUUM INTO) before the switch, marks the slot `trial` and
 * switches `current`. The new version commits itself after its health window (trial-watch.ts);
 * the boot check rolls back after `maxBoots` starts without a commit; a failed health window
 * rolls back at once. A rollback restores the copied database only when the trial version
 * migrated it (its schema version went up): an older ccedge refuses a newer schema.
 */
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync, chmodSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ImageError } from './errors';
import { openBundle, streamPayloads, type Manifest, type OpenedBundle } from './bundle';
import type { UpdateSettings } from './settings';

export type SlotName = 'a' | 'b';

export interface UpdateResult {
  outcome: 'committed' | 'rolled-back' | 'failed';
  version: string;
  from: string;
  at: string;
  /** Stable reason code for a rollback or failure (BOOT_LIMIT, HEALTH_FAILED, UPDATE_*). */
  reason?: string;
  message?: string;
}

export interface TrialState {
  slot: SlotName;
  version: string;
  from: { slot: SlotName; version: string };
  appliedAt: string;
  boots: number;
  maxBoots: number;
  keyId: string;
  /** The database as it was before the switch. */
  dbBackup?: { file: string; userVersion: number };
  dataDir?: string;
}

export interface SlotState {
  format: 1;
  trial?: TrialState;
  last?: UpdateResult;
  /** false until the cloud has been told about `last`. */
  lastReported?: boolean;
  history: UpdateResult[];
}

const other = (s: SlotName): SlotName => (s === 'a' ? 'b' : 'a');

export class Slots {
  constructor(
    readonly settings: UpdateSettings,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  get root(): string {
    return this.settings.root;
  }

  private p(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  installed(): boolean {
    return existsSync(this.p('current')) && existsSync(this.p('committed'));
  }

  private requireInstalled(): void {
    if (!this.installed()) throw new ImageError('UPDATE_NOT_INSTALLED', `no A/B slot layout under ${this.root} (expected current and committed links; see ccedge update init)`);
  }

  private link(name: 'current' | 'committed'): SlotName {
    const target = readlinkSync(this.p(name));
    const m = /^slots\/([ab])$/.exec(target);
    if (!m) throw new ImageError('UPDATE_NOT_INSTALLED', `${this.p(name)} points at "${target}", not slots/a or slots/b`);
    return m[1] as SlotName;
  }

  current(): SlotName {
    this.requireInstalled();
    return this.link('current');
  }

  committed(): SlotName {
    this.requireInstalled();
    return this.link('committed');
  }

  slotDir(s: SlotName): string {
    return this.p('slots', s);
  }

  slotManifest(s: SlotName): Partial<Manifest> & { version: string } {
    try {
      return JSON.parse(readFileSync(path.join(this.slotDir(s), 'manifest.json'), 'utf8')) as Manifest;
    } catch {
      return { version: '0.0.0' };
    }
  }

  /** Atomic switch: a fresh link renamed over the old one, then the directory synced. */
  private switchLink(name: 'current' | 'committed', slot: SlotName): void {
    const tmp = this.p(`.${name}.${process.pid}`);
    rmSync(tmp, { force: true });
    symlinkSync(`slots/${slot}`, tmp);
    renameSync(tmp, this.p(name));
    syncDir(this.root);
  }

  state(): SlotState {
    try {
      return JSON.parse(readFileSync(this.p('state.json'), 'utf8')) as SlotState;
    } catch {
      return { format: 1, history: [] };
    }
  }

  private writeState(s: SlotState): void {
    writeDurable(this.p('state.json'), `${JSON.stringify(s, null, 2)}\n`);
  }

  /** Creates the layout with `binary` in slot a (the image build and `ccedge update init`). */
  init(binary: string, manifest: { version: string; commit?: string }): void {
    if (this.installed()) throw new ImageError('IMAGE_USAGE', `${this.root} already has an A/B slot layout`);
    mkdirSync(this.p('slots', 'a'), { recursive: true });
    mkdirSync(this.p('slots', 'b'), { recursive: true });
    copyFileSync(binary, path.join(this.slotDir('a'), 'ccedge'));
    chmodSync(path.join(this.slotDir('a'), 'ccedge'), 0o755);
    writeFileSync(path.join(this.slotDir('a'), 'manifest.json'), `${JSON.stringify({ version: manifest.version, commit: manifest.commit, entry: 'ccedge', factory: true }, null, 2)}\n`);
    this.writeState({ format: 1, history: [] });
    this.switchLink('committed', 'a');
    this.switchLink('current', 'a');
  }

  private lock(): () => void {
    const file = this.p('update.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return () => rmSync(file, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const pid = Number(readFileSync(file, 'utf8'));
        if (pid && pidAlive(pid)) throw new ImageError('UPDATE_IN_PROGRESS', `another update (pid ${pid}) is running`);
        rmSync(file, { force: true });
      }
    }
    throw new ImageError('UPDATE_IN_PROGRESS', `cannot take ${file}`);
  }

  /** The version this device stands on: the committed slot's. */
  installedVersion(): string {
    return this.slotManifest(this.committed()).version;
  }

  async open(bundle: string, opts: { reinstall?: boolean } = {}): Promise<OpenedBundle> {
    return openBundle(bundle, {
      keysDir: this.settings.keysDir,
      compatible: this.settings.compatible,
      installedVersion: this.installedVersion(),
      allowSameVersion: opts.reinstall,
    });
  }

  /**
   * Verifies and writes the bundle into the inactive slot, copies the database, marks the slot
   * trial and switches `current`. The caller restarts the service (see update-command.ts).
   */
  async apply(bundle: string, opts: { dataDir?: string; reinstall?: boolean; progress?: (phase: string, done: number, total: number) => void } = {}): Promise<TrialState> {
    this.requireInstalled();
    const unlock = this.lock();
    try {
      const state = this.state();
      if (state.trial) throw new ImageError('UPDATE_IN_PROGRESS', `version ${state.trial.version} in slot ${state.trial.slot} is still on trial; wait for its commit or rollback`);
      const running = this.current();
      const committed = this.committed();
      if (running !== committed) throw new ImageError('UPDATE_IN_PROGRESS', `current (${running}) is not the committed slot (${committed}); run ccedge update boot first`);
      const b = await this.open(bundle, { reinstall: opts.reinstall });
      const target = other(committed);
      const staging = this.p('slots', `.${target}.new`);
      rmSync(staging, { recursive: true, force: true });
      opts.progress?.('write', 0, 1);
      await streamPayloads(b, staging, (done, total) => opts.progress?.('write', done, total));
      for (const [name, p] of Object.entries(b.manifest.payloads)) {
        chmodSync(path.join(staging, name), p.mode);
        fsyncFile(path.join(staging, name));
      }
      writeFileSync(path.join(staging, 'manifest.json'), `${JSON.stringify({ ...b.manifest, keyId: b.keyId }, null, 2)}\n`);
      rmSync(this.slotDir(target), { recursive: true, force: true });
      renameSync(staging, this.slotDir(target));
      syncDir(this.p('slots'));
      const from = { slot: committed, version: this.installedVersion() };
      let dbBackup: TrialState['dbBackup'];
      if (opts.dataDir && existsSync(path.join(opts.dataDir, 'ccedge.db'))) {
        opts.progress?.('db-backup', 0, 1);
        const file = path.join(opts.dataDir, 'updates', `db-before-${b.manifest.version}.db`);
        dbBackup = { file, userVersion: await backupDb(path.join(opts.dataDir, 'ccedge.db'), file) };
      }
      const trial: TrialState = {
        slot: target,
        version: b.manifest.version,
        from,
        appliedAt: new Date().toISOString(),
        boots: 0,
        maxBoots: this.settings.maxBoots,
        keyId: b.keyId,
        dbBackup,
        dataDir: opts.dataDir,
      };
      // State first, then the switch: a crash between them leaves a trial that the boot check
      // resolves (current still old: it rolls the trial back as never started).
      this.writeState({ ...state, trial });
      this.switchLink('current', target);
      this.log(`slot ${target} has ${b.manifest.version} on trial; current -> slots/${target}`);
      return trial;
    } finally {
      unlock();
    }
  }

  /**
   * The boot check before every start (ExecStartPre, or the supervisor): counts starts of a trial
   * version and rolls back once it has had `maxBoots` starts without committing.
   */
  async boot(): Promise<{ action: 'none' | 'trial' | 'rolled-back' | 'repaired'; state: SlotState }> {
    this.requireInstalled();
    const state = this.state();
    const current = this.current();
    const committed = this.committed();
    if (!state.trial) {
      if (current !== committed) {
        // A switch nobody recorded: go back to what is known to work.
        this.switchLink('current', committed);
        this.log(`current pointed at slots/${current} without a trial: back to the committed slots/${committed}`);
        return { action: 'repaired', state };
      }
      return { action: 'none', state };
    }
    if (current !== state.trial.slot) {
      return { action: 'rolled-back', state: await this.rollback('APPLY_INTERRUPTED', 'the switch to the new slot did not happen (interrupted apply)') };
    }
    if (state.trial.boots >= state.trial.maxBoots) {
      return {
        action: 'rolled-back',
        state: await this.rollback('BOOT_LIMIT', `version ${state.trial.version} started ${state.trial.boots} times without passing its health window (crash loop or failed health)`),
      };
    }
    state.trial.boots += 1;
    this.writeState(state);
    this.log(`trial of ${state.trial.version}: start ${state.trial.boots} of ${state.trial.maxBoots}`);
    return { action: 'trial', state };
  }

  /** The trial version passed its health window: it becomes the committed slot. */
  commit(): SlotState {
    const state = this.state();
    const trial = state.trial;
    if (!trial) throw new ImageError('UPDATE_APPLY_FAILED', 'no version is on trial');
    this.switchLink('committed', trial.slot);
    const result: UpdateResult = { outcome: 'committed', version: trial.version, from: trial.from.version, at: new Date().toISOString() };
    const next: SlotState = { format: 1, last: result, lastReported: false, history: [result, ...state.history].slice(0, 20) };
    this.writeState(next);
    this.log(`committed ${trial.version} (slot ${trial.slot})`);
    return next;
  }

  /** Back to the committed slot; restores the pre-switch database if the trial migrated it. */
  async rollback(reason: string, message: string): Promise<SlotState> {
    const state = this.state();
    const trial = state.trial;
    if (!trial) throw new ImageError('UPDATE_APPLY_FAILED', 'no version is on trial');
    this.switchLink('current', this.committed());
    let restored = '';
    const b = trial.dbBackup;
    if (b && trial.dataDir && existsSync(b.file)) {
      const db = path.join(trial.dataDir, 'ccedge.db');
      const now = existsSync(db) ? await readUserVersion(db) : 0;
      if (now > b.userVersion) {
        const aside = path.join(trial.dataDir, 'updates', `db-from-failed-${trial.version}-${Date.now()}.db`);
        for (const ext of ['', '-wal', '-shm']) if (existsSync(db + ext)) renameSync(db + ext, aside + ext);
        copyFileSync(b.file, db);
        fsyncFile(db);
        restored = `; the database (schema ${now}) was set aside as ${path.basename(aside)} and the copy from before the switch (schema ${b.userVersion}) restored`;
      }
    }
    const result: UpdateResult = { outcome: 'rolled-back', version: trial.version, from: trial.from.version, at: new Date().toISOString(), reason, message: message + restored };
    const next: SlotState = { format: 1, last: result, lastReported: false, history: [result, ...state.history].slice(0, 20) };
    this.writeState(next);
    this.log(`rolled back ${trial.version} -> ${trial.from.version}: ${reason}: ${result.message}`);
    return next;
  }

  markReported(): void {
    const s = this.state();
    if (s.last && !s.lastReported) this.writeState({ ...s, lastReported: true });
  }

  /** Is this process the trial version (its executable inside the trial slot)? */
  runningTrial(execPath = process.execPath): TrialState | undefined {
    if (!this.installed()) return undefined;
    const t = this.state().trial;
    if (!t) return undefined;
    const dir = this.slotDir(t.slot);
    const real = (p: string): string => {
      try {
        return realpathSync(p);
      } catch {
        return p;
      }
    };
    return real(execPath).startsWith(`${real(dir)}${path.sep}`) ? t : undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncFile(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeDurable(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  syncDir(path.dirname(file));
}

type Sqlite = typeof import('sqlite3');

function sqlite(): Sqlite {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('sqlite3') as Sqlite;
}

function withDb<T>(file: string, fn: (db: import('sqlite3').Database, done: (err: Error | null, v?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const db = new (sqlite().Database)(file, (err) => {
      if (err) return reject(err);
      fn(db, (e, v) => db.close(() => (e ? reject(e) : resolve(v as T))));
    });
  });
}

export function readUserVersion(file: string): Promise<number> {
  return withDb<number>(file, (db, done) => db.get('PRAGMA user_version', (err, row: { user_version: number } | undefined) => done(err, row?.user_version ?? 0)));
}

/** A consistent copy of a live database (sqlite VACUUM INTO); resolves with its schema version. */
export async function backupDb(file: string, dest: string): Promise<number> {
  mkdirSync(path.dirname(dest), { recursive: true });
  rmSync(dest, { force: true });
  await withDb<void>(file, (db, done) => db.run('VACUUM INTO ?', [dest], (err) => done(err)));
  fsyncFile(dest);
  return readUserVersion(dest);
}
