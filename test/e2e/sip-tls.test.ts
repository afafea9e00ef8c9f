import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { eventually, startDaemon, type DaemonHandle } from './harness';

const CONFIG = {
  site: { id: 'e2e-tls', deviceId: 'edge-tls' },
  trunks: [
    { name: 'pbx', allow: ['127.0.0.1/32'] },
    { name: 'strict', allow: ['127.0.0.6/32'], tls: { requireClientCert: true } },
  ],
};

function options(callId: string, via: string): string {
  return [
    'OPTIONS sips:ccedge@127.0.0.1 SIP/2.0',
    `Via: SIP/2.0/TLS ${via};branch=z9hG4bK-${callId}`,
    'Max-Forwards: 70',
    'From: <sips:probe@127.0.0.1>;tag=t1',
    'To: <sips:ccedge@127.0.0.1>',
    `Call-ID: ${callId}`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

interface Outcome {
  secure: boolean;
  error?: string;
  response?: string;
}

/** A TLS client from `localAddress`: did the handshake complete, and what answered an OPTIONS. */
function tlsProbe(port: number, o: { localAddress: string; ca?: string; cert?: string; key?: string; servername?: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    let secure = false;
    let data = '';
    const raw = netConnect({ host: '127.0.0.1', port, localAddress: o.localAddress });
    raw.on('error', () => undefined);
    const socket: TLSSocket = tlsConnect({ socket: raw, host: '127.0.0.1', ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.ca !== undefined, servername: o.servername });
    const done = (error?: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ secure, error, response: data || undefined });
    };
    const timer = setTimeout(() => done('timeout'), 5000);
    socket.once('secureConnect', () => {
      secure = true;
      socket.write(options(`tls-${Date.now()}`, `${o.localAddress}:5999`));
    });
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      data += c;
      if (data.includes('\r\n\r\n')) done();
    });
    socket.once('error', (e) => done(e.message));
    socket.once('close', () => done(secure ? undefined : 'closed'));
  });
}

async function metric(d: DaemonHandle, re: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('SIP over TLS listener and the site certificate store', function () {
  let daemon: DaemonHandle;
  let ca: string;
  const scratch = mkdtempSync(path.join(tmpdir(), 'ccedge-tls-'));
  before(async () => {
    daemon = await startDaemon({ config: CONFIG });
    ca = readFileSync(path.join(daemon.dataDir, 'keys', 'site-ca.crt'), 'utf8');
  });
  after(async () => {
    await daemon?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('made a site CA and a server certificate at first start, keys 0600, the server certificate naming the listen address', () => {
    const keys = path.join(daemon.dataDir, 'keys');
    for (const f of ['site-ca.key', 'server.key']) assert.equal(statSync(path.join(keys, f)).mode & 0o777, 0o600, f);
    const server = new X509Certificate(readFileSync(path.join(keys, 'server.crt')));
    const siteCa = new X509Certificate(ca);
    assert.ok(server.checkIssued(siteCa) && server.verify(siteCa.publicKey), 'signed by the site CA');
    assert.ok(siteCa.ca, 'the site CA is a CA');
    assert.match(server.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  });

  it('a trunk peer completes the handshake trusting only the site CA and gets 200 with Via SIP/2.0/TLS', async () => {
    const r = await tlsProbe(daemon.sipTlsPort, { localAddress: '127.0.0.1', ca });
    assert.equal(r.secure, true, r.error);
    assert.match(r.response ?? '', /^SIP\/2\.0 200 /);
    assert.match(r.response ?? '', /^Via: SIP\/2\.0\/TLS /im);
  });

  it('an outsider is closed at accept: no handshake, counted as forbidden (not as a failed handshake)', async () => {
    const handshakesBefore = await metric(daemon, /^ccedge_sip_dropped_total\{transport="tls",reason="tls-handshake"\} (\d+)/m);
    const r = await tlsProbe(daemon.sipTlsPort, { localAddress: '127.0.0.2' });
    assert.equal(r.secure, false);
    assert.equal(r.response, undefined);
    // A raw connection from the outsider gets not one byte (a ServerHello would be the first).
    const bytes = await new Promise<number>((resolve) => {
      let n = 0;
      const s = netConnect({ host: '127.0.0.1', port: daemon.sipTlsPort, localAddress: '127.0.0.2' });
      s.on('connect', () => s.write(Buffer.from('160301002a0100002603031234', 'hex')));
      s.on('data', (b) => (n += b.length));
      s.on('error', () => undefined);
      s.on('close', () => resolve(n));
      setTimeout(() => s.destroy(), 3000);
    });
    assert.equal(bytes, 0);
    await eventually(async () => (await metric(daemon, /^ccedge_sip_dropped_total\{transport="tls",reason="forbidden"\} (\d+)/m)) >= 2);
    assert.equal(await metric(daemon, /^ccedge_sip_dropped_total\{transport="tls",reason="tls-handshake"\} (\d+)/m), handshakesBefore);
  });

  it('a peer that does not trust the site CA fails the handshake, which is counted', async () => {
    const before = await metric(daemon, /^ccedge_sip_dropped_total\{transport="tls",reason="tls-handshake"\} (\d+)/m);
    const other = execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(scratch, 'other.key'), '-subj', '/CN=other', '-days', '1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const r = await tlsProbe(daemon.sipTlsPort, { localAddress: '127.0.0.1', ca: other });
    assert.equal(r.secure, false);
    await eventually(async () => (await metric(daemon, /^ccedge_sip_dropped_total\{transport="tls",reason="tls-handshake"\} (\d+)/m)) > before);
  });

  it('trunks[].tls.requireClientCert: no client certificate → no session; one signed by the site CA → 200', async () => {
    const without = await tlsProbe(daemon.sipTlsPort, { localAddress: '127.0.0.6', ca });
    assert.equal(without.response, undefined, 'no SIP answer without a client certificate');
    await eventually(async () => (await metric(daemon, /^ccedge_sip_dropped_total\{transport="tls",reason="tls-client-cert"\} (\d+)/m)) >= 1);

    // The installer issues the PBX a client certificate from the site CA (openssl, as an admin would).
    const keys = path.join(daemon.dataDir, 'keys');
    const key = path.join(scratch, 'pbx.key');
    const csr = path.join(scratch, 'pbx.csr');
    const crt = path.join(scratch, 'pbx.crt');
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/CN=pbx', '-out', csr], { stdio: 'ignore' });
    execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', path.join(keys, 'site-ca.crt'), '-CAkey', path.join(keys, 'site-ca.key'), '-CAcreateserial', '-out', crt, '-days', '1'], { stdio: 'ignore' });
    const withCert = await tlsProbe(daemon.sipTlsPort, { localAddress: '127.0.0.6', ca, cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') });
    assert.equal(withCert.secure, true, withCert.error);
    assert.match(withCert.response ?? '', /^SIP\/2\.0 200 /);
  });

  it('keeps the CA and server certificate across a restart, and sip.tls.enabled: false turns the listener off', async () => {
    const keys = path.join(daemon.dataDir, 'keys');
    const before = new X509Certificate(readFileSync(path.join(keys, 'server.crt')));
    await daemon.stop();
    const again = await startDaemon({ config: CONFIG, dataDir: daemon.dataDir });
    try {
      const after = new X509Certificate(readFileSync(path.join(keys, 'server.crt')));
      // Re-issued only for a reason: the box's addresses changed in between (another test's veth).
      if (after.fingerprint256 !== before.fingerprint256) assert.notEqual(after.subjectAltName, before.subjectAltName, 'server certificate re-issued with the same names');
      assert.equal(readFileSync(path.join(keys, 'site-ca.crt'), 'utf8'), ca);
      const r = await tlsProbe(again.sipTlsPort, { localAddress: '127.0.0.1', ca });
      assert.equal(r.secure, true, r.error);
    } finally {
      await again.stop();
    }
    const off = await startDaemon({ config: { ...CONFIG, sip: { tls: { enabled: false } } } });
    try {
      const refused = await new Promise<string>((resolve) => {
        const s = netConnect({ host: '127.0.0.1', port: off.sipTlsPort });
        s.on('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      assert.equal(refused, 'ECONNREFUSED');
      assert.ok(off.logs.some((l) => l.msg === 'SIP listening' && l.tlsPort === null), 'the start-up line says TLS is off');
    } finally {
      await off.stop();
    }
  });
});
