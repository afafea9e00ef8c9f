import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { assertUnharmed, underAttack, WATCHDOG_INTERVAL_MS, WatchdogFifo } from './hostile-harness';

/**
 * Issue 13 (HTTP part), as a user of the box would notice it: while one address fires 600
 * parallel wrong agent logins, a 10 MB body and a WebSocket flood that never says hello, the admin
 * API and SIP keep answering, the watchdog keeps being fed, the right password still gets in, and
 * the log does not fill with one line per hostile request.
 */
const PASSWORDS = { alice: 'alice-right-pw', bob: 'bob-right-pw' };
const BLOCK_S = 3;

/** POST /agent/login from a chosen local address (node:http lets us bind it; fetch does not). */
function login(port: number, body: unknown, localAddress = '127.0.0.1'): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(
      { host: '127.0.0.1', port, path: '/agent/login', method: 'POST', localAddress, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: text }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** 10 MB chunked to /agent/login; resolves with the status line and how much the server let us write. */
function hugeBody(port: number): Promise<{ reply: string; written: number }> {
  return new Promise((resolve) => {
    let reply = '';
    let written = 0;
    let closed = false;
    const total = 10 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 0x20);
    const sock = connect(port, '127.0.0.1', () => {
      sock.write('POST /agent/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      const pump = (): void => {
        while (!closed && written < total) {
          written += piece.length;
          if (!sock.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]))) {
            sock.once('drain', pump);
            return;
          }
        }
        if (!closed) sock.write('0\r\n\r\n');
      };
      pump();
    });
    sock.on('data', (d) => (reply += d.toString('latin1')));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      closed = true;
      resolve({ reply: reply.split('\r\n')[0], written });
    });
  });
}

/** Opens `count` sockets to /ws that never say hello and send `frames` junk frames each. */
async function wsFlood(port: number, count: number, frames: number): Promise<{ refused: number; closed1008: number; otherClose: number; errorReplies: number }> {
  const out = { refused: 0, closed1008: 0, otherClose: 0, errorReplies: 0 };
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
          ws.on('unexpected-response', (_req, res) => {
            if (res.statusCode === 429 || res.statusCode === 503) out.refused++;
            res.resume();
            resolve();
          });
          ws.on('error', () => resolve());
          ws.on('message', () => out.errorReplies++);
          ws.on('open', () => {
            for (let i = 0; i < frames; i++) ws.send(JSON.stringify({ v: 1, type: 'ping', ref: `junk-${i}` }));
          });
          ws.on('close', (code) => {
            if (code === 1008) out.closed1008++;
            else out.otherClose++;
            resolve();
          });
        }),
    ),
  );
  return out;
}

describe('hostile HTTP input does not stall the box (issue 13)', function () {
  this.timeout(120_000);
  let daemon: DaemonHandle | undefined;
  const wd = new WatchdogFifo();

  before(async () => {
    wd.start();
    daemon = await startDaemon({
      config: {
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
        queues: [{ name: 'support' }],
        agents: [
          { name: 'alice', displayName: 'Alice', password: PASSWORDS.alice },
          { name: 'bob', displayName: 'Bob', password: PASSWORDS.bob },
        ],
        // Short blocks so the test sees one end; everything else at its default.
        agentSessions: { loginFailuresPerAddress: { blockS: BLOCK_S, maxBlockS: BLOCK_S } },
        hw: { watchdog: { device: wd.path, deviceIntervalMs: WATCHDOG_INTERVAL_MS } },
      },
      env: { CCEDGE_LOG_LEVEL: 'info' },
    });
  });
  after(async () => {
    await daemon?.stop();
    wd.close();
  });

  it('600 wrong logins + a 10 MB body + a WebSocket flood: API and SIP answer, watchdog fed, few scrypts, few log lines; the right password still works', async () => {
    const d = daemon as DaemonHandle;
    await eventually(async () => wd.fed >= 3, 20_000);
    const logsBefore = d.logs.length;

    const burstStart = Date.now();
    const u = await underAttack(d, wd, '127.0.0.1', () =>
      Promise.all([
        Promise.all(Array.from({ length: 600 }, () => login(d.httpPort, { agent: 'alice', password: 'wrong' }).catch(() => ({ status: 0, retryAfter: undefined, body: '' })))),
        hugeBody(d.httpPort),
        wsFlood(d.httpPort, 60, 200),
      ]),
    );
    const [logins, body, ws] = u.result;
    const burstMs = Date.now() - burstStart;

    const by = (s: number) => logins.filter((r) => r.status === s).length;
    const metrics = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
    const scrypts = Number(/^ccedge_password_checks_total (\d+)/m.exec(metrics)?.[1]);
    // Every line the daemon wrote (info and up) from the burst's start until now.
    const burstLogLines = d.logs.slice(logsBefore);
    const loginFailedLines = burstLogLines.filter((l) => l.code === 'AGENT_LOGIN_FAILED' || l.code === 'AGENT_LOGIN_THROTTLED').length;
    const suppressedSummaries = burstLogLines.filter((l) => typeof l.suppressed === 'number').length;
    console.log(
      `      burst ${burstMs} ms: logins 401×${by(401)} 429×${by(429)} 503×${by(503)} other×${600 - by(401) - by(429) - by(503)}; scrypts ${scrypts}; ` +
        `10 MB body → "${body.reply}" after ${(body.written / 1024).toFixed(0)} KiB; ` +
        `ws: ${ws.refused} refused at upgrade, ${ws.closed1008} closed 1008, ${ws.otherClose} other, ${ws.errorReplies} error replies`,
    );
    assertUnharmed('600 wrong logins + a 10 MB body + a WebSocket flood', u);
    console.log(`      log lines during the burst: ${burstLogLines.length} (${loginFailedLines} about logins, ${suppressedSummaries} summaries)`);

    // Logins: every one answered; at most maxFailures (10) were hashed, the rest refused cheaply.
    assert.equal(by(401) + by(429) + by(503), 600, 'every login got a 401, 429 or 503');
    assert.ok(scrypts >= 1 && scrypts <= 10, `${scrypts} password checks ran`);
    assert.ok(by(429) >= 580, `${by(429)} logins throttled`);
    assert.ok(logins.some((r) => r.status === 429 && Number(r.retryAfter) >= 1), 'a 429 carries Retry-After');
    // The body: 413 without reading 10 MB.
    assert.match(body.reply, /^HTTP\/1\.1 413 /);
    // The client could not even finish sending: the server closed the connection once past the
    // limit (what it did read was at most the limit; the rest of `written` sat in socket buffers).
    assert.ok(body.written < 10 * 1024 * 1024, `the server let all ${body.written} bytes of the body in`);
    // WebSockets: refused beyond 20 pending per address, the rest closed after a few frames.
    assert.ok(ws.refused >= 1, 'connections beyond the per-address limit are refused');
    assert.ok(ws.closed1008 >= 1, 'frames before hello close the connection');
    assert.ok(ws.errorReplies <= 60 * 5, `${ws.errorReplies} error replies: answered a few, not 200 per socket`);
    assert.equal(d.logs.some((l) => l.code === 'HW_WATCHDOG_CHECK_FAILED'), false, 'a watchdog check failed');
    // The login lines are there (the burst is visible in the log), but bounded: not 600 of them.
    assert.ok(loginFailedLines >= 1, 'the failed logins are logged at all');
    assert.ok(burstLogLines.length <= 60, `${burstLogLines.length} log lines for the burst`);
    assert.match(metrics, /ccedge_agent_logins_refused_total\{reason="throttled_address"\} [1-9]\d\d/);
    assert.match(metrics, /ccedge_http_body_too_large_total [1-9]/);
    assert.match(metrics, /ccedge_ws_refused_total\{reason="address_limit"\} [1-9]/);

    // Another address logs in at once; the flooding address gets in after its block ends.
    const bob = await login(d.httpPort, { agent: 'bob', password: PASSWORDS.bob }, '127.0.0.2');
    assert.equal(bob.status, 200, bob.body);
    const stillBlocked = await login(d.httpPort, { agent: 'alice', password: PASSWORDS.alice });
    assert.equal(stillBlocked.status, 429, 'the right password is not checked while the address is blocked');
    await sleep(Number(stillBlocked.retryAfter ?? BLOCK_S) * 1000 + 200);
    const alice = await login(d.httpPort, { agent: 'alice', password: PASSWORDS.alice });
    assert.equal(alice.status, 200, alice.body);
  });

  it('pages cannot be framed: /agent and /wallboard send frame-ancestors none and X-Frame-Options DENY', async () => {
    const d = daemon as DaemonHandle;
    for (const p of ['/agent', '/wallboard']) {
      const r = await fetch(`http://127.0.0.1:${d.httpPort}${p}`);
      assert.equal(r.status, 200, p);
      assert.match(r.headers.get('content-type') ?? '', /text\/html/);
      assert.equal(r.headers.get('x-frame-options'), 'DENY', p);
      assert.match(r.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, p);
    }
  });
});
