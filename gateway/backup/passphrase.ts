import { readFileSync } from 'node:fs';
import { CcedgeError } from '../errors';
import { MIN_PASSPHRASE_CHARS } from './crypto';

/**
 * The backup passphrase: `--passphrase-file`, else CCEDGE_BACKUP_PASSPHRASE, else
 * backup.passphraseFile. Never read from ccedge.yaml itself, so the config (which the cloud may
 * see) never holds it. Undefined only when `optional` and nothing is set.
 */
export function resolvePassphrase(opts: { file?: string; configFile?: string; env?: NodeJS.ProcessEnv; optional?: boolean }): string | undefined {
  const env = opts.env ?? process.env;
  let value: string | undefined;
  let from = '';
  const file = opts.file ?? (env.CCEDGE_BACKUP_PASSPHRASE === undefined ? opts.configFile : undefined);
  if (file !== undefined) {
    try {
      value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new CcedgeError('BACKUP_NOT_CONFIGURED', `cannot read the backup passphrase file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    from = file;
  } else if (env.CCEDGE_BACKUP_PASSPHRASE !== undefined) {
    value = env.CCEDGE_BACKUP_PASSPHRASE;
    from = 'CCEDGE_BACKUP_PASSPHRASE';
  }
  if (value === undefined) {
    if (opts.optional) return undefined;
    throw new CcedgeError('BACKUP_NOT_CONFIGURED', 'no backup passphrase: set backup.passphraseFile, CCEDGE_BACKUP_PASSPHRASE or --passphrase-file');
  }
  if ([...value].length < MIN_PASSPHRASE_CHARS) throw new CcedgeError('BACKUP_NOT_CONFIGURED', `the backup passphrase from ${from} is shorter than ${MIN_PASSPHRASE_CHARS} characters`);
  return value;
}
