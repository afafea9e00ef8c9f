#!/usr/bin/env node
'use strict';
/**
 * Builds the agent softphone page (gateway/agent-ui/page) into dist/agent-ui/:
 * index.html, agent.js, agent.css. The server serves them at /agent, /agent/agent.js and
 * /agent/agent.css. Steps: type-check the page (its own tsconfig: DOM, strict, noEmit), bundle
 * with esbuild, copy the HTML, and refuse output that would load anything from the network.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const pageDir = path.join(root, 'gateway', 'agent-ui', 'page');
const outDir = path.join(root, 'dist', 'agent-ui');

function fail(msg) {
  console.error(`build-agent-page: ${msg}`);
  process.exit(1);
}

// 1. Type-check (esbuild only strips types).
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
const check = spawnSync(process.execPath, [tsc, '-p', path.join(pageDir, 'tsconfig.json')], {
  cwd: root,
  stdio: 'inherit',
});
if (check.status !== 0) fail('type errors in gateway/agent-ui/page');

// 2. Bundle.
fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
const esbuild = require('esbuild');
const common = {
  bundle: true,
  logLevel: 'warning',
  legalComments: 'none',
  target: ['chrome100', 'edge100', 'firefox100', 'safari15'],
};
try {
  esbuild.buildSync({
    ...common,
    entryPoints: [path.join(pageDir, 'main.ts')],
    outfile: path.join(outDir, 'agent.js'),
    format: 'iife',
    platform: 'browser',
    tsconfig: path.join(pageDir, 'tsconfig.json'),
    // main.ts imports only types from ../protocol, so zod stays out of the bundle (checked below).
  });
  esbuild.buildSync({
    ...common,
    entryPoints: [path.join(pageDir, 'agent.css')],
    outfile: path.join(outDir, 'agent.css'),
  });
} catch {
  fail('esbuild failed');
}
fs.copyFileSync(path.join(pageDir, 'index.html'), path.join(outDir, 'index.html'));

// 3. Offline guard: the page must work with the WAN down (no CDNs, fonts, remote images).
const allowed = /^https?:\/\/www\.w3\.org\//;
for (const name of ['index.html', 'agent.js', 'agent.css']) {
  const text = fs.readFileSync(path.join(outDir, name), 'utf8');
  for (const m of text.matchAll(/https?:\/\/[^\s"'`)<>]+/g)) {
    if (!allowed.test(m[0])) fail(`${name} refers to ${m[0]}: the agent page must not load anything from outside the appliance`);
  }
  if (/@import|url\(\s*["']?(?!data:)/.test(name.endsWith('.css') ? text : '')) {
    fail(`${name} imports or references an external resource`);
  }
}
if (/node_modules\//.test(fs.readFileSync(path.join(outDir, 'agent.js'), 'utf8'))) {
  fail('agent.js bundles a package (zod?): the page may import only types from ../protocol');
}

const sizes = ['index.html', 'agent.js', 'agent.css']
  .map((n) => `${n} ${(fs.statSync(path.join(outDir, n)).size / 1024).toFixed(1)} KiB`)
  .join(', ');
console.log(`agent page: dist/agent-ui/ (${sizes})`);
