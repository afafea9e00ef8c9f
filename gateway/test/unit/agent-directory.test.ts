import assert from 'node:assert/strict';
import { AgentDirectory, type SessionEndReason } from '../../acd/agent-directory';
import { acdConfigIssues, agentsSchema, queuesSchema, SCRYPT_HASH_PATTERN } from '../../acd/config';
import { AcdError } from '../../acd/errors';
import { hashPassword, verifyPassword } from '../../acd/password';
import { ManualClock } from './manual-clock';

/** Cheap scrypt for tests that hash many times; the default cost is exercised separately. */
const FAST = { N: 1024, r: 8, p: 1 };

async function loginError(p: Promise<unknown>): Promise<AcdError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof AcdError, `expected an AcdError, got ${String(e)}`);
    return e;
  }
  assert.fail('login should have failed');
}

describe('password hashing', () => {
  it('hashes with scrypt and a random salt, verifies, and never contains the password', async () => {
    const h1 = await hashPassword('correct horse');
    const h2 = await hashPassword('correct horse');
    assert.match(h1, SCRYPT_HASH_PATTERN);
    assert.match(h1, /^scrypt\$16384\$8\$1\$/);
    assert.notEqual(h1, h2, 'salted');
    assert.ok(!h1.includes('correct horse'));
    assert.equal(Buffer.from(h1.split('$')[4], 'base64').length, 16, '16-byte salt');
    assert.equal(await verifyPassword('correct horse', h1), true);
    assert.equal(await verifyPassword('correct horse', h2), true);
    assert.equal(await verifyPassword('correct hors', h1), false);
    assert.equal(await verifyPassword('', h1), false);
  });

  it('rejects malformed or hostile hashes without throwing', async () => {
    const good = await hashPassword('pw', FAST);
    const parts = good.split('$');
    for (const bad of [
      '',
      'pw',
      'bcrypt$1$2$3$4$5',
      parts.slice(0, 5).join('$'),
      [parts[0], '1000', ...parts.slice(2)].join('$'), // N not a power of two
      [parts[0], String(1 << 30), ...parts.slice(2)].join('$'), // too costly
      [...parts.slice(0, 5), ''].join('$'),
    ]) {
      assert.equal(await verifyPassword('pw', bad), false, bad);
    }
  });
});

describe('AgentDirectory', () => {
  let dir: AgentDirectory | undefined;
  afterEach(() => {
    dir?.close();
    dir = undefined;
  });

  async function make(clock = new ManualClock(), sessionIdleS?: number): Promise<AgentDirectory> {
    dir = await AgentDirectory.create(
      [
        { name: 'alice', displayName: 'Alice A.', password: 'alice-pw', skills: { fr: 80 } },
        { name: 'bob', passwordHash: await hashPassword('bob-pw', FAST), queues: ['support'] },
      ],
      { clock, sessionIdleS, scrypt: FAST },
    );
    return dir;
  }

  it('logs in with the right password and hands out an opaque token', async () => {
    const d = await make();
    const { token, agent } = await d.login('alice', 'alice-pw');
    assert.match(token, /^[A-Za-z0-9_-]{43}$/, '32 bytes base64url');
    assert.deepEqual(agent, { name: 'alice', displayName: 'Alice A.', skills: { fr: 80 }, queues: null, role: 'agent' });
    assert.ok(!JSON.stringify(agent).includes('pw'));
    assert.equal(d.resolve(token), agent);
    const bob = await d.login('bob', 'bob-pw');
    assert.deepEqual(bob.agent.queues, ['support']);
    assert.equal(bob.agent.displayName, 'bob');
    assert.notEqual(bob.token, token);
  });

  it('wrong password and unknown agent fail the same way', async () => {
    const d = await make();
    const wrong = await loginError(d.login('alice', 'nope'));
    const unknown = await loginError(d.login('mallory', 'alice-pw'));
    const empty = await loginError(d.login('alice', ''));
    for (const e of [wrong, unknown, empty]) {
      assert.equal(e.code, 'AGENT_LOGIN_FAILED');
      assert.equal(e.message, 'unknown agent or wrong password');
      assert.equal(e.details, undefined);
    }
    assert.equal(d.sessionCount, 0);
  });

  it('a login for a page of another role fails after the password check, and leaves the open session alone', async () => {
    dir = await AgentDirectory.create(
      [
        { name: 'alice', password: 'alice-pw' },
        { name: 'sue', password: 'sue-pw', role: 'supervisor' },
      ],
      { scrypt: FAST },
    );
    const d = dir;
    const ended: string[] = [];
    d.on('sessionEnded', (_t, agent, reason, role) => ended.push(`${agent}:${reason}:${role}`));
    const desk = await d.login('alice', 'alice-pw', 'agent');
    const atSupervisor = await loginError(d.login('alice', 'alice-pw', 'supervisor'));
    assert.equal(atSupervisor.code, 'AGENT_WRONG_ROLE');
    assert.match(atSupervisor.message, /agents log in at \/agent/);
    assert.equal(d.resolve(desk.token)?.name, 'alice', "the agent's desk session is untouched");
    assert.equal((await loginError(d.login('alice', 'wrong', 'supervisor'))).code, 'AGENT_LOGIN_FAILED', 'a wrong password says nothing about the role');
    const atAgent = await loginError(d.login('sue', 'sue-pw', 'agent'));
    assert.equal(atAgent.code, 'AGENT_WRONG_ROLE');
    assert.match(atAgent.message, /supervisors log in at \/supervisor/);
    const sue = await d.login('sue', 'sue-pw', 'supervisor');
    assert.equal(sue.agent.role, 'supervisor');
    assert.deepEqual(ended, []);
    await d.reload([
      { name: 'alice', password: 'alice-pw' },
      { name: 'sue', password: 'sue-pw' },
    ]);
    assert.deepEqual(ended, ['sue:removed:supervisor'], 'a role change ends the session of the old role');
  });

  it('does not keep plain passwords from the config', async () => {
    const d = await make();
    const internals = JSON.stringify([...((d as unknown as { entries: Map<string, unknown> }).entries.values())]);
    assert.ok(!internals.includes('alice-pw'));
    assert.match(internals, /scrypt\$1024\$8\$1\$/);
  });

  it('logout ends the session and says so (the ACD must take the agent offline)', async () => {
    const d = await make();
    const ended: string[] = [];
    d.on('sessionEnded', (_t, agent, reason) => ended.push(`${agent}:${reason}`));
    const { token } = await d.login('alice', 'alice-pw');
    assert.equal(d.logout(token), true);
    assert.deepEqual(ended, ['alice:logout']);
    assert.equal(d.resolve(token), undefined);
    assert.equal(d.logout(token), false);
    assert.deepEqual(ended, ['alice:logout'], 'a second logout of the same token is not another event');
    assert.equal(d.resolve('not-a-token'), undefined);
  });

  it('a session expires after the idle time; resolve keeps it alive', async () => {
    const clock = new ManualClock();
    const d = await make(clock, 600);
    const ended: Array<[string, string, SessionEndReason, string]> = [];
    d.on('sessionEnded', (...a) => ended.push(a));
    const { token } = await d.login('alice', 'alice-pw');
    clock.advance(599_000);
    assert.ok(d.resolve(token));
    clock.advance(599_000);
    assert.ok(d.resolve(token), 'idle time restarts on use');
    clock.advance(600_000);
    assert.equal(d.resolve(token), undefined);
    assert.deepEqual(ended, [[token, 'alice', 'expired', 'agent']]);
  });

  it('defaults to 12 hours idle, and the sweep ends untouched sessions without a resolve', async () => {
    const clock = new ManualClock();
    const d = await make(clock);
    const ended: Array<[string, string, SessionEndReason, string]> = [];
    d.on('sessionEnded', (...a) => ended.push(a));
    const { token } = await d.login('bob', 'bob-pw');
    clock.advance(12 * 3600_000 - 1_000);
    assert.deepEqual(ended, []);
    clock.advance(61_000);
    assert.deepEqual(ended, [[token, 'bob', 'expired', 'agent']]);
    assert.equal(d.sessionCount, 0);
    assert.equal(clock.pending, 0, 'no sweep timer without sessions');
  });

  it('a new login replaces the agent’s previous session', async () => {
    const d = await make();
    const ended: Array<[string, string, SessionEndReason, string]> = [];
    d.on('sessionEnded', (...a) => ended.push(a));
    const first = await d.login('alice', 'alice-pw');
    const second = await d.login('alice', 'alice-pw');
    assert.equal(d.resolve(first.token), undefined);
    assert.ok(d.resolve(second.token));
    assert.deepEqual(ended, [[first.token, 'alice', 'replaced', 'agent']]);
  });

  it('reload ends sessions of removed agents; close ends all and stops the timer', async () => {
    const clock = new ManualClock();
    const d = await make(clock);
    const ended: Array<[string, string, SessionEndReason, string]> = [];
    d.on('sessionEnded', (...a) => ended.push(a));
    const a = await d.login('alice', 'alice-pw');
    const b = await d.login('bob', 'bob-pw');
    await d.reload([{ name: 'bob', displayName: 'Bob B.', password: 'new-pw' }]);
    assert.equal(d.resolve(a.token), undefined);
    assert.equal(d.resolve(b.token)?.displayName, 'Bob B.');
    await loginError(d.login('bob', 'bob-pw'));
    assert.ok((await d.login('bob', 'new-pw')).token);
    assert.ok(clock.pending > 0);
    d.close();
    assert.equal(clock.pending, 0);
    assert.deepEqual(
      ended.map(([, n, r]) => `${n}:${r}`),
      ['alice:removed', 'bob:replaced', 'bob:closed'],
    );
    assert.equal((await loginError(d.login('bob', 'new-pw'))).code, 'ACD_CLOSED');
  });
});

describe('ACD config schemas', () => {
  it('agents: exactly one of password/passwordHash, unique names, valid hash format', () => {
    assert.ok(agentsSchema.safeParse([{ name: 'alice', password: 'x' }]).success);
    assert.ok(!agentsSchema.safeParse([{ name: 'alice' }]).success);
    assert.ok(!agentsSchema.safeParse([{ name: 'alice', password: 'x', passwordHash: 'scrypt$1024$8$1$AAAA$BBBB' }]).success);
    assert.ok(!agentsSchema.safeParse([{ name: 'alice', passwordHash: 'plain' }]).success);
    assert.ok(!agentsSchema.safeParse([{ name: 'alice', password: 'x', extra: 1 }]).success);
    const dup = agentsSchema.safeParse([
      { name: 'alice', password: 'x' },
      { name: 'alice', password: 'y' },
    ]);
    assert.ok(!dup.success && dup.error.issues.some((i) => i.message.includes('duplicate agent')));
  });

  it('queues: defaults, unique names; agents must name known queues', () => {
    const q = queuesSchema.parse([{ name: 'support' }, { name: 'sales', ringTimeoutS: 30, wrapUpS: 0 }]);
    assert.deepEqual(q, [
      { name: 'support', ringTimeoutS: 20, wrapUpS: 10 },
      { name: 'sales', ringTimeoutS: 30, wrapUpS: 0 },
    ]);
    assert.ok(!queuesSchema.safeParse([{ name: 'a' }, { name: 'a' }]).success);
    assert.ok(!queuesSchema.safeParse([{ name: 'a', ringTimeoutS: 0 }]).success);
    const agents = agentsSchema.parse([{ name: 'alice', password: 'x', queues: ['support', 'billing'] }]);
    assert.deepEqual(acdConfigIssues(agents, q), [{ path: ['agents', 0, 'queues', 1], message: 'agent "alice" names unknown queue "billing"' }]);
  });
});
