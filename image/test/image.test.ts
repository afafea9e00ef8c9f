import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildImage, type ImageResult } from '../build-image';
import { cleanEnv, ensureBinary, run, scratchDir } from './helpers';

describe('image: rootfs overlay, systemd units, first boot', function () {
  this.timeout(120_000);
  let dir: string;
  let root: string;
  let img: ImageResult;

  before(async () => {
    const b = await ensureBinary();
    dir = scratchDir('img');
    const keys = path.join(dir, 'signing');
    const r = await run(b.file, ['update', 'keygen', '--out', keys, '--name', 'release-2026'], { cwd: dir, env: cleanEnv({ CCEDGE_DATA_DIR: path.join(dir, 'data') }) });
    assert.equal(r.code, 0, r.stderr);
    rmSync(path.join(keys, 'release-2026.key'));
    img = buildImage({ binary: b.file, out: path.join(dir, 'out'), keys, log: () => undefined });
    root = path.join(dir, 'root');
    mkdirSync(root);
    // GNU tar extracts it like any overlay.
    execFileSync('tar', ['-C', root, '-xpf', img.tarball]);
  });

  it('holds the binary in slot a, the links, the units, the update keys and settings', () => {
    assert.equal(readlinkSync(path.join(root, 'opt/ccedge/current')), 'slots/a');
    assert.equal(readlinkSync(path.join(root, 'opt/ccedge/committed')), 'slots/a');
    assert.equal(readlinkSync(path.join(root, 'usr/local/bin/ccedge')), '/opt/ccedge/current/ccedge');
    for (const f of [
      'etc/systemd/system/ccedge.service',
      'etc/systemd/system/ccedge-firstboot.service',
      'etc/systemd/system/multi-user.target.wants/ccedge.service',
      'etc/ccedge/update-keys.d/release-2026.pub',
      'usr/lib/sysusers.d/ccedge.conf',
      'usr/lib/tmpfiles.d/ccedge.conf',
      'etc/logrotate.d/ccedge',
      'etc/systemd/journald.conf.d/ccedge.conf',
      'usr/local/lib/ccedge/firstboot.sh',
    ])
      assert.ok(existsSync(path.join(root, f)), f);
    const unit = readFileSync(path.join(root, 'etc/systemd/system/ccedge.service'), 'utf8');
    for (const line of [
      'User=ccedge',
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
      'ProtectSystem=strict',
      'ReadWritePaths=/var/lib/ccedge /opt/ccedge',
      'Restart=on-failure',
      'WatchdogSec=30s',
      'Type=notify',
      'NotifyAccess=all',
      'ExecStartPre=/opt/ccedge/committed/ccedge update boot',
      'ExecStart=/opt/ccedge/current/ccedge run --config /etc/ccedge/ccedge.yaml',
      'RestartForceExitStatus=75',
    ])
      assert.ok(unit.includes(`\n${line}\n`), line);
    const settings = JSON.parse(readFileSync(path.join(root, 'etc/ccedge/update.json'), 'utf8')) as { compatible: string; root: string };
    assert.equal(settings.root, '/opt/ccedge');
    const manifest = JSON.parse(readFileSync(path.join(dir, 'out', 'image-manifest.json'), 'utf8')) as { trustedKeys: string[]; sha256: string };
    assert.deepEqual(manifest.trustedKeys, ['release-2026.pub']);
    assert.equal(spawnSync('sha256sum', ['-c', `${path.basename(img.tarball)}.sha256`], { cwd: path.dirname(img.tarball) }).status, 0);
    assert.equal(spawnSync('sh', ['-n', path.join(root, 'usr/local/lib/ccedge/firstboot.sh')]).status, 0, 'firstboot.sh parses');
  });

  it('the binary of the image runs from its slot: version, slot status, example config valid', async () => {
    const bin = path.join(root, 'opt/ccedge/current/ccedge');
    const env = cleanEnv({ CCEDGE_DATA_DIR: path.join(dir, 'data'), CCEDGE_UPDATE_CONF: path.join(root, 'etc/ccedge/update.json'), CCEDGE_UPDATE_ROOT: path.join(root, 'opt/ccedge') });
    const v = await run(bin, ['--version'], { cwd: dir, env });
    assert.match(v.stdout, new RegExp(`^ccedge ${img.version.replace(/\./g, '\\.')}\\n`));
    const s = await run(bin, ['update', 'status', '--json'], { cwd: dir, env });
    assert.equal(s.code, 0, s.stderr);
    const status = JSON.parse(s.stdout) as { current: string; committed: string; slots: { a: { version: string }; b: { version: string } } };
    assert.deepEqual([status.current, status.committed, status.slots.a.version, status.slots.b.version], ['a', 'a', img.version, '(empty)']);
    const c = await run(bin, ['config', 'validate', path.join(root, 'etc/ccedge/ccedge.yaml.example')], { cwd: dir, env });
    assert.equal(c.code, 0, c.stderr);
  });

  it('its systemd units pass systemd-analyze verify (paths checked inside the image root)', function () {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      this.skip(); // systemd-analyze is not installed here: the unit check needs it (apt-get install systemd).
    }
    // The image's root has no systemd of its own in it: borrow this host's unit library.
    mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
    cpSync('/usr/lib/systemd/system', path.join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    const units = ['etc/systemd/system/ccedge.service', 'etc/systemd/system/ccedge-firstboot.service'].map((u) => path.join(root, u));
    const ok = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...units], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stderr.trim(), '', ok.stderr);
    // Control: the check does look inside the root (a missing binary fails it).
    rmSync(path.join(root, 'opt/ccedge/slots/a/ccedge'));
    const bad = spawnSync('systemd-analyze', ['verify', `--root=${root}`, units[0]], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /\/opt\/ccedge\/current\/ccedge is not executable/);
  });
});
