import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { HttpServer } from '../../http/http-server';
import { httpConfigSchema } from '../../http/config';
import { createLogger } from '../../logging';
import { Metrics } from '../../metrics';
import type { CallStore } from '../../store/call-store';

const TOKEN = 'unit-admin-token-0123456789';

/** Sends raw bytes and collects the reply until the server closes; reports how much of `body` got written. */
function rawRequest(port: number, head: string, body: { total: number; chunk: number; chunked: boolean } | undefined): Promise<{ reply: string; written: number }> {
  return new Promise((resolve) => {
    let reply = '';
    let written = 0;
    let closed = false;
    const sock = connect(port, '127.0.0.1', () => {
      sock.write(head);
      if (!body) return;
      const piece = Buffer.alloc(body.chunk, 0x61);
      const pump = (): void => {
        while (!closed && written < body.total) {
          const data = body.chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece;
          written += piece.length;
          if (!sock.write(data)) {
            sock.once('drain', pump);
            return;
          }
        }
        if (!closed && body.chunked) sock.write('0\r\n\r\n');
      };
      pump();
    });
    sock.on('data', (d) => (reply += d.toString('latin1')));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      closed = true;
      resolve({ reply, written });
    });
  });
}

describe('HTTP server limits: bodies, bearer tokens, frame headers', function () {
  this.timeout(30_000);
  let http: HttpServer;
  let port: number;
  let metrics: Metrics;
  const store = { list: async () => [], get: async () => undefined, events: async () => [] } as unknown as CallStore;

  before(async () => {
    metrics = new Metrics();
    const limits = httpConfigSchema.parse({ maxBodyBytes: 4096, tokenFailures: { maxFailures: 5, blockS: 0.5, maxBlockS: 0.5 } });
    http = new HttpServer({
      host: '127.0.0.1',
      port: 0,
      adminToken: TOKEN,
      metrics,
      store,
      health: () => ({}),
      log: createLogger('silent'),
      agents: { login: async () => ({ status: 401, body: { error: { code: 'AGENT_LOGIN_FAILED', message: 'no' } } }), handleUpgrade: (_r, s) => s.destroy() },
      limits: { maxBodyBytes: limits.maxBodyBytes, tokenFailures: limits.tokenFailures, log: limits.log },
    });
    port = await http.start();
  });
  after(async () => {
    await http.close();
  });

  it('a Content-Length over the limit is refused with 413 before the body is sent', async () => {
    const r = await rawRequest(port, `POST /agent/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`, undefined);
    assert.match(r.reply, /^HTTP\/1\.1 413 /);
    assert.match(r.reply, /HTTP_BODY_TOO_LARGE/);
    assert.match(r.reply, /connection: close/i);
  });

  it('a 32 MB chunked body gets 413 once the limit is passed and the socket is closed: the rest is never read', async () => {
    const r = await rawRequest(port, 'POST /agent/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n', { total: 32 * 1024 * 1024, chunk: 16 * 1024, chunked: true });
    assert.match(r.reply, /^HTTP\/1\.1 413 /);
    // Loopback socket buffers hold a few MB; a server reading the whole body would take all 32.
    assert.ok(r.written < 16 * 1024 * 1024, `client got to write ${r.written} bytes before the server closed`);
    const m = await metrics.registry.getSingleMetricAsString('ccedge_http_body_too_large_total');
    assert.match(m, /ccedge_http_body_too_large_total [2-9]/);
  });

  it('a big body to a path that reads no body is not drained: answered and closed', async () => {
    const r = await rawRequest(port, `POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n`, { total: 4000, chunk: 4000, chunked: false });
    assert.match(r.reply, /^HTTP\/1\.1 405 /);
    const big = await rawRequest(port, 'PUT /api/v1/calls HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', { total: 32 * 1024 * 1024, chunk: 16 * 1024, chunked: true });
    assert.match(big.reply, /^HTTP\/1\.1 405 /);
    assert.ok(big.written < 16 * 1024 * 1024, `client got to write ${big.written} bytes`);
  });

  it('wrong bearer tokens from one address: 401 up to the limit, then 429 with Retry-After even for the right token; the block ends', async () => {
    const base = `http://127.0.0.1:${port}/api/v1/calls`;
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await fetch(base, { headers: { authorization: `Bearer wrong-${i}` } })).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    const blocked = await fetch(base, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
    assert.equal(((await blocked.json()) as { error: { code: string } }).error.code, 'HTTP_AUTH_THROTTLED');
    // Without any Authorization header nothing is guessed: 401, and not counted.
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await fetch(base)).status, 401);
    const ok = await fetch(base, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    const m = await metrics.registry.getSingleMetricAsString('ccedge_http_auth_refused_total');
    assert.match(m, /reason="invalid"\} 5/);
    assert.match(m, /reason="throttled"\} 4/);
  });

  it('every response, and the agent, supervisor and wallboard pages, forbid framing', async () => {
    for (const p of ['/healthz', '/agent', '/supervisor', '/supervisor/supervisor.js', '/wallboard', '/nowhere', '/api/v1/calls']) {
      const r = await fetch(`http://127.0.0.1:${port}${p}`);
      assert.equal(r.headers.get('x-frame-options'), 'DENY', p);
      assert.match(r.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, p);
    }
  });
});
