import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../gateway/config/load';
import { createLogger } from '../../gateway/logging';
import { freePort } from '../../test/e2e/harness';
import { Daemon } from '../daemon';

/** Local ports of the sockets and servers this process still holds (Node 20 has no public list of handles). */
function boundPorts(): number[] {
  const active = (process as unknown as { _getActiveHandles(): Array<{ address?: () => unknown }> })._getActiveHandles();
  const ports: number[] = [];
  for (const h of active) {
    try {
      const a = typeof h.address === 'function' ? (h.address() as { port?: number } | null) : null;
      if (a && typeof a.port === 'number') ports.push(a.port);
    } catch {
      // A socket not bound (yet) has no address.
    }
  }
  return ports;
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * The composition root in this process (not a child): what a start opened must be closed after a
 * stop and after a start that failed half way, or a supervisor that retries the start in-process
 * (and every test) inherits bound ports, an open database and an MQTT link.
 */
describe('daemon lifecycle: every part closes after a stop and after a failed start', function () {
  this.timeout(60_000);
  let dataDir: string;
  let lines: string[];

  beforeEach(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ccedge-lifecycle-'));
    lines = [];
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  async function configFor(httpPort: number): Promise<{ config: ReturnType<typeof loadConfig>['config']; sipPort: number }> {
    const sipPort = await freePort();
    const env = {
      CCEDGE_DATA_DIR: dataDir,
      CCEDGE_SIP_HOST: '127.0.0.1',
      CCEDGE_SIP_PORT: String(sipPort),
      CCEDGE_SIP_TLS_PORT: String(await freePort()),
      CCEDGE_HTTP_HOST: '127.0.0.1',
      CCEDGE_HTTP_PORT: String(httpPort),
      CCEDGE_HTTPS_PORT: String(await freePort()),
      CCEDGE_RTP_PORTS: '29100-29199',
    };
    return { config: loadConfig({ env, cwd: dataDir }).config, sipPort };
  }

  const log = (): ReturnType<typeof createLogger> =>
    createLogger(
      'info',
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );

  it('start then close: the SIP and HTTP ports are free again, the database is closed, no socket is left', async () => {
    const before = boundPorts();
    const { config, sipPort } = await configFor(await freePort());
    const daemon = await Daemon.start(config, log());
    assert.equal(await udpFree(sipPort), false, 'SIP must be listening while the daemon runs');
    await daemon.close();
    await daemon.close(); // idempotent
    assert.equal(await udpFree(sipPort), true);
    assert.equal(await tcpFree(sipPort), true);
    assert.equal(await tcpFree(daemon.httpPort), true);
    // sqlite removes the WAL file when the last connection closes.
    assert.equal(existsSync(path.join(dataDir, 'ccedge.db-wal')), false, 'the database is still open');
    assert.deepEqual(boundPorts().filter((p) => !before.includes(p)), [], 'sockets still bound after close');
    assert.match(lines.join(''), /"msg":"stopped"/);
  });

  it('a start that fails at the HTTP port closes SIP, the cloud link and the database it had opened', async () => {
    const blocker: Server = createServer();
    const httpPort = await freePort();
    await new Promise<void>((r) => blocker.listen(httpPort, '127.0.0.1', r));
    try {
      const before = boundPorts();
      const { config, sipPort } = await configFor(httpPort);
      await assert.rejects(Daemon.start(config, log()), /EADDRINUSE/);
      const failed = lines.map((l) => JSON.parse(l) as { msg: string; closing?: string[] }).find((l) => l.msg === 'start failed; closing what was opened');
      assert.ok(failed, lines.join(''));
      // Reverse order of opening: SIP (opened late) before the cloud link before the database (first).
      const order = failed.closing ?? [];
      for (const part of ['sip', 'cloud sync', 'database']) assert.ok(order.includes(part), `${part} not closed: ${order.join(', ')}`);
      assert.ok(order.indexOf('sip') < order.indexOf('cloud sync') && order.indexOf('cloud sync') < order.indexOf('database'), order.join(', '));
      assert.equal(await udpFree(sipPort), true, 'SIP port still bound after the failed start');
      assert.equal(await tcpFree(sipPort), true);
      assert.equal(existsSync(path.join(dataDir, 'ccedge.db-wal')), false, 'the database is still open');
      assert.deepEqual(boundPorts().filter((p) => !before.includes(p)), [], 'sockets still bound after the failed start');
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });
});
