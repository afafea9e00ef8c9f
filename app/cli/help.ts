/**
 * `ccedge COMMAND --help`: the lines of the main usage text that describe COMMAND (a command's
 * own usage where it has a longer one). Every command answers --help with exit 0.
 */
import { USAGE } from './data-commands';
import { PROVISION_USAGE } from './provision-command';
import { UPDATE_USAGE } from './update-command';
import { AGENTS_USAGE, QUEUES_USAGE } from './people-command';

const OWN_USAGE: Record<string, string> = { provision: PROVISION_USAGE, update: UPDATE_USAGE, agents: AGENTS_USAGE, queues: QUEUES_USAGE };

/** Aliases that name the same command in USAGE. */
const ALIASES: Record<string, string> = { version: '--version', '-V': '--version' };

/** The usage text of `command`, or undefined for an unknown command. */
export function commandUsage(command: string): string | undefined {
  if (OWN_USAGE[command]) return OWN_USAGE[command];
  const name = ALIASES[command] ?? command;
  const lines = USAGE.split('\n');
  const out: string[] = [];
  let inside = false;
  for (const line of lines) {
    const m = /^ {2}(\S+)/.exec(line);
    if (m) inside = m[1] === name;
    else if (!/^ {3,}\S/.test(line)) inside = false;
    if (inside) out.push(line);
  }
  if (out.length === 0) return undefined;
  return `usage: ccedge\n${out.join('\n')}\n\nCommon: --config FILE (default ./ccedge.yaml). Exit 0 ok, 1 failure, 2 bad usage or config.`;
}

/** True when the arguments ask for help (before any `--` that passes arguments on). */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}
