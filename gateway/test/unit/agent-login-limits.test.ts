import assert from 'node:assert/strict';
import { AgentDirectory } from '../../acd/agent-directory';
import { agentsSchema } from '../../acd/config';
import { agentSessionsConfigSchema } from '../../agents/config';
import { AgentSessions } from '../../agents/agent-sessions';
import { createLogger } from '../../logging';
import { Metrics } from '../../metrics';
import { Semaphore } from '../../net/semaphore';
import { Writable } from 'node:stream';

/** Cheap scrypt: the test is about how many run, not what each costs. */
const FAST = { N: 1024, r: 8, p: 1 };

/** Counts the log lines the sessions write. */
function countingLogger(): { log: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger('info', sink), lines: () => lines };
}

async function setup(overrides: Record<string, unknown> = {}) {
  const gate = new Semaphore({ concurrency: 1, maxQueue: 8 });
  const agents = agentsSchema.parse([
    { name: 'alice', password: 'right-alice' },
    { name: 'bob', password: 'right-bob' },
  ]);
  const directory = await AgentDirectory.create(agents, { scrypt: FAST, hashGate: gate });
  const startupHashes = gate.started;
  const config = agentSessionsConfigSchema.parse(overrides);
  const metrics = new Metrics();
  const { log, lines } = countingLogger();
  const sessions = new AgentSessions(directory, log, { config, metrics });
  return { gate, directory, sessions, metrics, lines, startupHashes, config };
}

describe('agent logins under a flood (counted before scrypt, bounded hashing)', () => {
  it('600 parallel wrong logins from one address: at most maxFailures scrypts, one at a time, the rest 429 with Retry-After; few log lines', async () => {
    const { gate, sessions, metrics, lines, startupHashes, directory, config } = await setup();
    const results = await Promise.all(Array.from({ length: 600 }, () => sessions.login({ agent: 'alice', password: 'guess' }, '10.0.0.9')));
    const scrypts = gate.started - startupHashes;
    const by = (s: number) => results.filter((r) => r.status === s).length;
    console.log(`      600 wrong logins: ${scrypts} scrypts, peak ${gate.maxActiveSeen} concurrent; 401×${by(401)} 429×${by(429)} 503×${by(503)}`);
    assert.ok(scrypts <= config.loginFailuresPerAddress.maxFailures, `${scrypts} scrypts ran`);
    assert.ok(scrypts >= 1);
    assert.equal(gate.maxActiveSeen, 1, 'never more than one scrypt at once');
    assert.equal(by(401) + by(503), scrypts + by(503));
    assert.equal(by(401), scrypts);
    assert.ok(by(429) >= 600 - config.loginFailuresPerAddress.maxFailures);
    const throttled = results.find((r) => r.status === 429);
    assert.ok(throttled?.headers?.['retry-after'] && Number(throttled.headers['retry-after']) >= 1);
    assert.equal((throttled.body as { error: { code: string } }).error.code, 'AGENT_LOGIN_THROTTLED');
    const refused = await metrics.registry.getSingleMetricAsString('ccedge_agent_logins_refused_total');
    assert.match(refused, /reason="throttled_address"\} [1-9]\d\d/);
    // The log says it happened, not 600 times.
    const warn = lines().filter((l) => typeof l.msg === 'string' && /login/.test(l.msg));
    assert.ok(warn.length <= 2 * config.log.burst + 2, `${warn.length} login log lines`);
    // Another address: the agent itself is not locked by one address's guesses.
    const ok = await sessions.login({ agent: 'alice', password: 'right-alice' }, '10.0.0.10');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    // The flooding address stays refused even with the right password (no oracle while blocked).
    assert.equal((await sessions.login({ agent: 'bob', password: 'right-bob' }, '10.0.0.9')).status, 429);
    sessions.close();
    directory.close();
  });

  it('guesses at one agent from many addresses block that agent name; the block ends and the right password works', async () => {
    const { sessions, directory } = await setup({ loginFailuresPerAgent: { maxFailures: 5, blockS: 0.3, maxBlockS: 0.3 } });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => sessions.login({ agent: 'bob', password: 'guess' }, `10.1.0.${i}`)));
    assert.equal(results.filter((r) => r.status === 401).length, 5);
    const blocked = await sessions.login({ agent: 'bob', password: 'right-bob' }, '10.2.0.1');
    assert.equal(blocked.status, 429);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await sessions.login({ agent: 'bob', password: 'right-bob' }, '10.2.0.1')).status, 200);
    sessions.close();
    directory.close();
  });

  it('a full hashing queue answers 503 at once, without charging the addresses', async () => {
    const tight = new Semaphore({ concurrency: 1, maxQueue: 2 });
    const dir2 = await AgentDirectory.create(agentsSchema.parse([{ name: 'alice', password: 'right-alice' }]), { scrypt: FAST, hashGate: tight });
    const before = tight.started;
    const s2 = new AgentSessions(dir2, createLogger('silent'), { config: agentSessionsConfigSchema.parse({ passwordHashing: { maxQueue: 2, busyRetryAfterS: 3 } }) });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s2.login({ agent: `nobody${i}`, password: 'x' }, `10.3.0.${i}`)));
    assert.equal(tight.started - before, 3, 'one running + two queued');
    const busy = results.filter((r) => r.status === 503);
    assert.equal(busy.length, 17);
    assert.equal(busy[0].headers?.['retry-after'], '3');
    assert.equal((busy[0].body as { error: { code: string } }).error.code, 'AGENT_LOGIN_BUSY');
    // Refunded: a refused-as-busy address may try again at once, and the right password works.
    assert.equal((await s2.login({ agent: 'alice', password: 'right-alice' }, '10.3.0.19')).status, 200);
    s2.close();
    dir2.close();
  });
});
