import { buildCommit, VERSION } from '../../gateway/version';
import { isBinary } from '../../image/runtime';

export interface VersionInfo {
  version: string;
  commit: string;
  node: string;
  platform: string;
  binary: boolean;
}

export function versionInfo(): VersionInfo {
  return { version: VERSION, commit: buildCommit(), node: process.version, platform: `${process.platform}-${process.arch}`, binary: isBinary() };
}

/** `ccedge --version [--json]`: version, git commit (baked in at build time) and Node version. */
export function versionCommand(argv: string[] = []): number {
  const v = versionInfo();
  if (argv.includes('--json')) process.stdout.write(`${JSON.stringify(v)}\n`);
  else process.stdout.write(`ccedge ${v.version}\ncommit ${v.commit}\nnode ${v.node} (${v.platform}${v.binary ? ', single binary' : ''})\n`);
  return 0;
}
