import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDirectory } from '../../acd/agent-directory';
import { agentConfigSchema } from '../../acd/config';
import { AcdError } from '../../acd/errors';
import { hashPassword } from '../../acd/password';
import { Db } from '../../store/db';
import { AgentPasswordStore } from '../../store/agent-password-store';

const FAST = { N: 1024, r: 8, p: 1 };

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof AcdError, String(e));
    return e.code;
  }
  return 'ok';
}

describe('one-time agent passwords (mustChangePassword)', () => {
  let dir: string;
  let db: Db;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'otp-'));
    db = await Db.open(path.join(dir, 'ccedge.db'));
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function directory(agents: Array<{ name: string; passwordHash: string; mustChangePassword?: boolean }>): Promise<AgentDirectory> {
    const store = new AgentPasswordStore(db);
    return AgentDirectory.create(agents, { scrypt: FAST, changedPasswords: { initial: await store.all(), save: (a, c) => store.save(a, c) } });
  }

  it('asks for a new password, refuses a short or identical one, then the new one works across a restart', async () => {
    const oneTime = 'K7QX-M2PD-W9TB';
    const agents = [{ name: 'alice', passwordHash: await hashPassword(oneTime, FAST), mustChangePassword: true }];
    const d1 = await directory(agents);
    assert.equal(d1.mustChangePassword('alice'), true);
    assert.equal(await code(d1.login('alice', oneTime)), 'AGENT_PASSWORD_CHANGE_REQUIRED');
    assert.equal(await code(d1.login('alice', 'wrong', undefined, 'new-password-1')), 'AGENT_LOGIN_FAILED');
    assert.equal(await code(d1.login('alice', oneTime, undefined, 'short')), 'AGENT_PASSWORD_REJECTED');
    assert.equal(await code(d1.login('alice', oneTime, undefined, oneTime)), 'AGENT_PASSWORD_REJECTED');
    assert.equal(d1.sessionCount, 0, 'no session before the password is replaced');
    const { token } = await d1.login('alice', oneTime, undefined, 'new-password-1');
    assert.equal(d1.resolve(token)?.name, 'alice');
    assert.equal(d1.mustChangePassword('alice'), false);
    assert.equal(await code(d1.login('alice', oneTime)), 'AGENT_LOGIN_FAILED', 'the one-time password is spent');
    d1.close();
    const rows = await db.all<{ hash: string }>('SELECT hash FROM agent_passwords');
    assert.equal(rows.length, 1);
    assert.ok(!rows[0].hash.includes('new-password-1'), 'stored hashed');
    // A restart with the same config: the chosen password, no change asked.
    const d2 = await directory(agents);
    assert.equal(await code(d2.login('alice', 'new-password-1')), 'ok');
    assert.equal(await code(d2.login('alice', oneTime)), 'AGENT_LOGIN_FAILED');
    d2.close();
    // A new one-time hash in the config resets the agent.
    const reset = [{ name: 'alice', passwordHash: await hashPassword('RSET-RSET-RSET', FAST), mustChangePassword: true }];
    const d3 = await directory(reset);
    assert.equal(await code(d3.login('alice', 'new-password-1')), 'AGENT_LOGIN_FAILED');
    assert.equal(await code(d3.login('alice', 'RSET-RSET-RSET')), 'AGENT_PASSWORD_CHANGE_REQUIRED');
    d3.close();
  });

  it('needs a passwordHash: a plain password cannot be one-time', () => {
    const r = agentConfigSchema.safeParse({ name: 'bob', password: 'x', mustChangePassword: true });
    assert.equal(r.success, false);
    assert.match(JSON.stringify(r.error?.issues), /one-time password must be given as passwordHash/);
  });
});
