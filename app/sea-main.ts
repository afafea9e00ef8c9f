/**
 * Entry point of the single binary (`ccedge`, a Node SEA). Decides where the runtime directory
 * goes (the daemon's data dir, found the way loadConfig finds it) before any app module loads,
 * because loading sqlite3 needs its extracted addon. `--version` needs nothing on disk.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { setRuntimeDataDir } from '../image/runtime';
import { versionCommand } from './cli/version-command';

/** provision's --data-dir, CCEDGE_DATA_DIR, else `dataDir` of --config FILE or ./ccedge.yaml, else ./var (as loadConfig). */
export function dataDirFor(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  // `ccedge provision --data-dir DIR` names the data dir it is about to create.
  const flag = argv.indexOf('--data-dir');
  if (argv[0] === 'provision' && flag > 0 && argv[flag + 1]) return path.resolve(cwd, argv[flag + 1]);
  if (env.CCEDGE_DATA_DIR) return path.resolve(cwd, env.CCEDGE_DATA_DIR);
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--config' && argv[i + 1]) file = argv[i + 1];
    else if (argv[i].startsWith('--config=')) file = argv[i].slice('--config='.length);
  }
  if (!file && existsSync(path.join(cwd, 'ccedge.yaml'))) file = path.join(cwd, 'ccedge.yaml');
  if (file) {
    try {
      const doc = YAML.parse(readFileSync(path.resolve(cwd, file), 'utf8')) as { dataDir?: unknown } | null;
      if (doc && typeof doc.dataDir === 'string' && doc.dataDir) return path.resolve(cwd, doc.dataDir);
    } catch {
      // loadConfig reports a bad file properly later.
    }
  }
  return path.resolve(cwd, 'var');
}

function start(): void {
  // In a SEA, argv[1] repeats the executable path.
  const argv = process.argv.slice(2);
  if (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version') {
    process.exitCode = versionCommand(argv.slice(1));
    return;
  }
  setRuntimeDataDir(dataDirFor(argv));
  // Loaded only now: its modules (sqlite3, the HTTP server) need the runtime directory.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { main } = require('./main') as typeof import('./main');
  main(argv).then(
    (code) => {
      process.exitCode = code;
      setTimeout(() => process.exit(code), 200).unref();
    },
    (err: unknown) => {
      process.stderr.write(`ccedge: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

start();
