import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { cleanEnv, copyBinary, ensureBinary, freePort, run, scratchDir, sipOptions, spawnDaemon } from './helpers';

describe('image: first-boot provisioning (ccedge provision)', function () {
  this.timeout(120_000);
  let dir: string;
  let bin: string;
  let env: Record<string, string>;
  const configDir = (): string => path.join(dir, 'etc');
  const dataDir = (): string => path.join(dir, 'var-lib');

  before(async () => {
    dir = scratchDir('prov');
    bin = copyBinary((await ensureBinary()).file, dir);
    env = cleanEnv({ CCEDGE_CONFIG_DIR: path.join(dir, 'etc'), CCEDGE_DATA_DIR: path.join(dir, 'var-lib') });
    writeFileSync(
      path.join(dir, 'usb-provision.yaml'),
      YAML.stringify({ siteId: 'store-042', deviceId: 'edge-01', trunkPeers: ['127.0.0.1', '10.20.0.0/24'], brokerUrl: 'offline', claimCode: 'ABCD-2345-WXYZ' }),
    );
  });

  it('provisions from a file: a config the daemon loads, a device key and a CSR that openssl verifies', async () => {
    const r = await run(bin, ['provision', '--from', path.join(dir, 'usb-provision.yaml')], { cwd: dir, env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^provisioned store-042\/edge-01/);
    const file = path.join(configDir(), 'ccedge.yaml');
    const cfg = YAML.parse(readFileSync(file, 'utf8')) as { site: { id: string; deviceId: string }; trunks: Array<{ allow: string[] }>; dataDir: string };
    assert.deepEqual(cfg.site, { id: 'store-042', deviceId: 'edge-01' });
    assert.deepEqual(cfg.trunks[0].allow, ['127.0.0.1', '10.20.0.0/24']);
    assert.equal(cfg.dataDir, dataDir());
    const valid = await run(bin, ['config', 'validate', file], { cwd: dir, env });
    assert.equal(valid.code, 0, valid.stderr);
    const keys = path.join(dataDir(), 'keys');
    assert.equal(statSync(path.join(keys, 'device.key')).mode & 0o777, 0o600);
    const subject = execFileSync('openssl', ['req', '-in', path.join(keys, 'device.csr'), '-noout', '-verify', '-subject'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    assert.match(subject, /O\s*=\s*store-042, CN\s*=\s*edge-01/);
    // The CSR's public key is the device key's.
    const fromCsr = execFileSync('openssl', ['req', '-in', path.join(keys, 'device.csr'), '-noout', '-pubkey']).toString();
    const fromKey = execFileSync('openssl', ['pkey', '-in', path.join(keys, 'device.key'), '-pubout']).toString();
    assert.equal(fromCsr, fromKey);
    const claim = JSON.parse(readFileSync(path.join(keys, 'claim.json'), 'utf8')) as { claimCode: string };
    assert.equal(claim.claimCode, 'ABCD-2345-WXYZ');
  });

  it('the provisioned config runs the daemon from the binary', async () => {
    const sipPort = await freePort();
    const d = spawnDaemon(bin, ['run', '--config', path.join(configDir(), 'ccedge.yaml')], {
      cwd: dir,
      env: { ...env, CCEDGE_SIP_HOST: '127.0.0.1', CCEDGE_SIP_PORT: String(sipPort), CCEDGE_HTTP_HOST: '127.0.0.1', CCEDGE_HTTP_PORT: String(await freePort()), CCEDGE_RTP_PORTS: '33000-33999' },
    });
    try {
      assert.match(await sipOptions(sipPort, 20_000), /^SIP\/2\.0 200/);
    } finally {
      assert.equal(await d.stop(), 0, d.out().slice(-2000));
    }
    assert.match(d.out(), /"site":"store-042","device":"edge-01"/);
  });

  it('refuses to run twice, and provisions again with --force keeping the old key', async () => {
    const before = readFileSync(path.join(dataDir(), 'keys', 'device.key'), 'utf8');
    const again = await run(bin, ['provision', '--from', path.join(dir, 'usb-provision.yaml')], { cwd: dir, env });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^ccedge: PROVISION_ALREADY_DONE: this device is already provisioned .*--force/);
    const forced = await run(bin, ['provision', '--from', path.join(dir, 'usb-provision.yaml'), '--force'], { cwd: dir, env });
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(readFileSync(path.join(dataDir(), 'keys', 'device.key'), 'utf8'), before);
    assert.ok(readdirSync(path.join(dataDir(), 'keys')).some((f) => f.startsWith('device.key.replaced-')));
  });

  it('names every problem of a bad provisioning file, and writes nothing', async () => {
    const other = scratchDir('prov-bad');
    writeFileSync(path.join(other, 'bad.yaml'), YAML.stringify({ siteId: 'store 42', deviceId: 'edge-01', trunkPeers: ['pbx.local'], brokerUrl: 'http://x', claimCode: 'abc' }));
    const r = await run(bin, ['provision', '--from', path.join(other, 'bad.yaml'), '--config-dir', path.join(other, 'etc'), '--data-dir', path.join(other, 'data')], { cwd: other, env: cleanEnv() });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^ccedge: PROVISION_INVALID: /);
    for (const field of ['siteId', 'trunkPeers', 'brokerUrl', 'claimCode']) assert.match(r.stderr, new RegExp(`\\n  ${field}: `));
    assert.doesNotMatch(r.stderr, /deviceId/);
    // Only the binary's runtime directory (its addons) was written; no config, no keys.
    assert.deepEqual(readdirSync(other).sort(), ['bad.yaml', 'data']);
    assert.deepEqual(readdirSync(path.join(other, 'data')), ['runtime']);
  });

  it('asks at a terminal and asks again after a wrong answer', async () => {
    const other = scratchDir('prov-tty');
    const answers = ['store-7', 'edge-9', 'pbx.example', '192.0.2.10', 'mqtts://broker.example.com:8883', 'wxyz-2345-abcd', ''].join('\n');
    const r = await run(bin, ['provision', '--interactive', '--config-dir', path.join(other, 'etc'), '--data-dir', path.join(other, 'data')], { cwd: other, env: cleanEnv(), input: answers });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /each trunk peer must be an IP address .*; try again\./);
    const cfg = YAML.parse(readFileSync(path.join(other, 'etc', 'ccedge.yaml'), 'utf8')) as { mqtt: { url: string }; trunks: Array<{ outbound: { host: string } }> };
    assert.equal(cfg.mqtt.url, 'mqtts://broker.example.com:8883');
    assert.equal(cfg.trunks[0].outbound.host, '192.0.2.10');
  });
});
