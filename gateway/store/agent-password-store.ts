import type { Db } from './db';

/** A password an agent chose in place of its one-time password (hashes only, never the text). */
export interface ChangedPassword {
  /** The config's one-time passwordHash this one replaced. */
  replaces: string;
  hash: string;
}

/** Agents' own passwords chosen at first login (table agent_passwords). */
export class AgentPasswordStore {
  constructor(private readonly db: Db) {}

  async all(): Promise<Map<string, ChangedPassword>> {
    const rows = await this.db.all<{ agent: string; replaces: string; hash: string }>('SELECT agent, replaces, hash FROM agent_passwords');
    return new Map(rows.map((r) => [r.agent, { replaces: r.replaces, hash: r.hash }]));
  }

  async save(agent: string, changed: ChangedPassword): Promise<void> {
    await this.db.transaction(async (db) => {
      await db.run(
        'INSERT INTO agent_passwords (agent, replaces, hash, changed_at) VALUES (?, ?, ?, ?) ON CONFLICT (agent) DO UPDATE SET replaces = excluded.replaces, hash = excluded.hash, changed_at = excluded.changed_at',
        [agent, changed.replaces, changed.hash, new Date().toISOString()],
      );
    });
  }
}
