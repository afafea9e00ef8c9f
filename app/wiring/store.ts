import path from 'node:path';
import type { Config } from '../../gateway/config/schema';
import type { Logger } from '../../gateway/logging';
import { assignPeople, checkWithConfig } from '../../gateway/people/people-service';
import type { People } from '../../gateway/people/people-edit';
import { PeopleStore } from '../../gateway/people/people-store';
import { Db } from '../../gateway/store/db';
import type { Closer } from '../lifecycle';

export interface StoreWiring {
  config: Config;
  log: Logger;
  closer: Closer;
}

export interface Store {
  db: Db;
  peopleStore: PeopleStore;
  /** The agents and queues changed live, when they are the ones running (undefined: the file's). */
  storedPeople: People | undefined;
}

/**
 * Opens the database (closed last of all) and puts the people and queues changed live (API, CLI,
 * cloud), which live in the database, in place of the config file's agents, queues and away
 * reasons (gateway/people/), unless they no longer fit this config file.
 */
export async function openStore(w: StoreWiring): Promise<Store> {
  const { config, log, closer } = w;
  const db = await Db.open(path.join(config.dataDir, 'ccedge.db'));
  closer.defer('database', () => db.close());
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
  return { db, peopleStore, storedPeople };
}
