import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CcedgeError } from '../../errors';
import { ENV_KEYS, loadConfig } from '../../config/load';
import { compileAllowList } from '../../config/schema';

/** A complete, valid config file body (sections without defaults must be present). */
function fileConfig(overrides: Record<string, string> = {}): string {
  const parts: Record<string, string> = {
    site: 'site:\n  id: branch-7\n  deviceId: edge-01\n',
    dataDir: 'dataDir: /srv/ccedge\n',
    sip: 'sip:\n  host: 127.0.0.1\n  port: 5070\n  tcp: false\n',
    rtp: 'rtp:\n  ports: 30000-30999\n',
    http: 'http:\n  port: 9090\n',
    calls: 'calls:\n  holdTone: ringback\n',
    trunks: 'trunks:\n  - name: pbx-a\n    allow: [10.1.0.0/16, 192.0.2.5]\n    maxCalls: 30\n  - name: pbx-b\n    allow: ["2001:db8::/32"]\n',
    ...overrides,
  };
  return Object.values(parts).join('');
}

function expectConfigError(fn: () => unknown, code: 'CONFIG_INVALID' | 'CONFIG_UNREADABLE', ...mentions: Array<string | RegExp>): CcedgeError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CcedgeError, `expected a CcedgeError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const m of mentions) {
    if (typeof m === 'string') assert.ok(caught.message.includes(m), `message should name ${m}: ${caught.message}`);
    else assert.match(caught.message, m);
  }
  return caught;
}

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ccedge-config-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function write(name: string, text: string): string {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  }

  describe('embedded demo config', () => {
    it('is used when there is no file: one trunk pbx for 127.0.0.1/32 and the documented defaults', () => {
      const { config, source } = loadConfig({ env: {}, cwd: dir });
      assert.match(source, /embedded/);
      assert.equal(config.trunks.length, 1);
      assert.equal(config.trunks[0].name, 'pbx');
      assert.deepEqual(config.trunks[0].allow, ['127.0.0.1/32']);
      assert.equal(config.sip.port, 5060);
      assert.equal(config.sip.host, '0.0.0.0');
      assert.equal(config.http.port, 8080);
      assert.equal(config.http.host, '0.0.0.0');
      assert.equal(config.rtp.ports, '20000-29999');
      assert.equal(config.site.id, 'site-1');
      assert.ok(config.site.deviceId.length > 0, 'device id defaults to the host name');
      assert.equal(config.log.level, 'info');
      assert.equal(config.demo.password, 'demo');
      assert.equal(config.mqtt.url, undefined);
      assert.equal(config.dataDir, path.join(dir, 'var'));
    });

    it('is not shared between loads (a caller mutating one config does not change the next)', () => {
      const a = loadConfig({ env: {}, cwd: dir }).config;
      a.trunks[0].allow.push('10.0.0.0/8');
      a.sip.port = 1;
      const b = loadConfig({ env: {}, cwd: dir }).config;
      assert.deepEqual(b.trunks[0].allow, ['127.0.0.1/32']);
      assert.equal(b.sip.port, 5060);
    });

    it('ignores the process environment when env is given, and empty env values', () => {
      const { config } = loadConfig({ env: { CCEDGE_SIP_PORT: '', CCEDGE_LOG_LEVEL: '' }, cwd: dir });
      assert.equal(config.sip.port, 5060);
      assert.equal(config.log.level, 'info');
    });
  });

  describe('environment overrides', () => {
    it('applies every documented variable to its key', () => {
      const { config } = loadConfig({
        cwd: dir,
        env: {
          CCEDGE_DATA_DIR: 'state',
          CCEDGE_SIP_HOST: '127.0.0.1',
          CCEDGE_SIP_PORT: '5999',
          CCEDGE_SIP_TLS_PORT: '5998',
          CCEDGE_RTP_PORTS: '40000-40999',
          CCEDGE_MEDIA_WORKERS: '3',
          CCEDGE_HTTP_HOST: '::1',
          CCEDGE_HTTP_PORT: '18080',
          CCEDGE_HTTPS_HOST: '::1',
          CCEDGE_HTTPS_PORT: '18443',
          CCEDGE_MQTT_URL: 'mqtts://broker.example:8883',
          CCEDGE_SITE_ID: 'branch-9',
          CCEDGE_DEVICE_ID: 'edge-9',
          CCEDGE_WEBRTC_INTERFACES: '192.0.2.4, 192.0.2.5',
          CCEDGE_DAHDI_DIR: '/tmp/dahdi',
          CCEDGE_LOG_LEVEL: 'debug',
          CCEDGE_ADMIN_TOKEN: 'a-very-long-admin-token-123',
          CCEDGE_DEMO_PASSWORD: 'hunter2',
        },
      });
      assert.equal(config.dataDir, path.join(dir, 'state'));
      assert.equal(config.sip.host, '127.0.0.1');
      assert.equal(config.sip.port, 5999);
      assert.equal(config.sip.tls.port, 5998);
      assert.equal(config.rtp.ports, '40000-40999');
      assert.equal(config.media.workers, 3);
      assert.equal(config.http.host, '::1');
      assert.equal(config.http.port, 18080);
      assert.equal(config.https.host, '::1');
      assert.equal(config.https.port, 18443);
      assert.equal(config.mqtt.url, 'mqtts://broker.example:8883');
      assert.equal(config.site.id, 'branch-9');
      assert.equal(config.site.deviceId, 'edge-9');
      assert.deepEqual(config.webrtc.interfaces, ['192.0.2.4', '192.0.2.5']);
      assert.equal(config.hw.dahdiDir, '/tmp/dahdi');
      assert.equal(config.log.level, 'debug');
      assert.equal(config.http.adminToken, 'a-very-long-admin-token-123');
      assert.equal(config.demo.password, 'hunter2');
      // The table of DESIGN.md plus CCEDGE_MEDIA_WORKERS (README's table) is what this test covers.
      assert.equal(ENV_KEYS.length, 18);
    });

    it('keeps an absolute CCEDGE_DATA_DIR as is', () => {
      const abs = path.join(dir, 'elsewhere');
      assert.equal(loadConfig({ cwd: '/', env: { CCEDGE_DATA_DIR: abs } }).config.dataDir, abs);
    });

    it('overrides a value from the file', () => {
      const file = write('c.yaml', fileConfig());
      const { config } = loadConfig({ file, cwd: dir, env: { CCEDGE_SIP_PORT: '6000' } });
      assert.equal(config.sip.port, 6000);
      assert.equal(config.sip.host, '127.0.0.1', 'other keys of the section stay');
    });

    it('names the variable when its value is not a whole number', () => {
      expectConfigError(() => loadConfig({ cwd: dir, env: { CCEDGE_HTTP_PORT: '80a' } }), 'CONFIG_INVALID', 'CCEDGE_HTTP_PORT');
      expectConfigError(() => loadConfig({ cwd: dir, env: { CCEDGE_SIP_PORT: '-1' } }), 'CONFIG_INVALID', 'CCEDGE_SIP_PORT');
    });

    it('names the variable and the key when the value fails the schema', () => {
      const e = expectConfigError(() => loadConfig({ cwd: dir, env: { CCEDGE_SIP_PORT: '70000' } }), 'CONFIG_INVALID', 'CCEDGE_SIP_PORT', 'sip.port');
      assert.deepEqual(e.details?.keys, ['sip.port']);
      expectConfigError(() => loadConfig({ cwd: dir, env: { CCEDGE_SIP_HOST: 'localhost' } }), 'CONFIG_INVALID', 'CCEDGE_SIP_HOST', 'sip.host');
      expectConfigError(() => loadConfig({ cwd: dir, env: { CCEDGE_MQTT_URL: 'http://broker' } }), 'CONFIG_INVALID', 'CCEDGE_MQTT_URL');
      expectConfigError(() => loadConfig({ cwd: dir, env: { CCEDGE_LOG_LEVEL: 'loud' } }), 'CONFIG_INVALID', 'CCEDGE_LOG_LEVEL');
      expectConfigError(() => loadConfig({ cwd: dir, env: { CCEDGE_ADMIN_TOKEN: 'short' } }), 'CONFIG_INVALID', 'CCEDGE_ADMIN_TOKEN');
      expectConfigError(() => loadConfig({ cwd: dir, env: { CCEDGE_RTP_PORTS: '29999-20000' } }), 'CONFIG_INVALID', 'CCEDGE_RTP_PORTS');
    });
  });

  describe('YAML file', () => {
    it('loads a complete file with its values and defaults for the rest', () => {
      const file = write('ccedge-site.yaml', fileConfig());
      const { config, source } = loadConfig({ file, cwd: dir, env: {} });
      assert.equal(source, file);
      assert.equal(config.site.id, 'branch-7');
      assert.equal(config.site.deviceId, 'edge-01');
      assert.equal(config.dataDir, '/srv/ccedge');
      assert.equal(config.sip.port, 5070);
      assert.equal(config.sip.tcp, false);
      assert.equal(config.sip.udp, true);
      assert.equal(config.sip.maxCalls, 500);
      assert.equal(config.rtp.ports, '30000-30999');
      assert.equal(config.http.port, 9090);
      assert.equal(config.calls.holdTone, 'ringback');
      assert.deepEqual(
        config.trunks.map((t) => [t.name, t.allow, t.maxCalls, t.codecs]),
        [
          ['pbx-a', ['10.1.0.0/16', '192.0.2.5'], 30, ['PCMU', 'PCMA']],
          ['pbx-b', ['2001:db8::/32'], undefined, ['PCMU', 'PCMA']],
        ],
      );
    });

    it('finds ccedge.yaml in the working directory when no file is named', () => {
      write('ccedge.yaml', fileConfig());
      const { config, source } = loadConfig({ cwd: dir, env: {} });
      assert.equal(source, path.join(dir, 'ccedge.yaml'));
      assert.equal(config.site.id, 'branch-7');
    });

    it('applies trunk auth defaults (nonceTtlS 300)', () => {
      const file = write(
        'c.yaml',
        fileConfig({ trunks: 'trunks:\n  - name: pbx\n    allow: [127.0.0.1]\n    auth: {realm: ccedge, username: pbx, password: s3cret}\n' }),
      );
      assert.equal(loadConfig({ file, cwd: dir, env: {} }).config.trunks[0].auth?.nonceTtlS, 300);
    });

    it('trunks[].transferMode: bridge by default, refer when set, anything else names the key', () => {
      const file = write('c.yaml', fileConfig({ trunks: 'trunks:\n  - name: a\n    allow: [127.0.0.1]\n  - name: b\n    allow: [10.0.0.1]\n    transferMode: refer\n' }));
      const trunks = loadConfig({ file, cwd: dir, env: {} }).config.trunks;
      assert.deepEqual(trunks.map((t) => t.transferMode), ['bridge', 'refer']);
      const bad = write('d.yaml', fileConfig({ trunks: 'trunks:\n  - name: a\n    allow: [127.0.0.1]\n    transferMode: blind\n' }));
      expectConfigError(() => loadConfig({ file: bad, cwd: dir, env: {} }), 'CONFIG_INVALID', 'trunks.0.transferMode');
    });

    it('rejects a bad sip.port and names the key', () => {
      const file = write('c.yaml', fileConfig({ sip: 'sip:\n  port: 0\n' }));
      const e = expectConfigError(() => loadConfig({ file, cwd: dir, env: {} }), 'CONFIG_INVALID', 'sip.port', file);
      assert.deepEqual(e.details?.keys, ['sip.port']);
    });

    it('rejects a bad allow entry and names trunks.0.allow.0', () => {
      const file = write('c.yaml', fileConfig({ trunks: 'trunks:\n  - name: pbx\n    allow: [10.0.0.0/33]\n' }));
      expectConfigError(() => loadConfig({ file, cwd: dir, env: {} }), 'CONFIG_INVALID', 'trunks.0.allow.0');
      const file2 = write('d.yaml', fileConfig({ trunks: 'trunks:\n  - name: pbx\n    allow: [10.0.0.0/8, pbx.example.com]\n' }));
      expectConfigError(() => loadConfig({ file: file2, cwd: dir, env: {} }), 'CONFIG_INVALID', 'trunks.0.allow.1');
    });

    it('rejects unknown keys (typos) at any level', () => {
      const top = write('a.yaml', `${fileConfig()}sipp:\n  port: 5060\n`);
      expectConfigError(() => loadConfig({ file: top, cwd: dir, env: {} }), 'CONFIG_INVALID', 'sipp');
      const nested = write('b.yaml', fileConfig({ sip: 'sip:\n  prot: 5070\n' }));
      expectConfigError(() => loadConfig({ file: nested, cwd: dir, env: {} }), 'CONFIG_INVALID', 'prot');
      const trunk = write('c.yaml', fileConfig({ trunks: 'trunks:\n  - name: pbx\n    allow: [127.0.0.1]\n    alow: [10.0.0.1]\n' }));
      expectConfigError(() => loadConfig({ file: trunk, cwd: dir, env: {} }), 'CONFIG_INVALID', 'alow');
    });

    it('rejects duplicate trunk names', () => {
      const file = write('c.yaml', fileConfig({ trunks: 'trunks:\n  - name: pbx\n    allow: [10.0.0.1]\n  - name: pbx\n    allow: [10.0.0.2]\n' }));
      expectConfigError(() => loadConfig({ file, cwd: dir, env: {} }), 'CONFIG_INVALID', 'trunks.1.name', /duplicate/);
    });

    it('rejects an empty trunk list', () => {
      const file = write('c.yaml', fileConfig({ trunks: 'trunks: []\n' }));
      expectConfigError(() => loadConfig({ file, cwd: dir, env: {} }), 'CONFIG_INVALID', 'trunks');
    });

    it('reports a YAML syntax error as CONFIG_INVALID naming the file', () => {
      const file = write('c.yaml', 'sip:\n  port: [5060\ntrunks: {\n');
      expectConfigError(() => loadConfig({ file, cwd: dir, env: {} }), 'CONFIG_INVALID', file, /YAML/);
    });

    it('reports a repeated YAML key as CONFIG_INVALID rather than silently keeping one', () => {
      const file = write('c.yaml', `${fileConfig()}sip:\n  port: 5080\n`);
      expectConfigError(() => loadConfig({ file, cwd: dir, env: {} }), 'CONFIG_INVALID');
    });

    it('rejects a file whose top level is not a mapping', () => {
      const file = write('c.yaml', '- just\n- a list\n');
      expectConfigError(() => loadConfig({ file, cwd: dir, env: {} }), 'CONFIG_INVALID', /mapping/);
      const empty = write('e.yaml', '');
      expectConfigError(() => loadConfig({ file: empty, cwd: dir, env: {} }), 'CONFIG_INVALID');
    });

    it('reports a missing file as CONFIG_UNREADABLE', () => {
      const missing = path.join(dir, 'nope.yaml');
      expectConfigError(() => loadConfig({ file: missing, cwd: dir, env: {} }), 'CONFIG_UNREADABLE', missing);
    });
  });
});

describe('compileAllowList', () => {
  it('matches addresses inside a CIDR and not outside it', () => {
    const list = compileAllowList(['10.20.0.0/16']);
    assert.equal(list.check('10.20.0.1', 'ipv4'), true);
    assert.equal(list.check('10.20.255.254', 'ipv4'), true);
    assert.equal(list.check('10.21.0.1', 'ipv4'), false);
    assert.equal(list.check('192.168.1.1', 'ipv4'), false);
  });

  it('treats a bare address as that one host', () => {
    const list = compileAllowList(['192.0.2.5']);
    assert.equal(list.check('192.0.2.5', 'ipv4'), true);
    assert.equal(list.check('192.0.2.6', 'ipv4'), false);
    assert.equal(list.check('192.0.2.4', 'ipv4'), false);
  });

  it('matches 127.0.0.1/32 (the demo trunk) only for 127.0.0.1', () => {
    const list = compileAllowList(['127.0.0.1/32']);
    assert.equal(list.check('127.0.0.1', 'ipv4'), true);
    assert.equal(list.check('127.0.0.2', 'ipv4'), false);
  });

  it('handles IPv6 prefixes and addresses alongside IPv4', () => {
    const list = compileAllowList(['2001:db8:10::/48', '::1', '10.0.0.0/8']);
    assert.equal(list.check('2001:db8:10::5', 'ipv6'), true);
    assert.equal(list.check('2001:db8:11::5', 'ipv6'), false);
    assert.equal(list.check('::1', 'ipv6'), true);
    assert.equal(list.check('::2', 'ipv6'), false);
    assert.equal(list.check('10.9.8.7', 'ipv4'), true);
  });

  it('allows nothing when the list is empty', () => {
    assert.equal(compileAllowList([]).check('127.0.0.1', 'ipv4'), false);
  });
});
