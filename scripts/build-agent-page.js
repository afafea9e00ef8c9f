#!/usr/bin/env node
'use strict';
/**
 * Builds the browser pages into dist/:
 * - the agent softphone (gateway/agent-ui/page) into dist/agent-ui/: index.html, agent.js,
 *   agent.css, served at /agent, /agent/agent.js and /agent/agent.css;
 * - the wallboard (gateway/wallboard/page) into dist/wallboard/: index.html, wallboard.js,
 *   wallboard.css, served at /wallboard, /wallboard/wallboard.js and /wallboard/wallboard.css;
 * - the supervisor page (gateway/supervisor-ui/page) into dist/supervisor-ui/: index.html,
 *   supervisor.js, supervisor.css, served at /supervisor and /supervisor/*.
 * Steps for each: type-check the page (its own tsconfig: DOM, strict, noEmit), bundle with
 * esbuild, copy the HTML, and refuse output that would load anything from the network.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');

function fail(msg) {
  console.error(`build-agent-page: ${msg}`);
  process.exit(1);
}

/**
 * @param {{ title: string, pageDir: string, outDir: string, entry: string, js: string, css: string, cssOut: string }} page
 */
function buildPage(page) {
  const pageDir = path.join(root, page.pageDir);
  const outDir = path.join(root, page.outDir);

  // 1. Type-check (esbuild only strips types).
  const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  const check = spawnSync(process.execPath, [tsc, '-p', path.join(pageDir, 'tsconfig.json')], {
    cwd: root,
    stdio: 'inherit',
  });
  if (check.status !== 0) fail(`type errors in ${page.pageDir}`);

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
      entryPoints: [path.join(pageDir, page.entry)],
      outfile: path.join(outDir, page.js),
      format: 'iife',
      platform: 'browser',
      tsconfig: path.join(pageDir, 'tsconfig.json'),
      // The page imports only types from the protocol modules, so zod stays out of the bundle (checked below).
    });
    esbuild.buildSync({
      ...common,
      entryPoints: [path.join(pageDir, page.css)],
      outfile: path.join(outDir, page.cssOut),
    });
  } catch {
    fail(`esbuild failed for ${page.pageDir}`);
  }
  fs.copyFileSync(path.join(pageDir, 'index.html'), path.join(outDir, 'index.html'));

  // 3. Offline guard: the page must work with the WAN down (no CDNs, fonts, remote images).
  const files = ['index.html', page.js, page.cssOut];
  const allowed = /^https?:\/\/www\.w3\.org\//;
  for (const name of files) {
    const text = fs.readFileSync(path.join(outDir, name), 'utf8');
    for (const m of text.matchAll(/https?:\/\/[^\s"'`)<>]+/g)) {
      if (!allowed.test(m[0])) fail(`${name} refers to ${m[0]}: the ${page.title} must not load anything from outside the appliance`);
    }
    if (/@import|url\(\s*["']?(?!data:)/.test(name.endsWith('.css') ? text : '')) {
      fail(`${name} imports or references an external resource`);
    }
  }
  if (/node_modules\//.test(fs.readFileSync(path.join(outDir, page.js), 'utf8'))) {
    fail(`${page.js} bundles a package (zod?): the ${page.title} may import only types from the protocol modules`);
  }

  const sizes = files.map((n) => `${n} ${(fs.statSync(path.join(outDir, n)).size / 1024).toFixed(1)} KiB`).join(', ');
  console.log(`${page.title}: ${page.outDir}/ (${sizes})`);
}

buildPage({
  title: 'agent page',
  pageDir: 'gateway/agent-ui/page',
  outDir: 'dist/agent-ui',
  entry: 'main.ts',
  js: 'agent.js',
  css: 'agent.css',
  cssOut: 'agent.css',
});
buildPage({
  title: 'wallboard page',
  pageDir: 'gateway/wallboard/page',
  outDir: 'dist/wallboard',
  entry: 'main.ts',
  js: 'wallboard.js',
  css: 'wallboard.css',
  cssOut: 'wallboard.css',
});
buildPage({
  title: 'supervisor page',
  pageDir: 'gateway/supervisor-ui/page',
  outDir: 'dist/supervisor-ui',
  entry: 'main.ts',
  js: 'supervisor.js',
  css: 'supervisor.css',
  cssOut: 'supervisor.css',
});
