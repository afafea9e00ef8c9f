import { parseArgs } from 'node:util';
import { callsCommand, configValidateCommand, outboxCommand, policyCommand, recordingsCommand, USAGE, queuesCommand, statusCommand } from './cli/data-commands';
import { loadConfig } from '../gateway/config/load';
import { reportCommand } from './cli/report-command';
import { certCommand } from './cli/cert-command';
import { backupCommand } from './cli/backup-command';
import { Daemon } from './daemon';
import { CcedgeError } from '../gateway/errors';
import { createLogger } from '../gateway/logging';
import { ImageError } from '../image/errors';
import { versionCommand } from './cli/version-command';
import { updateCommand } from './cli/update-command';
import { provisionCommand } from './cli/provision-command';
import { commandUsage, wantsHelp } from './cli/help';
import { agentsCommand, queuesChangeCommand } from './cli/people-command';
import { EXIT_RESTART, requestRestart, restartRequested } from '../image/restart';
import path from 'node:path';
import { startTrialWatch, type TrialWatch } from './trial-watch';

/** Exit codes: 0 ok, 1 runtime failure, 2 invalid config or usage. */
const EXIT_FAILURE = 1;
const EXIT_INVALID = 2;

async function run(argv: string[]): Promise<number> {
  // systemd (or an installer's Ctrl-C) may stop us while we are still starting: without a handler yet, the
  // signal would kill the process mid-start (exit by signal, not 0). Note it now and stop once started.
  let signalled: string | undefined;
  let onSignal = (signal: string): void => void (signalled ??= signal);
  const handler = (signal: NodeJS.Signals): void => onSignal(signal);
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } }, strict: true });
  const { config, source } = loadConfig({ file: values.config });
  const log = createLogger(config.log.level);
  log.info({ source }, 'configuration loaded');
  process.on('uncaughtException', (err) => {
    // One bad packet or peer must not take every call down: log it loudly and keep serving.
    log.error({ err, code: 'UNCAUGHT' }, 'uncaught exception');
  });
  process.on('unhandledRejection', (err) => log.error({ err, code: 'UNCAUGHT' }, 'unhandled rejection'));
  // /setup rewrites the config file, then the daemon restarts into it (EXIT_RESTART: systemd starts it again).
  const daemon = await Daemon.start(config, log, {
    configFile: values.config ? path.resolve(values.config) : source.endsWith('.yaml') ? source : undefined,
    onSetupDone: () => {
      requestRestart();
      setTimeout(() => process.kill(process.pid, 'SIGTERM'), 1000).unref();
    },
  });
  // A version on trial after an update commits itself or rolls back (app/trial-watch.ts).
  let rolledBack = false;
  let trial: TrialWatch | undefined;
  try {
    trial = startTrialWatch({ config, httpPort: daemon.httpPort, sipCheck: () => daemon.sipSelfCheck(), log, onRollback: () => ((rolledBack = true), process.kill(process.pid, 'SIGTERM')) });
  } catch (err) {
    log.error({ err }, 'update trial watch not started');
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'signal received');
      trial?.stop();
      daemon
        .stop()
        .then(() => resolve(rolledBack ? EXIT_FAILURE : restartRequested() ? EXIT_RESTART : 0))
        .catch((err: unknown) => {
          log.error({ err }, 'unclean stop');
          resolve(EXIT_FAILURE);
        });
    };
    if (signalled !== undefined) stop(signalled);
    else onSignal = stop;
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command = 'run', ...rest] = argv;
  try {
    if (!command.startsWith('-') && command !== 'help' && wantsHelp(rest)) {
      const usage = commandUsage(command);
      if (usage === undefined) throw new CcedgeError('CLI_USAGE', `unknown command "${command}"\n\n${USAGE}`);
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    switch (command) {
      case 'run':
        return await run(rest);
      case 'calls':
        return await callsCommand(rest);
      case 'status':
        return await statusCommand(rest);
      case 'queues':
        return ['list', 'add', 'set', 'remove'].includes(rest[0] ?? '') ? await queuesChangeCommand(rest) : await queuesCommand(rest);
      case 'agents':
        return await agentsCommand(rest);
      case 'report':
        return await reportCommand(rest);
      case 'recordings':
        return await recordingsCommand(rest);
      case 'policy':
        return policyCommand(rest);
      case 'outbox':
        return await outboxCommand(rest);
      case 'config':
        if (rest[0] === 'validate') return configValidateCommand(rest.slice(1));
        throw new CcedgeError('CLI_USAGE', 'usage: ccedge config validate FILE');
      case 'update':
        return await updateCommand(rest);
      case 'cert':
        return await certCommand(rest);
      case 'backup':
        return await backupCommand(rest);
      case 'provision':
        return await provisionCommand(rest);
      case '--version':
      case '-V':
      case 'version':
        return versionCommand(rest);
      case 'help':
      case '--help':
      case '-h': {
        const topic = rest[0] !== undefined ? commandUsage(rest[0]) : undefined;
        if (rest[0] !== undefined && topic === undefined) throw new CcedgeError('CLI_USAGE', `no help for "${rest[0]}": not a command\n\n${USAGE}`);
        process.stdout.write(`${topic ?? USAGE}\n`);
        return 0;
      }
      default:
        if (command.startsWith('-')) return await run(argv);
        throw new CcedgeError('CLI_USAGE', `unknown command "${command}"\n\n${USAGE}`);
    }
  } catch (e) {
    if (e instanceof CcedgeError) {
      process.stderr.write(`ccedge: ${e.code}: ${e.message}\n`);
      return e.code === 'CONFIG_INVALID' || e.code === 'CONFIG_UNREADABLE' || e.code === 'CLI_USAGE' || e.code === 'BACKUP_NOT_CONFIGURED' ? EXIT_INVALID : EXIT_FAILURE;
    }
    if (e instanceof ImageError) {
      process.stderr.write(`ccedge: ${e.code}: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof TypeError && (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ccedge: CLI_USAGE: ${e.message}\n\n${commandUsage(command) ?? USAGE}\n`);
      return EXIT_INVALID;
    }
    process.stderr.write(`ccedge: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT_FAILURE;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Sockets and timers are closed on stop; exit anyway so a stuck peer cannot hold us.
      setTimeout(() => process.exit(code), 200).unref();
    },
    () => process.exit(EXIT_FAILURE),
  );
}
