import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Baked in by the single-binary build (image/build-binary.ts, esbuild `define`); absent when run from dist/. */
declare const __CCEDGE_BUILD__: { version: string; commit: string } | undefined;
const BAKED = typeof __CCEDGE_BUILD__ === 'undefined' ? undefined : __CCEDGE_BUILD__;

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const VERSION = BAKED?.version ?? readVersion();

let commit: string | undefined = BAKED?.commit;
/** The git commit of this build: baked into the binary; from git when run from a checkout. */
export function buildCommit(): string {
  if (commit === undefined) {
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: path.join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).toString().trim() || 'unknown';
    } catch {
      commit = 'unknown';
    }
  }
  return commit;
}
