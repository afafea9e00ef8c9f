import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../build-binary';
import { assertSippOk, cleanEnv, copyBinary, ensureBinary, eventually, freePort, run, runSipp, scratchDir, sipOptions, spawnDaemon, type BinDaemon } from './helpers';

describe('image: single binary (Node SEA)', function () {
  this.timeout(180_000);
  let bin: string;
  let dir: string;
  let buildMs = 0;
  let bytes = 0;

  before(async () => {
    const b = await ensureBinary();
    buildMs = b.ms;
    bytes = b.bytes;
    dir = scratchDir('bin');
    bin = copyBinary(b.file, dir);
    // Nothing of the repository is reachable from the scratch dir.
    for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) assert.ok(!existsSync(path.join(d, 'node_modules')), `node_modules above ${dir}`);
    assert.ok(!dir.startsWith(ROOT));
  });

  it('prints version, git commit and Node version', async () => {
    const r = await run(bin, ['--version'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const pkg = JSON.parse(execFileSync('cat', [path.join(ROOT, 'package.json')]).toString()) as { version: string };
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT }).toString().trim();
    assert.match(r.stdout, new RegExp(`^ccedge ${pkg.version.replace(/\./g, '\\.')}\\n`));
    assert.match(r.stdout, /^commit [0-9a-f]{40}(-dirty)?$/m);
    assert.ok(r.stdout.includes(head) || /-dirty/.test(r.stdout) || process.env.CCEDGE_BUILD_COMMIT, `commit of HEAD ${head} in ${r.stdout}`);
    assert.match(r.stdout, new RegExp(`^node ${process.version.replace(/\./g, '\\.')} \\(linux-x64, single binary\\)$`, 'm'));
    assert.equal(r.stderr, '', 'no SEA warning on stderr');
    // --version writes nothing to disk.
    assert.deepEqual(readdirSync(dir), ['ccedge']);
    process.stdout.write(`      binary ${(bytes / 1e6).toFixed(1)} MB, built in ${(buildMs / 1000).toFixed(1)} s (0 s when fresh)\n`);
  });

  describe('the daemon from the binary in a scratch root', () => {
    let daemon: BinDaemon;
    let sipPort: number;
    let httpPort: number;
    let startMs: number;

    before(async () => {
      sipPort = await freePort();
      httpPort = await freePort();
      const env = cleanEnv({
        CCEDGE_DATA_DIR: path.join(dir, 'data'),
        CCEDGE_SIP_HOST: '127.0.0.1',
        CCEDGE_SIP_PORT: String(sipPort),
        CCEDGE_HTTP_HOST: '127.0.0.1',
        CCEDGE_HTTP_PORT: String(httpPort),
        CCEDGE_RTP_PORTS: '31000-31999',
        CCEDGE_ADMIN_TOKEN: 'image-test-admin-token-0123',
      });
      const t0 = Date.now();
      daemon = spawnDaemon(bin, ['run'], { cwd: dir, env });
      const first = await sipOptions(sipPort, 20_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${daemon.out().slice(-3000)}`);
      });
      startMs = Date.now() - t0;
      assert.match(first, /^SIP\/2\.0 200/);
      process.stdout.write(`      start of the binary to first OPTIONS answered: ${startMs} ms\n`);
    });

    after(async () => {
      const code = await daemon?.stop();
      assert.equal(code, 0, daemon.out().slice(-2000));
    });

    it('answers SIP OPTIONS from sipp', async () => {
      const r = await runSipp({ scenario: 'uac_options.xml', target: `127.0.0.1:${sipPort}`, calls: 3 });
      assertSippOk(r);
    });

    it('serves the agent page and the wallboard from inside the binary, and extracted its addons under the data dir', async () => {
      for (const [p, marker] of [
        ['/agent', '<html'],
        ['/agent/agent.js', ''],
        ['/wallboard', '<html'],
      ] as const) {
        const res = await fetch(`http://127.0.0.1:${httpPort}${p}`);
        assert.equal(res.status, 200, p);
        assert.ok((await res.text()).toLowerCase().includes(marker), p);
      }
      const health = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as { version: string };
      assert.ok(health.version);
      const runtime = readdirSync(path.join(dir, 'data', 'runtime'));
      assert.equal(runtime.length, 1);
      assert.deepEqual(readdirSync(path.join(dir, 'data', 'runtime', runtime[0], 'native')).sort(), ['node_sqlite3.node', 'serialport-bindings-cpp.node']);
      assert.ok(existsSync(path.join(dir, 'data', 'ccedge.db')));
      assert.doesNotMatch(daemon.out(), /Warning|only supports loading built-in modules/);
    });
  });

  it("runs hw's health sampler worker thread from the binary (its script is extracted with the pages)", async () => {
    const sipPort = await freePort();
    const httpPort = await freePort();
    const cfg = path.join(dir, 'worker.yaml');
    writeFileSync(cfg, `trunks:\n  - name: pbx\n    allow: [127.0.0.1]\nhw:\n  health:\n    source: systeminformation\n    intervalS: 1\n`);
    const env = cleanEnv({
      CCEDGE_DATA_DIR: path.join(dir, 'data-worker'),
      CCEDGE_SIP_HOST: '127.0.0.1',
      CCEDGE_SIP_PORT: String(sipPort),
      CCEDGE_HTTP_HOST: '127.0.0.1',
      CCEDGE_HTTP_PORT: String(httpPort),
      CCEDGE_RTP_PORTS: '31000-31999',
      CCEDGE_ADMIN_TOKEN: 'image-test-admin-token-0123',
    });
    const d = spawnDaemon(bin, ['run', '--config', cfg], { cwd: dir, env });
    try {
      const h = await eventually(async () => {
        const r = await fetch(`http://127.0.0.1:${httpPort}/api/v1/health`, { headers: { authorization: 'Bearer image-test-admin-token-0123' } }).catch(() => undefined);
        const body = r?.ok ? ((await r.json()) as { health: { sample?: { mode: string; seq: number } } | null }) : undefined;
        return body?.health?.sample && body.health.sample.seq >= 1 ? body.health.sample : undefined;
      }, 30_000);
      assert.equal(h.mode, 'si-worker');
    } finally {
      assert.equal(await d.stop(), 0, d.out().slice(-2000));
    }
    assert.doesNotMatch(d.out(), /health worker script missing|health sampler worker failed/);
  });
});
