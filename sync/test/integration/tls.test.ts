import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { SyncService } from '../../index';
import { Cloud, waitFor } from '../helpers/cloud';
import { openSyncDb, tempDir } from '../helpers/db';
import { freePort, Mosquitto } from '../helpers/mosquitto';

const PREFIX = 'ccedge/v1/site-t/dev-1/';

/** A CA, a broker certificate for 127.0.0.1 and a per-device client certificate, made with openssl. */
function makePki(dir: string): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string> {
  const f = (n: string): string => path.join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=ccedge-test-ca', '-keyout', f('ca.key'), '-out', f('ca.crt'));
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr'));
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('server.ext'), '-out', f('server.crt'));
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=site-t.dev-1', '-keyout', f('client.key'), '-out', f('client.csr'));
  ssl('x509', '-req', '-in', f('client.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-out', f('client.crt'));
  return { ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key') };
}

describe('sync over mqtts with a per-device client certificate (real mosquitto)', function () {
  this.timeout(60_000);

  it('connects with cert/key/CA files and delivers events; without a client certificate it cannot connect', async () => {
    const tmp = tempDir('ccedge-sync-tls-');
    const pki = makePki(tmp.dir);
    const tlsPort = await freePort();
    const broker = await Mosquitto.start(tmp.dir, {
      extra: [`listener ${tlsPort} 127.0.0.1`, `cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, 'require_certificate true', 'use_identity_as_username true', 'allow_anonymous true'],
    });
    const cloud = await Cloud.connect(broker.port, [`${PREFIX}#`]);
    const db = await openSyncDb(path.join(tmp.dir, 'ccedge.db'));
    const make = (tls: Record<string, string>): SyncService =>
      new SyncService({
        db,
        siteId: 'site-t',
        deviceId: 'dev-1',
        version: 't',
        bootId: randomUUID(),
        startedAt: new Date(),
        mqtt: { url: `mqtts://127.0.0.1:${tlsPort}`, tls, backoff: { minMs: 100, maxMs: 500 } },
      });
    const noCert = make({ caFile: pki.ca });
    const good = make({ caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey });
    try {
      await noCert.start();
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await noCert.status()).connected, false, 'refused without a client certificate');
      await noCert.close();
      await good.start();
      await waitFor(async () => (await good.status()).connected, 10_000, 'mqtts connected');
      await db.transaction((tx) => good.append(tx, 'call.answered', { callId: 'tls-1' }));
      await cloud.until(() => cloud.on('/events').length >= 1, 10_000, 'event over TLS');
      assert.equal(cloud.json<{ callId: string }>('/events')[0].callId, 'tls-1');
    } finally {
      await noCert.close();
      await good.close();
      await cloud.close();
      await db.close();
      await broker.stop();
      tmp.cleanup();
    }
  });
});
