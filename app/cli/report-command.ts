import { parseArgs } from 'node:util';
import { loadConfig } from '../../gateway/config/load';
import { CcedgeError } from '../../gateway/errors';
import { Db, existingDbFile } from '../../gateway/store/db';
import { kpiConfigSchema, kpiOptions } from '../../gateway/kpi/config';
import { buildRoutingReport, formatRoutingReport } from '../../gateway/kpi/routing-report';

export const REPORT_USAGE = `  report routing [--since 7d] [--until ISO] [--json] [--config FILE]
                                      KPIs per queue and intent, intents below target, best agents`;

/** `ccedge report routing --since 7d`: prints the routing report of the period. */
export async function reportCommand(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind !== 'routing') throw new CcedgeError('CLI_USAGE', `usage: ccedge report routing [--since 7d] [--until ISO] [--json] [--config FILE]`);
  const { values } = parseArgs({
    args: rest,
    options: { since: { type: 'string', default: '7d' }, until: { type: 'string' }, json: { type: 'boolean', default: false }, config: { type: 'string' } },
    strict: true,
  });
  const { config } = loadConfig({ file: values.config });
  // The kpi section (targets, SL threshold, abandon handling) with its defaults when absent.
  const kpi = kpiConfigSchema.parse((config as unknown as { kpi?: unknown }).kpi ?? {});
  let until: number | undefined;
  if (values.until !== undefined) {
    until = Date.parse(values.until);
    if (!Number.isFinite(until)) throw new CcedgeError('CLI_USAGE', `--until must be an ISO date or time, got "${values.until}"`);
  }
  const db = await Db.open(existingDbFile(config.dataDir));
  try {
    const report = await buildRoutingReport(db, {
      since: values.since,
      until,
      targets: kpi.targets,
      kpi: kpiOptions(kpi),
      agentQueues: Object.fromEntries(config.agents.map((a) => [a.name, a.queues ?? null])),
      skills: Object.fromEntries(config.agents.map((a) => [a.name, a.skills])),
    }).catch((e: unknown) => {
      throw e instanceof RangeError ? new CcedgeError('CLI_USAGE', e.message) : e;
    });
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatRoutingReport(report));
  } finally {
    await db.close();
  }
  return 0;
}
