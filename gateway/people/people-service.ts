/**
 * People and queues as live data in the running daemon: the admin API, the CLI (through the API)
 * and cloud pushes change them here, one change at a time. Each change is checked as a config file
 * would be (the whole config, cross-references included), saved (people_live), and applied while
 * calls run: the ACD takes the new queues and agents (Acd.reconfigure), the directory the new
 * logins, the shared config object the new lists. A removed agent on a call keeps its session
 * until the call ends; then it is removed and its session ends.
 */
import type { Acd, ReconfigureResult } from '../acd/acd';
import type { AgentDirectory } from '../acd/agent-directory';
import type { AgentConfig } from '../acd/config';
import { DEFAULT_SCRYPT, hashPassword, type ScryptParams } from '../acd/password';
import { configSchema, type Config } from '../config/schema';
import { CcedgeError } from '../errors';
import type { Logger } from '../logging';
import type { People } from './people-edit';
import type { PeopleSource, PeopleStore } from './people-store';

export interface PeopleChange {
  /** The saved set's version (0: not saved, a cloud push over the file's people). */
  version: number;
  result: ReconfigureResult;
}

/** The people of a config (its sections), as a value to edit. */
export function peopleOf(config: Config): People {
  return structuredClone({ agents: config.agents, queues: config.queues, awayReasons: config.agentDesk.awayReasons });
}

/** Throws PEOPLE_INVALID unless `config` with `people` in place of its sections is a valid config. */
export function checkWithConfig(config: Config, people: People): void {
  const parsed = configSchema.safeParse({ ...structuredClone(config), agents: people.agents, queues: people.queues, agentDesk: { ...config.agentDesk, awayReasons: people.awayReasons } });
  if (!parsed.success) throw new CcedgeError('PEOPLE_INVALID', parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
}

/** Puts `people` into the running config object in place (components hold references to it). */
export function assignPeople(config: Config, people: People): void {
  config.agents = people.agents;
  config.queues = people.queues;
  // The desks hold this very array: it changes in place.
  config.agentDesk.awayReasons.splice(0, config.agentDesk.awayReasons.length, ...people.awayReasons);
}

/** Clear `password:` entries (config file) hashed, so that nothing clear is ever saved. */
export async function hashClearPasswords(agents: readonly AgentConfig[], scrypt: ScryptParams = DEFAULT_SCRYPT): Promise<AgentConfig[]> {
  const out: AgentConfig[] = [];
  for (const a of agents) {
    if (a.password === undefined) out.push(a);
    else {
      const { password, ...rest } = a;
      out.push({ ...rest, passwordHash: await hashPassword(password, scrypt) });
    }
  }
  return out;
}

export class PeopleService {
  private chain: Promise<unknown> = Promise.resolve();
  /** The live set; undefined until the first change (the config file's sections are the people). */
  private live: People | undefined;
  /** Removed agents still on a call: kept in the directory (their session lives) until it ends. */
  private readonly retiring = new Map<string, AgentConfig>();

  constructor(
    private readonly o: {
      config: Config;
      store: PeopleStore;
      acd: Acd;
      directory: AgentDirectory;
      log: Logger;
      scrypt?: ScryptParams;
      /** After every applied change (e.g. clear retained snapshots of removed queues). */
      changed?: (people: People) => void;
    },
    stored: People | undefined,
  ) {
    this.live = stored;
    o.acd.on('agentRemoved', (name, when) => {
      if (when !== 'after-call') return;
      this.serial(async () => {
        if (!this.retiring.delete(name)) return;
        await this.reloadDirectory();
        o.log.info({ agent: name }, 'removed agent finished its call: removed now');
      }).catch((err: unknown) => o.log.error({ err, agent: name }, 'ending the session of a removed agent failed'));
    });
  }

  /** The people now (a copy to edit). */
  current(): People {
    return structuredClone(this.live ?? peopleOf(this.o.config));
  }

  /**
   * Runs `edit` on the current people and applies its result, one change at a time (an edit sees
   * the result of the one before). `moveTo`: where a removed queue's waiting callers go first.
   */
  change<T>(
    source: PeopleSource,
    edit: (current: People) => Promise<{ people: People } & T> | ({ people: People } & T),
    opts: { moveTo?: string; against?: Config; saveOnlyIfLive?: boolean } = {},
  ): Promise<T & PeopleChange> {
    return this.serial(async () => {
      let base = this.current();
      // The file's clear passwords are hashed before anything is saved.
      if (!this.live && !opts.saveOnlyIfLive && base.agents.some((a) => a.password !== undefined)) base = { ...base, agents: await hashClearPasswords(base.agents, this.o.scrypt) };
      const out = await edit(base);
      // A cloud push that finds the file's people in use leaves them there: sync keeps the push
      // and runs it again at start, and later edits of the file's agents still count.
      const save = !(opts.saveOnlyIfLive && !this.live);
      const change = await this.apply(out.people, source, save, opts.moveTo, opts.against);
      return { ...out, ...change };
    });
  }

  /** `against`: the config the people must fit (a cloud push brings its other sections along). */
  private async apply(next: People, source: PeopleSource, save: boolean, moveTo?: string, against: Config = this.o.config): Promise<PeopleChange> {
    checkWithConfig(against, next);
    if (save && next.agents.some((a) => a.password !== undefined)) throw new CcedgeError('PEOPLE_INVALID', 'a clear password cannot be kept: hash it first');
    const version = save ? await this.o.store.save(next, source) : 0;
    const previous = new Map(this.current().agents.map((a) => [a.name, a]));
    const result = this.o.acd.reconfigure(next.queues, next.agents, { fallbackQueue: moveTo ?? this.o.config.people.fallbackQueue });
    if (save) this.live = next;
    // Still on their call: removed, or now a supervisor. Their session lives on as it was.
    const retiring = new Map<string, AgentConfig>();
    for (const name of this.o.acd.retiringAgents()) {
      const was = this.retiring.get(name) ?? previous.get(name);
      if (was) retiring.set(name, was);
    }
    this.retiring.clear();
    for (const [n, a] of retiring) this.retiring.set(n, a);
    assignPeople(this.o.config, next);
    await this.reloadDirectory();
    this.o.log.info({ source, version, ...result }, 'people and queues changed live');
    this.o.changed?.(next);
    return { version, result };
  }

  private async reloadDirectory(): Promise<void> {
    const agents = this.current().agents.filter((a) => !this.retiring.has(a.name));
    await this.o.directory.reload([...agents, ...this.retiring.values()]);
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.chain.then(work, work);
    this.chain = run.catch(() => undefined);
    return run;
  }
}
