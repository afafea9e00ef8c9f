import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The architecture's dependency rules, checked on the TypeScript sources so they stay true:
 * dependencies point from the composition root down. app/ (process entry, composition root, CLI)
 * wires gateway/ (the call path) and image/ (the appliance: build, bundles, slots), which never
 * import each other or app/; media/, vault/, sync/ and hw/ are libraries below them that never
 * reach up, and media and sync never import each other. vault/ sits above media/ (it stores what
 * media's recorder produces, through media's RecordingSink), so media never imports vault. Test
 * code is exempt (a sync test may borrow the gateway's Db as its fixture). lib/ (the coded-error base,
 * the logger interface) sits below them all: every folder may import it and it imports none.
 */
const ROOT = path.resolve(__dirname, '..', '..', '..');
const TOP = ['app', 'lib', 'gateway', 'media', 'vault', 'sync', 'hw', 'image', 'scripts', 'test'] as const;
type Top = (typeof TOP)[number];

/** Which top-level folders each library may NOT import (production files). */
const FORBIDDEN: Partial<Record<Top, readonly Top[]>> = {
  lib: ['app', 'gateway', 'media', 'vault', 'sync', 'hw', 'image', 'scripts', 'test'],
  gateway: ['app', 'image', 'scripts', 'test'],
  image: ['app', 'gateway', 'scripts', 'test'],
  media: ['app', 'gateway', 'image', 'vault', 'sync', 'hw', 'scripts', 'test'],
  vault: ['app', 'gateway', 'image', 'sync', 'hw', 'scripts', 'test'],
  sync: ['app', 'gateway', 'image', 'media', 'vault', 'hw', 'scripts', 'test'],
  hw: ['app', 'gateway', 'image', 'media', 'vault', 'sync', 'scripts', 'test'],
};


const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|require\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function isTestFile(rel: string): boolean {
  return rel.split(path.sep).includes('test') || rel.endsWith('.test.ts');
}

interface Edge {
  from: Top;
  to: string;
  file: string;
  spec: string;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const top of TOP) {
    for (const file of sources(path.join(ROOT, top))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2] ?? m[3];
        const target = path.relative(ROOT, path.resolve(path.dirname(file), spec)).split(path.sep)[0];
        if (target !== top) out.push({ from: top, to: target, file: path.relative(ROOT, file), spec });
      }
    }
  }
  return out;
}

describe('dependency direction between top-level folders', () => {
  const all = edges();

  it('finds imports at all (the scanner reads the tree)', () => {
    assert.ok(all.some((e) => e.from === 'gateway' && e.to === 'media'), 'gateway → media imports must be seen');
    assert.ok(all.some((e) => e.from === 'gateway' && e.to === 'vault'), 'gateway → vault imports must be seen');
    assert.ok(all.some((e) => e.from === 'vault' && e.to === 'media' && !isTestFile(e.file)), 'vault → media (recorder types) imports must be seen');
    assert.ok(all.some((e) => e.from === 'hw' && e.to === 'lib'), 'hw → lib imports must be seen');
  });

  it('lib/ imports no other folder; nothing imports app/; gateway/ and image/ never import each other; media/, vault/, sync/ and hw/ never import gateway/, image/ or each other; media never imports vault (production files)', () => {
    const bad = all.filter((e) => !isTestFile(e.file) && (FORBIDDEN[e.from] ?? []).includes(e.to as Top));
    assert.deepEqual(
      bad.map((e) => `${e.file}: ${e.spec}`),
      [],
      'these imports point up or sideways: move the shared type down or inject it',
    );
  });

  it('app/, gateway/, image/ and vault/ reach media/ through its front door, media/index.ts (benchmarks may measure its insides)', () => {
    const deep = all.filter((e) => e.to === 'media' && e.from !== 'scripts' && !isTestFile(e.file) && !/\/media(?:\/index)?$/.test(e.spec));
    assert.deepEqual(
      deep.map((e) => `${e.file}: ${e.spec}`),
      [],
      'import from media/index.ts (export the name there) instead of a file inside media/',
    );
  });

  it('no cycle between top-level folders', () => {
    const pairs = new Set(all.filter((e) => !isTestFile(e.file)).map((e) => `${e.from}>${e.to}`));
    const cycles = new Set<string>();
    for (const p of pairs) {
      const [a, b] = p.split('>');
      if (pairs.has(`${b}>${a}`)) cycles.add([a, b].sort().join('<->'));
    }
    assert.deepEqual([...cycles], [], 'import cycle between top-level folders');
  });
});
