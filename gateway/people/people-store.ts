import type { Db } from '../store/db';
import type { People } from './people-edit';

/** Who made the latest live change. */
export type PeopleSource = 'api' | 'cli' | 'cloud';

export interface StoredPeople {
  people: People;
  /** Counts changes (1 = the first). */
  version: number;
  source: PeopleSource;
  updatedAt: string;
}

/**
 * The live people set (table people_live, one row). Absent until the first live change: until
 * then the config file's sections are the people. Password hashes only, never clear text.
 */
export class PeopleStore {
  constructor(private readonly db: Db) {}

  async get(): Promise<StoredPeople | undefined> {
    const row = await this.db.get<{ data: string; version: number; source: PeopleSource; updated_at: string }>('SELECT data, version, source, updated_at FROM people_live WHERE id = 1');
    if (!row) return undefined;
    return { people: JSON.parse(row.data) as People, version: row.version, source: row.source, updatedAt: row.updated_at };
  }

  /** Saves a new set; returns its version. */
  async save(people: People, source: PeopleSource): Promise<number> {
    return this.db.transaction(async (db) => {
      const row = await db.get<{ version: number }>('SELECT version FROM people_live WHERE id = 1');
      const version = (row?.version ?? 0) + 1;
      await db.run(
        'INSERT INTO people_live (id, data, version, source, updated_at) VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data, version = excluded.version, source = excluded.source, updated_at = excluded.updated_at',
        [JSON.stringify(people), version, source, new Date().toISOString()],
      );
      return version;
    });
  }
}
