import assert from 'node:assert/strict';
import { configSchema } from '../../config/schema';
import { createLogger } from '../../logging';
import { Metrics } from '../../metrics';
import { SipServer } from '../../sip/sip-server';
import { RawSipClient, challengeOf, digestAuthorization } from '../../../test/e2e/raw-sip-client';
import { freePort, sleep } from '../../../test/e2e/harness';

const CREDS = { username: 'pbx', password: 's3cret' };

/**
 * SipServer's digest guard: a source address that sends maxFailures wrong responses is refused
 * with 403 (no digest computed) until its block ends; other sources are unaffected.
 */
describe('SipServer digest guard', function () {
  this.timeout(20_000);
  let server: SipServer;
  let port: number;
  let metrics: Metrics;
  const lines: Array<Record<string, unknown>> = [];
  const clients: RawSipClient[] = [];

  before(async () => {
    port = await freePort();
    const config = configSchema.parse({
      site: { id: 's', deviceId: 'unit' },
      sip: { host: '127.0.0.1', port, tcp: false },
      trunks: [{ name: 'secure', allow: ['127.0.0.0/8'], auth: { realm: 'unit', ...CREDS, maxFailures: 3, failureWindowS: 60, blockS: 1, maxBlockS: 4 } }],
    });
    metrics = new Metrics();
    const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    server = new SipServer(config, log, metrics, {
      // An authenticated INVITE reaches the handlers: refuse it so no call is needed.
      onInvite: (inv) => inv.dialog.reject(486, 'Busy Here'),
      onRejectedInvite: () => undefined,
    });
    await server.start();
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  async function client(ip: string): Promise<RawSipClient> {
    const c = await RawSipClient.open(ip, { host: '127.0.0.1', port });
    clients.push(c);
    return c;
  }

  async function guess(c: RawSipClient, password: string, nc = 1): Promise<number> {
    const first = await c.request('INVITE');
    assert.equal(first.status, 401);
    const ch = challengeOf(first);
    const r = await c.request('INVITE', { authorization: digestAuthorization({ ...ch, username: CREDS.username, password, uri: first.uri, nc }) });
    return r.status;
  }

  it('blocks a source after maxFailures wrong responses with 403, keeps others working, unblocks after blockS', async () => {
    const attacker = await client('127.0.0.2');
    const pbx = await client('127.0.0.1');
    assert.equal(await guess(attacker, 'a'), 401);
    assert.equal(await guess(attacker, 'b'), 401);
    assert.equal(await guess(attacker, 'c'), 401, 'the third wrong response is still answered 401, and starts the block');
    const blocked = await attacker.request('INVITE');
    assert.equal(blocked.status, 403);
    assert.match(blocked.reason, /Too Many Failed Authentications/);
    assert.match(blocked.headers, /^Retry-After:\s*1/im);
    // Even the right password is refused while blocked: nothing is hashed for a blocked source.
    const ch = { realm: 'unit', nonce: 'x' };
    const withAuth = await attacker.request('INVITE', { authorization: digestAuthorization({ ...ch, ...CREDS, uri: `sip:support@127.0.0.1:${port}` }) });
    assert.equal(withAuth.status, 403);
    // Another source of the same trunk is not affected.
    assert.equal(await guess(pbx, CREDS.password), 486, 'the right password from 127.0.0.1 reaches the call handler');

    const m = await metrics.registry.getSingleMetricAsString('ccedge_sip_digest_blocks_total');
    assert.match(m, /ccedge_sip_digest_blocks_total\{trunk="secure"\} 1/);
    const refused = await metrics.registry.getSingleMetricAsString('ccedge_sip_digest_blocked_total');
    assert.match(refused, /\{trunk="secure"\} 2/);
    const blockLines = lines.filter((l) => l.code === 'SIP_AUTH_BLOCKED');
    assert.equal(blockLines.length, 1, 'one line for the block, refusals only counted');

    await sleep(1100);
    assert.equal(await guess(attacker, CREDS.password), 486, 'after the block the right password works');
  });

  it('a replayed authorized INVITE is challenged again (401), not let through', async () => {
    const pbx = await client('127.0.0.3');
    const first = await pbx.request('INVITE');
    const ch = challengeOf(first);
    const auth = digestAuthorization({ ...ch, ...CREDS, uri: first.uri, nc: 1 });
    assert.equal((await pbx.request('INVITE', { authorization: auth })).status, 486);
    const replay = await pbx.request('INVITE', { authorization: auth });
    assert.equal(replay.status, 401);
    assert.notEqual(challengeOf(replay).nonce, '', 'a fresh challenge');
    assert.equal((await pbx.request('INVITE', { authorization: digestAuthorization({ ...ch, ...CREDS, uri: first.uri, nc: 2 }) })).status, 486);
    const m = await metrics.registry.getSingleMetricAsString('ccedge_sip_digest_failures_total');
    assert.match(m, /reason="replay"\} 1/);
  });
});
