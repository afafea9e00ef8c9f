import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { checkInstallerFiles } from '../../../app/cli/cert-command';
import { certificatesConfigSchema } from '../../certs/config';
import { CertificateExpiryCheck } from '../../certs/expiry';
import { SiteCertificates, type SiteCertificatesOptions } from '../../certs/site-certs';
import { HttpServer } from '../../http/http-server';
import { httpConfigSchema } from '../../http/config';
import { httpsConfigSchema } from '../../http/https-config';
import { hostOf, httpsLocation, isLoopbackClient, plainHttpDecision } from '../../http/plain-http';
import { createLogger } from '../../logging';
import { Metrics } from '../../metrics';
import type { CallStore } from '../../store/call-store';

const MAIN = path.resolve(__dirname, '..', '..', '..', 'app', 'main.js');
const TOKEN = 'unit-admin-token-0123456789';

function storeOpts(dataDir: string, names = ['127.0.0.1', 'edge.example']): SiteCertificatesOptions {
  return { dataDir, config: certificatesConfigSchema.parse({}), names, siteId: 'unit' };
}

/** The fingerprint of the certificate a TLS server presents, trusting only `ca`. */
function presented(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: undefined }, () => {
      const fp = s.getPeerX509Certificate()?.fingerprint256 ?? '';
      s.end();
      resolve(fp);
    });
    s.once('error', reject);
  });
}

describe('plain HTTP rule: other PCs go to HTTPS, loopback and the bootstrap paths stay', () => {
  it('redirects pages, the agent API, WebSockets, /setup and the admin API from other PCs; keeps /healthz /metrics /ca.crt /trust and the landing page /', () => {
    for (const p of ['/agent', '/agent/', '/agent/login', '/agent/agent.js', '/ws', '/ws/wallboard', '/wallboard', '/supervisor', '/api/v1/calls', '/setup', '/index.html']) {
      assert.equal(plainHttpDecision(p, '10.1.2.3', 8443), 'redirect', p);
      assert.equal(plainHttpDecision(p, '::ffff:192.168.1.20', 8443), 'redirect', p);
    }
    // `/` links to /trust and /ca.crt: a PC that does not trust the site CA yet must be able to read it.
    for (const p of ['/healthz', '/metrics', '/ca.crt', '/trust', '/']) assert.equal(plainHttpDecision(p, '10.1.2.3', 8443), 'serve', p);
  });
  it('loopback clients keep plain HTTP (a secure context for browsers); with HTTPS off nothing is redirected', () => {
    for (const r of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1']) {
      assert.equal(isLoopbackClient(r), true, r);
      assert.equal(plainHttpDecision('/agent', r, 8443), 'serve', r);
    }
    assert.equal(isLoopbackClient(undefined), false);
    assert.equal(plainHttpDecision('/api/v1/calls', '10.0.0.5', 8443, '10.0.0.5'), 'serve', 'the box itself at its site address (the CLI)');
    assert.equal(plainHttpDecision('/api/v1/calls', '10.0.0.6', 8443, '10.0.0.5'), 'redirect');
    assert.equal(plainHttpDecision('/agent', '10.1.2.3', undefined), 'serve');
  });
  it('builds the HTTPS address from the Host header the browser used, else the local address', () => {
    assert.equal(httpsLocation({ hostHeader: '10.77.0.1:8080', localAddress: '10.77.0.1', httpsPort: 8443, pathAndQuery: '/agent?a=1' }), 'https://10.77.0.1:8443/agent?a=1');
    assert.equal(httpsLocation({ hostHeader: 'Edge-01.store.example', localAddress: '10.0.0.5', httpsPort: 443, pathAndQuery: '/wallboard' }), 'https://Edge-01.store.example/wallboard');
    assert.equal(httpsLocation({ hostHeader: '[fd00::5]:8080', localAddress: 'fd00::5', httpsPort: 8443, pathAndQuery: '/agent' }), 'https://[fd00::5]:8443/agent');
    // Hostile Host headers never reach the Location: the address the client connected to is used.
    for (const bad of ['evil.example/x', 'a@b', 'x\r\nSet-Cookie: a=b', '', '[zz]:1', 'a..b']) {
      assert.equal(httpsLocation({ hostHeader: bad, localAddress: '::ffff:10.0.0.5', httpsPort: 8443, pathAndQuery: '/agent' }), 'https://10.0.0.5:8443/agent', JSON.stringify(bad));
    }
    assert.equal(hostOf(undefined), undefined);
    assert.equal(httpsLocation({ hostHeader: 'box', localAddress: '10.0.0.5', httpsPort: 8443, pathAndQuery: '//evil.example/' }), 'https://box:8443/', 'no protocol-relative path');
  });
  it('https config: enabled, port 8443 and host of http by default; https.names are SAN names', () => {
    assert.deepEqual(httpsConfigSchema.parse({}), { enabled: true, port: 8443, names: [] });
    assert.throws(() => httpsConfigSchema.parse({ names: ['bad name!'] }));
    assert.throws(() => httpsConfigSchema.parse({ host: 'box.example' }));
  });
});

describe('HTTPS listener with the site certificate', function () {
  this.timeout(30_000);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ccedge-https-'));
  let certs: SiteCertificates;
  let http: HttpServer;
  let httpsPort: number;
  let ca: string;
  const store = { list: async () => [], get: async () => undefined, events: async () => [] } as unknown as CallStore;

  before(async () => {
    certs = await SiteCertificates.open(storeOpts(dataDir));
    ca = certs.caPem() as string;
    http = new HttpServer({
      host: '127.0.0.1',
      port: 0,
      adminToken: TOKEN,
      metrics: new Metrics(),
      store,
      health: () => ({}),
      log: createLogger('silent'),
      limits: httpConfigSchema.parse({ maxBodyBytes: 1024 }),
      agents: { login: async () => ({ status: 200, body: { ok: true } }), handleUpgrade: (_req, socket) => socket.end('HTTP/1.1 418 Teapot\r\n\r\n') },
      https: { host: '127.0.0.1', port: 0, certs },
    });
    await http.start();
    httpsPort = http.httpsPort as number;
  });
  after(async () => {
    await http?.close();
    certs?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves the same routes with the same limits and frame headers as plain HTTP; /ca.crt is the site CA', async () => {
    const { request } = await import('node:https');
    const get = (p: string, init: { method?: string; body?: Buffer; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: httpsPort, path: p, method: init.method ?? 'GET', ca, headers: init.headers }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.once('error', reject);
        req.end(init.body);
      });
    const crt = await get('/ca.crt');
    assert.equal(crt.status, 200);
    assert.equal(crt.headers['content-type'], 'application/x-x509-ca-cert');
    assert.equal(crt.body, readFileSync(path.join(dataDir, 'keys', 'site-ca.crt'), 'utf8'));
    assert.equal(crt.headers['x-frame-options'], 'DENY');
    const big = await get('/agent/login', { method: 'POST', body: Buffer.alloc(5000, 0x61), headers: { 'content-type': 'application/json' } }).catch(() => ({ status: 413 }));
    assert.equal(big.status, 413, 'the body limit applies on HTTPS');
    const api = await get('/api/v1/calls');
    assert.equal(api.status, 401, 'the admin API needs its token on HTTPS too');
    const trust = await get('/trust');
    assert.match(trust.body, new RegExp(new X509Certificate(ca).fingerprint256));
    assert.match(trust.body, new RegExp(`https://127\\.0\\.0\\.1:${httpsPort}/agent`));
  });

  it('a renewed certificate is used for the next handshakes without a restart (setSecureContext)', async () => {
    const before = await presented(httpsPort, ca);
    assert.equal(before, certs.describe().fingerprint256);
    await SiteCertificates.renew(storeOpts(dataDir));
    assert.equal(certs.reloadIfChanged(), true);
    http.reloadCertificate();
    const after = await presented(httpsPort, ca);
    assert.notEqual(after, before, 'a new certificate is presented');
    assert.equal(after, certs.describe().fingerprint256);
  });
});

describe('certificate expiry: health alarm and cloud event 30 days ahead', () => {
  const validTo = Date.parse('2027-01-31T00:00:00Z');
  const certs = { generated: false, describe: () => ({ subject: 'CN=edge', validTo: new Date(validTo).toUTCString(), fingerprint256: 'AA:BB' }) };
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

  it('raises once below the threshold and clears when the certificate is replaced', async () => {
    let now = validTo - 40 * 86_400_000;
    const events: Array<[string, Record<string, unknown>]> = [];
    const check = new CertificateExpiryCheck({ certs, alarmDays: 30, emit: ({ type, data }) => events.push([type, { ...data }]), log, now: () => now });
    await check.check();
    assert.equal(events.length, 0, '40 days left: no alarm');
    now = validTo - 29.5 * 86_400_000;
    await check.check();
    await check.check();
    assert.deepEqual(
      events.map(([t, d]) => [t, d.state]),
      [
        ['health.alarm', 'raised'],
        ['certificate.expiry', 'raised'],
      ],
      'raised once, not every day',
    );
    assert.deepEqual(events[0][1], { metric: 'certificateDaysLeft', state: 'raised', value: 29, threshold: 30, unit: 'days' });
    assert.equal(events[1][1].source, 'installer');
    now = validTo - 100 * 86_400_000; // a replaced certificate is as good as more time
    await check.check();
    assert.deepEqual(events.slice(2).map(([t, d]) => [t, d.state]), [
      ['health.alarm', 'cleared'],
      ['certificate.expiry', 'cleared'],
    ]);
  });

  it('a generated certificate near expiry is re-issued first: no alarm when that works', async () => {
    let left = 10;
    const gen = { generated: true, describe: () => ({ subject: 'CN=edge', validTo: new Date(Date.now() + left * 86_400_000).toUTCString(), fingerprint256: 'AA' }) };
    const events: string[] = [];
    let renewed = 0;
    const check = new CertificateExpiryCheck({ certs: gen, alarmDays: 30, emit: ({ type }) => events.push(type), log, renew: async () => {
        renewed += 1;
        left = 825;
      },
    });
    await check.check();
    assert.equal(renewed, 1);
    assert.deepEqual(events, []);
  });
});

describe('ccedge cert show|import|renew', function () {
  this.timeout(60_000);
  const work = mkdtempSync(path.join(tmpdir(), 'ccedge-certcli-'));
  const dataDir = path.join(work, 'data');
  const otherDir = path.join(work, 'other');
  const cli = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [MAIN, 'cert', ...args], { cwd: work, env: { ...process.env, CCEDGE_DATA_DIR: dataDir } }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  let other: SiteCertificates;

  before(async () => {
    // An "installer's" certificate: issued by another CA (another box's), with names and serverAuth.
    other = await SiteCertificates.open(storeOpts(otherDir, ['edge-01.store.example']));
  });
  after(() => {
    other?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('show before any certificate exists says so (exit 1); renew makes one from the site CA and show lists it', async () => {
    const none = await cli(['show']);
    assert.equal(none.code, 1);
    assert.match(none.stdout, /no server certificate yet/);
    const renew = await cli(['renew']);
    assert.equal(renew.code, 0, renew.stderr);
    const first = new X509Certificate(readFileSync(path.join(dataDir, 'keys', 'server.crt')));
    const show = await cli(['show', '--json']);
    assert.equal(show.code, 0, show.stderr);
    const r = JSON.parse(show.stdout) as { source: string; names: string[]; issuer: string; fingerprint256: string; daysLeft: number; files: { ca: string } };
    assert.equal(r.source, 'generated');
    assert.equal(r.fingerprint256, first.fingerprint256);
    assert.match(r.issuer, /ccedge site CA/);
    assert.ok(r.daysLeft > 800, String(r.daysLeft));
    assert.equal(r.files.ca, path.join(dataDir, 'keys', 'site-ca.crt'));
    const again = await cli(['renew']);
    assert.equal(again.code, 0);
    const second = new X509Certificate(readFileSync(path.join(dataDir, 'keys', 'server.crt')));
    assert.notEqual(second.fingerprint256, first.fingerprint256, 'renew re-issues');
    assert.ok(second.checkIssued(new X509Certificate(readFileSync(path.join(dataDir, 'keys', 'site-ca.crt')))), 'by the same site CA');
    const text = await cli(['show']);
    assert.match(text.stdout, /names: {7}.*edge|names: /);
    assert.match(text.stdout, /SHA-256: {5}[0-9A-F:]{95}/);
  });

  it('import refuses a key of another certificate, a CA certificate and a chain that did not issue it', async () => {
    const crt = path.join(otherDir, 'keys', 'server.crt');
    const key = path.join(otherDir, 'keys', 'server.key');
    const caCrt = path.join(otherDir, 'keys', 'site-ca.crt');
    const caKey = path.join(otherDir, 'keys', 'site-ca.key');
    assert.throws(() => checkInstallerFiles(crt, caKey), /is not the key of/);
    assert.throws(() => checkInstallerFiles(caCrt, caKey), /is a CA certificate/);
    assert.throws(() => checkInstallerFiles(crt, key, path.join(dataDir, 'keys', 'site-ca.crt')), /not signed by the first certificate/);
    const junk = path.join(work, 'junk.pem');
    writeFileSync(junk, 'not a certificate');
    assert.throws(() => checkInstallerFiles(junk, key), /not a PEM certificate/);
    assert.throws(() => checkInstallerFiles(crt, key, undefined, Date.parse('2100-01-01')), /expired/);
    const r = await cli(['import', crt, caKey]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /is not the key of/);
    assert.equal(existsSync(path.join(dataDir, 'keys', 'imported')), false, 'nothing installed');
  });

  it("import installs the installer's files (key 0600), the store then uses them, and --remove goes back", async () => {
    const crt = path.join(otherDir, 'keys', 'server.crt');
    const key = path.join(otherDir, 'keys', 'server.key');
    const chain = path.join(otherDir, 'keys', 'site-ca.crt');
    const r = await cli(['import', crt, key, chain]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Restart the daemon/);
    const dir = path.join(dataDir, 'keys', 'imported');
    assert.equal(statSync(path.join(dir, 'server.key')).mode & 0o777, 0o600);
    const show = JSON.parse((await cli(['show', '--json'])).stdout) as { source: string; names: string[]; fingerprint256: string };
    assert.equal(show.source, 'imported');
    assert.deepEqual(show.names, ['edge-01.store.example']);
    const store = await SiteCertificates.open(storeOpts(dataDir));
    try {
      assert.equal(store.generated, false);
      assert.equal(store.describe().fingerprint256, other.describe().fingerprint256);
      assert.equal(store.caPem(), undefined, 'no site CA offered at /ca.crt for an installer certificate');
      assert.match(store.pem().cert, /BEGIN CERTIFICATE[\s\S]+BEGIN CERTIFICATE/, 'the chain is sent after the leaf');
      await assert.rejects(SiteCertificates.renew(storeOpts(dataDir)), /installer's own/);
    } finally {
      store.close();
    }
    const renew = await cli(['renew']);
    assert.notEqual(renew.code, 0, 'renew refuses to replace an imported certificate');
    const removed = await cli(['import', '--remove']);
    assert.equal(removed.code, 0);
    assert.equal(JSON.parse((await cli(['show', '--json'])).stdout).source, 'generated');
  });
});
