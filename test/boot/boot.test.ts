/**
 * The image booted for real (`npm run test:boot`): a Debian bookworm root from Debian packages
 * (mmdebstrap, cached), the image overlay of image/build-image.ts on top (binary in slot a, the
 * systemd units, sysusers/tmpfiles, update keys) and a provisioning file where the first-boot
 * script looks for one, run by `systemd-nspawn -b` with systemd as PID 1 in a network namespace
 * reachable from this host only. Everything is checked from the host as an installer or the PBX
 * would see it: the unit states systemd reports, SIP OPTIONS over the network, the agent page over
 * HTTPS trusting the site CA downloaded from the box, and the A/B slots after an update and a reboot.
 *
 * Needs root, systemd-container and mmdebstrap (.ci/run installs them). Not part of `npm test`:
 * cold (no cached Debian root) it takes ~6 minutes, warm ~3 (see the README).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { buildImage } from '../../image/build-image';
import { binaryWithVersion, cleanEnv, ensureBinary, nextVersions, run } from '../../image/test/helpers';
import { eventually } from '../e2e/harness';
import { optionsMessage, udpExchange } from '../e2e/sip-probe';
import { BootContainer, NSPAWN_REBOOT, type Ran } from './container';
import { debianBase } from './debian-base';

const SITE = 'store-boot';
const DEVICE = 'edge-boot-01';
/** How long the new version must stay healthy before it commits itself (the image's 60 s, shortened). */
const HEALTH_WINDOW_S = 10;

function tar(args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('tar', args, { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }, (err, _o, stderr) => (err ? reject(new Error(`tar ${args.join(' ')}: ${String(stderr)}`)) : resolve())),
  );
}

function curl(args: string[]): Promise<Ran> {
  return new Promise((resolve) =>
    execFile('curl', ['-sS', '--max-time', '10', ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    ),
  );
}

function log(line: string): void {
  process.stdout.write(`      ${line}\n`);
}

describe('boot: the image under a real systemd (systemd-nspawn -b)', function () {
  this.timeout(600_000);
  const v = nextVersions();
  const t0 = Date.now();
  let work: string;
  let box: BootContainer;
  let bundle: string;
  let firstBootMs = 0;

  /** The ccedge CLI inside the box, as root, with the unit's data dir. */
  const ccedge = (args: string[], timeoutMs = 60_000): Promise<Ran> => box.exec(['env', 'CCEDGE_DATA_DIR=/var/lib/ccedge', '/usr/local/bin/ccedge', ...args], timeoutMs);
  const journal = async (unit: string): Promise<string> => (await box.exec(['journalctl', '-u', unit, '-b', '--no-pager', '-o', 'short-monotonic'])).stdout;
  const diagnose = async (): Promise<string> =>
    `--- journal of ccedge.service\n${(await journal('ccedge.service')).slice(-6000)}\n--- failed units\n${(await box.exec(['systemctl', '--failed', '--no-pager'])).stdout}`;
  const status = async (): Promise<{ current: string; committed: string; slots: Record<string, { version: string }>; trial?: unknown; last?: { outcome: string; version: string } }> => {
    const r = await ccedge(['update', 'status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { current: string; committed: string; slots: Record<string, { version: string }>; last?: { outcome: string; version: string } };
  };
  const options = async (): Promise<string[]> =>
    udpExchange(5060, optionsMessage({ host: box.boxAddress, port: 5060 }, { ip: box.hostAddress, port: 0 }, `boot-${Date.now()}@${box.hostAddress}`), {
      fromIp: box.hostAddress,
      host: box.boxAddress,
      waitMs: 1500,
    });
  /** The daemon is up as systemd sees it: active (Type=notify: READY=1 received), running. */
  const active = async (): Promise<Record<string, string> | undefined> => {
    const u = await box.unit('ccedge.service', ['ActiveState', 'SubState', 'Type', 'MainPID', 'NRestarts', 'WatchdogUSec']);
    return u.ActiveState === 'active' && u.SubState === 'running' && u.MainPID !== '0' ? u : undefined;
  };
  const running = (): Promise<Record<string, string>> => eventually(active, 10_000, 500);

  before(async function () {
    if (process.getuid?.() !== 0) throw new Error('the boot test needs root (network namespaces, systemd-nspawn)');
    // The binary of this tree and the same code calling itself the next version (the update).
    const [b, next] = await Promise.all([ensureBinary(), binaryWithVersion(v.next)]);
    const base = await debianBase({ log });
    log(`Debian base ${base.cached ? 'from the cache' : `built in ${(base.ms / 1000).toFixed(0)} s`}: ${base.tarball}`);

    work = realpathSync(mkdtempSync('/var/tmp/ccedge-boot-'));
    const env = cleanEnv({ CCEDGE_DATA_DIR: path.join(work, 'host-data'), CCEDGE_UPDATE_CONF: '/nonexistent' });
    const keys = path.join(work, 'signing');
    const k = await run(b.file, ['update', 'keygen', '--out', keys, '--name', 'release'], { cwd: work, env });
    assert.equal(k.code, 0, k.stderr);
    bundle = path.join(work, `ccedge-${v.next}.bundle`);
    const bb = await run(b.file, ['update', 'build', '--key', path.join(keys, 'release.key'), '--version', v.next, '--payload', `ccedge=${next.file}`, '--out', bundle], { cwd: work, env });
    assert.equal(bb.code, 0, bb.stderr);
    rmSync(path.join(keys, 'release.key'));
    const img = buildImage({ binary: b.file, out: path.join(work, 'image'), keys, log: () => undefined });

    const root = path.join(work, 'root');
    mkdirSync(root);
    await tar(['-C', root, '--numeric-owner', '-xpf', base.tarball]);
    await tar(['-C', root, '--numeric-owner', '-xpf', img.tarball]);
    // The box's settings file, with a shorter health window (the only change to the image).
    const settingsFile = path.join(root, 'etc/ccedge/update.json');
    writeFileSync(settingsFile, JSON.stringify({ ...JSON.parse(readFileSync(settingsFile, 'utf8')), healthWindowS: HEALTH_WINDOW_S }, null, 2));
    box = new BootContainer(root);
    // The provisioning file an installer puts on the boot partition; the PBX is this host.
    writeFileSync(
      path.join(root, 'boot/ccedge-provision.yaml'),
      `siteId: ${SITE}\ndeviceId: ${DEVICE}\ntrunkPeers: [${box.hostAddress}]\nbrokerUrl: offline\nclaimCode: BOOT-2345-WXYZ\n`,
    );
    assert.ok(!existsSync(path.join(root, 'etc/ccedge/ccedge.yaml')), 'the image ships unprovisioned');
    await box.createNetwork();
    log(`prepared in ${((Date.now() - t0) / 1000).toFixed(0)} s; booting ${box.machine} at ${box.boxAddress}`);
    const b0 = Date.now();
    const state = await box.boot();
    await eventually(active, 90_000, 500).catch(async (e: Error) => {
      throw new Error(`${e.message}: system ${state}\n${await diagnose()}\n${box.consoleOutput().slice(-2000)}`);
    });
    firstBootMs = Date.now() - b0;
    log(`first boot to ccedge.service active: ${(firstBootMs / 1000).toFixed(1)} s (system ${state})`);
  });

  after(async function () {
    this.timeout(120_000);
    if (this.currentTest?.state === 'failed' && box?.leader) process.stdout.write(await diagnose());
    await box?.destroy();
    if (work && !process.env.CCEDGE_KEEP_TEST_DIRS) rmSync(work, { recursive: true, force: true });
    log(`boot test total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });

  it('provisioned itself at first boot from the provisioning file', async () => {
    const fb = await box.unit('ccedge-firstboot.service', ['Result', 'ExecMainStatus', 'ConditionResult']);
    assert.deepEqual([fb.ConditionResult, fb.Result, fb.ExecMainStatus], ['yes', 'success', '0'], await journal('ccedge-firstboot.service'));
    const transcript = readFileSync(path.join(box.root, 'var/log/ccedge/firstboot.log'), 'utf8');
    assert.match(transcript, /provisioning from \/boot\/ccedge-provision\.yaml/);
    assert.match(transcript, new RegExp(`provisioned ${SITE}/${DEVICE}`));
    const config = readFileSync(path.join(box.root, 'etc/ccedge/ccedge.yaml'), 'utf8');
    assert.match(config, new RegExp(`id: ${SITE}`));
    assert.match(config, new RegExp(`- ${box.hostAddress.replace(/\./g, '\\.')}`));
    const csr = await box.exec(['openssl', 'req', '-in', '/var/lib/ccedge/keys/device.csr', '-noout', '-subject']);
    assert.match(csr.stdout, new RegExp(`CN ?= ?${DEVICE}`));
    // The binary's runtime (addons, pages) went to the data dir, nothing to the first-boot cwd.
    assert.ok(existsSync(path.join(box.root, 'var/lib/ccedge/runtime')));
    assert.ok(!existsSync(path.join(box.root, 'var/runtime')), 'provisioning wrote /var/runtime');
    // Root wrote the config; the daemon's group may read it, nobody else.
    assert.equal((await box.exec(['stat', '-c', '%U:%G %a', '/etc/ccedge/ccedge.yaml'])).stdout.trim(), 'root:ccedge 640');
    // The daemon's user owns its data (it runs as ccedge, not root).
    const owner = await box.exec(['stat', '-c', '%U', '/var/lib/ccedge/ccedge.db', '/var/lib/ccedge/keys/device.key']);
    assert.deepEqual(owner.stdout.trim().split('\n'), ['ccedge', 'ccedge']);
  });

  it('runs ccedge.service as Type=notify with a watchdog, as the ccedge user, from slot a', async () => {
    const u = await running();
    assert.equal(u.Type, 'notify');
    assert.equal(u.WatchdogUSec, '30s');
    // The owner of /proc/PID is the process's user (minbase has no procps).
    assert.equal((await box.exec(['stat', '-c', '%U', `/proc/${u.MainPID}`])).stdout.trim(), 'ccedge');
    const exe = await box.exec(['readlink', `/proc/${u.MainPID}/exe`]);
    assert.equal(exe.stdout.trim(), '/opt/ccedge/slots/a/ccedge');
    const j = await journal('ccedge.service');
    assert.match(j, /Started ccedge\.service/);
  });

  it('answers SIP OPTIONS from the PBX address over the network', async () => {
    const lines = await eventually(async () => {
      const l = await options();
      return l.length > 0 ? l : undefined;
    }, 20_000);
    assert.match(lines[0], /^SIP\/2\.0 200 /);
  });

  it('serves the agent page over HTTPS to a PC that trusts the site CA from /ca.crt', async () => {
    const ca = path.join(work, 'site-ca.crt');
    const got = await curl(['-f', '-o', ca, `http://${box.boxAddress}:8080/ca.crt`]);
    assert.equal(got.code, 0, got.stderr);
    assert.match(new X509Certificate(readFileSync(ca)).subject, new RegExp(SITE));
    const untrusted = await curl(['-o', '/dev/null', `https://${box.boxAddress}:8443/agent`]);
    assert.equal(untrusted.code, 60, `without the site CA the certificate is refused: ${untrusted.stderr}`);
    const page = await curl(['-f', '--cacert', ca, `https://${box.boxAddress}:8443/agent`]);
    assert.equal(page.code, 0, page.stderr);
    assert.match(page.stdout.toLowerCase(), /<html/);
  });

  it('restarts the daemon when it is frozen (SIGSTOP): the systemd watchdog', async () => {
    const before = await running();
    const k = await box.exec(['sh', '-c', `kill -STOP ${before.MainPID}`]);
    assert.equal(k.code, 0, k.stderr);
    const t = Date.now();
    const after = await eventually(async () => {
      const u = await active().catch(() => undefined);
      return u && u.MainPID !== before.MainPID ? u : undefined;
    }, 150_000, 1000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await diagnose()}`);
    });
    assert.ok(Number(after.NRestarts) > Number(before.NRestarts), `NRestarts ${before.NRestarts} -> ${after.NRestarts}`);
    assert.match(await journal('ccedge.service'), /ccedge\.service: Watchdog timeout/);
    log(`frozen to restarted and ready: ${((Date.now() - t) / 1000).toFixed(0)} s (WatchdogSec=30s)`);
    assert.match((await eventually(async () => ((await options()).length ? options() : undefined), 20_000))[0] ?? '', /^SIP\/2\.0 200 /);
  });

  it(`applies a signed A/B update (${v.current} -> ${v.next}) that commits itself after its health window`, async () => {
    copyFileSync(bundle, path.join(box.root, 'root/update.bundle'));
    const r = await ccedge(['update', 'apply', '/root/update.bundle', '--config', '/etc/ccedge/ccedge.yaml']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`${v.next.replace(/\./g, '\\.')} is in slot b on trial`));
    assert.match(r.stdout, /restarting ccedge\.service/);
    const t = Date.now();
    const s = await eventually(async () => {
      const x = await status().catch(() => undefined);
      return x?.last?.outcome === 'committed' && x.last.version === v.next ? x : undefined;
    }, 180_000, 2000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${JSON.stringify(await status().catch(() => undefined))}\n${await diagnose()}`);
    });
    log(`apply to committed: ${((Date.now() - t) / 1000).toFixed(0)} s (health window ${HEALTH_WINDOW_S} s)`);
    assert.deepEqual([s.current, s.committed, s.slots.a.version, s.slots.b.version], ['b', 'b', v.current, v.next]);
    const u = await running();
    assert.equal((await box.exec(['readlink', `/proc/${u.MainPID}/exe`])).stdout.trim(), '/opt/ccedge/slots/b/ccedge');
    assert.match(await journal('ccedge.service'), /update committed: health window passed/);
  });

  it('reboots (systemctl reboot) into the new slot and is healthy again', async () => {
    await box.exec(['systemctl', 'reboot']);
    assert.equal(await box.waitExit(120_000), NSPAWN_REBOOT, 'nspawn reports a reboot');
    // nspawn does not restart a rebooted container by itself (systemd-nspawn@.service would): the test does.
    const b0 = Date.now();
    await box.boot();
    const u = await eventually(active, 90_000, 500).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await diagnose()}`);
    });
    log(`reboot to ccedge.service active: ${((Date.now() - b0) / 1000).toFixed(1)} s`);
    assert.equal(u.Type, 'notify');
    assert.equal((await box.exec(['readlink', `/proc/${u.MainPID}/exe`])).stdout.trim(), '/opt/ccedge/slots/b/ccedge');
    // First boot does not run twice: the box is provisioned.
    const fb = await box.unit('ccedge-firstboot.service', ['ConditionResult']);
    assert.equal(fb.ConditionResult, 'no');
    const s = await status();
    assert.deepEqual([s.current, s.committed, s.trial], ['b', 'b', undefined]);
    const lines = await eventually(async () => {
      const l = await options();
      return l.length > 0 ? l : undefined;
    }, 20_000);
    assert.match(lines[0], /^SIP\/2\.0 200 /);
    const health = await curl(['-f', '--cacert', path.join(work, 'site-ca.crt'), `https://${box.boxAddress}:8443/healthz`]);
    assert.equal(health.code, 0, health.stderr);
    assert.equal((JSON.parse(health.stdout) as { version: string }).version, v.next);
  });
});
