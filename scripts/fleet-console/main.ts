/**
 * Fleet console CLI:
 *   node dist/scripts/fleet-console/main.js --url mqtt://127.0.0.1:1883 [--site S] <command>
 *     devices
 *     queues
 *     events [--follow] [--for SECONDS]
 *     command DEVICE NAME [JSON-ARGS]
 *     push-config DEVICE FILE --version N
 *     rollout --bundle URL --to VERSION [--sha256 H] [--size N] [--percent P] [--max-failure-rate R] [--batch N] [--confirm-timeout S]
 * Exit: 0 ok, 1 the device answered with an error / timed out, 2 usage or broker unreachable.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { FleetConsole, FleetConsoleError } from './fleet-console';
import { planRollout, runRollout } from './rollout';

const USAGE = `usage: fleet-console --url mqtt://HOST:PORT [--site S] <command>
  devices                              devices with online state, version, bootId, startedAt
  queues                               retained queue snapshots
  events [--follow] [--for SECONDS]    events as JSON lines, deduplicated by (device, seq); GAP lines
  command DEVICE NAME [JSON-ARGS]      send cmd/NAME and print cmd-result (needs --site)
  push-config DEVICE FILE --version N  publish config/desired, wait for config/reported (needs --site)
  rollout --bundle URL --to VERSION [--sha256 H] [--size BYTES] [--percent P (100)]
          [--max-failure-rate R (0.2)] [--batch N (5)] [--confirm-timeout S (900)]
                                       staged update: a stable P % of the online devices not on VERSION
                                       (all sites, or --site), N at a time; each must report VERSION
                                       committed; stops when failures/attempted > R (exit 1)`;

class UsageError extends Error {}

interface Args {
  url?: string;
  site?: string;
  follow: boolean;
  forS?: number;
  version?: number;
  rollout: { bundle?: string; to?: string; sha256?: string; size?: number; percent: number; maxFailureRate: number; batch: number; confirmS: number };
  rest: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { follow: false, rest: [], rollout: { percent: 100, maxFailureRate: 0.2, batch: 5, confirmS: 900 } };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${x} needs a value`);
      return v;
    };
    const num = (): number => {
      const v = val();
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new UsageError(`${x}: "${v}" is not a non-negative number`);
      return n;
    };
    if (x === '--url') a.url = val();
    else if (x === '--site') a.site = val();
    else if (x === '--follow') a.follow = true;
    else if (x === '--for') a.forS = num();
    else if (x === '--version') a.version = num();
    else if (x === '--bundle') a.rollout.bundle = val();
    else if (x === '--to') a.rollout.to = val();
    else if (x === '--sha256') a.rollout.sha256 = val();
    else if (x === '--size') a.rollout.size = num();
    else if (x === '--percent') a.rollout.percent = num();
    else if (x === '--max-failure-rate') a.rollout.maxFailureRate = num();
    else if (x === '--batch') a.rollout.batch = Math.max(1, Math.floor(num()));
    else if (x === '--confirm-timeout') a.rollout.confirmS = num();
    else if (x === '-h' || x === '--help') throw new UsageError('');
    else if (x.startsWith('--')) throw new UsageError(`unknown option ${x}`);
    else a.rest.push(x);
  }
  return a;
}

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv);
  const [cmd, ...pos] = a.rest;
  if (!cmd) throw new UsageError('no command given');
  if (!a.url) throw new UsageError('--url is required');
  const known = ['devices', 'queues', 'events', 'command', 'push-config', 'rollout'];
  if (!known.includes(cmd)) throw new UsageError(`unknown command "${cmd}"`);

  // Validate arguments before connecting.
  let cmdArgs: Record<string, unknown> = {};
  let config: unknown;
  if (cmd === 'command') {
    if (pos.length < 2 || pos.length > 3) throw new UsageError('command DEVICE NAME [JSON-ARGS]');
    if (pos[2] !== undefined) {
      try {
        cmdArgs = JSON.parse(pos[2]) as Record<string, unknown>;
      } catch (e) {
        throw new UsageError(`JSON-ARGS is not JSON: ${(e as Error).message}`);
      }
      if (!cmdArgs || typeof cmdArgs !== 'object' || Array.isArray(cmdArgs)) throw new UsageError('JSON-ARGS must be a JSON object');
    }
  }
  if (cmd === 'push-config') {
    if (pos.length !== 2) throw new UsageError('push-config DEVICE FILE --version N');
    if (a.version === undefined || !Number.isInteger(a.version)) throw new UsageError('push-config needs --version N (an integer)');
    let text: string;
    try {
      text = readFileSync(pos[1], 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${pos[1]}: ${(e as Error).message}`);
    }
    try {
      config = /\.json$/i.test(pos[1]) ? (JSON.parse(text) as unknown) : (YAML.parse(text) as unknown);
    } catch (e) {
      throw new UsageError(`${pos[1]} is not valid ${/\.json$/i.test(pos[1]) ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
    }
  }
  if (cmd === 'rollout') {
    if (!a.rollout.bundle || !a.rollout.to) throw new UsageError('rollout needs --bundle URL and --to VERSION');
    if (!(a.rollout.percent > 0 && a.rollout.percent <= 100)) throw new UsageError('--percent must be more than 0 and at most 100');
    if (a.rollout.maxFailureRate > 1) throw new UsageError('--max-failure-rate is a fraction between 0 and 1');
  }
  if ((cmd === 'command' || cmd === 'push-config') && !a.site) throw new UsageError(`${cmd} needs --site`);

  const fc = await FleetConsole.connect({ url: a.url, site: a.site });
  try {
    switch (cmd) {
      case 'devices': {
        const ds = await fc.devices();
        if (ds.length === 0) out('(no devices)');
        for (const d of ds) {
          out(
            [`${d.site}/${d.device}`, d.online ? 'online' : 'OFFLINE', `version=${d.version ?? '?'}`, `bootId=${d.bootId ?? '?'}`, `startedAt=${d.startedAt ?? '?'}`]
              .concat(d.health ? [`health=${JSON.stringify(d.health)}`] : [])
              .join('  '),
          );
        }
        return 0;
      }
      case 'queues': {
        const qs = await fc.queues();
        if (qs.length === 0) out('(no queue snapshots)');
        for (const q of qs) out(`${q.site}/${q.device}  ${q.queue}  ${JSON.stringify(q.snapshot)}`);
        return 0;
      }
      case 'events': {
        await fc.followEvents(
          (e) => out(JSON.stringify(e)),
          (g) => out(`GAP ${g.device} seq ${g.from}..${g.to}`),
        );
        // Without --follow: drain what the session has queued (default 2 s); with it: until --for or Ctrl-C.
        const forMs = a.forS !== undefined ? a.forS * 1000 : a.follow ? undefined : 2000;
        await new Promise<void>((resolve) => {
          if (forMs !== undefined) setTimeout(resolve, forMs);
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        return 0;
      }
      case 'command': {
        const r = await fc.command(pos[0], pos[1], cmdArgs);
        out(JSON.stringify(r, null, 2));
        return r.ok ? 0 : 1;
      }
      case 'rollout': {
        const r = a.rollout;
        const plan = planRollout(await fc.devices(), r.to as string, r.percent);
        out(JSON.stringify({ plan: { cohort: plan.cohort.map((d) => `${d.site}/${d.device}`), later: plan.later.length, upToDate: plan.upToDate.length, offline: plan.offline.map((d) => `${d.site}/${d.device}`) } }));
        const report = await runRollout(
          fc,
          plan,
          { url: r.bundle as string, version: r.to as string, sha256: r.sha256, size: r.size, percent: r.percent, maxFailureRate: r.maxFailureRate, batch: r.batch, applyTimeoutMs: 15 * 60_000, confirmTimeoutMs: r.confirmS * 1000 },
          (x) => out(JSON.stringify(x)),
        );
        out(JSON.stringify({ summary: { attempted: report.attempted, failed: report.failed, aborted: report.aborted, notAttempted: report.notAttempted } }));
        return report.aborted || report.failed > 0 ? 1 : 0;
      }
      case 'push-config': {
        const r = await fc.pushConfig(pos[0], a.version as number, config);
        out(JSON.stringify(r, null, 2));
        return r.error ? 1 : 0;
      }
    }
    return 2;
  } finally {
    await fc.close();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) {
      if (e.message) process.stderr.write(`fleet-console: ${e.message}\n`);
      process.stderr.write(`${USAGE}\n`);
      process.exit(2);
    }
    if (e instanceof FleetConsoleError) {
      process.stderr.write(`fleet-console: ${e.message}\n`);
      process.exit(e.code === 'TIMEOUT' ? 1 : 2);
    }
    process.stderr.write(`fleet-console: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  },
);
