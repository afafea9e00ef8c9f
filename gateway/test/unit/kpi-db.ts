import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KPI_MIGRATION } from '../../kpi/kpi-store';
import { Db } from '../../store/db';

/**
 * A Db on a temp file with queue_events: from the migrations once KPI_MIGRATION is one of them,
 * else by running it here (the table is created only if missing).
 */
export async function openKpiDb(): Promise<{ db: Db; dir: string; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ccedge-kpi-'));
  const db = await Db.open(path.join(dir, 'ccedge.db'));
  const has = await db.get<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'queue_events'");
  if (!has?.n) await db.transaction((d) => d.exec(KPI_MIGRATION));
  return {
    db,
    dir,
    cleanup: async () => {
      await db.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
