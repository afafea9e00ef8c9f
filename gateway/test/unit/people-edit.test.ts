import assert from 'node:assert/strict';
import { CcedgeError } from '../../errors';
import { agentsFromCsv, parseCsv } from '../../people/csv';
import { addAgents, addQueue, removeAgent, removeQueue, setAgent, setQueue, type People } from '../../people/people-edit';
import { clearPasswordProblem } from '../../config/live-config';

const FAST = { scrypt: { N: 1024, r: 8, p: 1 } };
const base = (): People => ({
  agents: [{ name: 'alice', passwordHash: 'scrypt$1024$8$1$AAAA$AAAA', queues: ['support'] }],
  queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 10 }],
  awayReasons: ['break'],
});
async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof CcedgeError, String(e));
    return e.code;
  }
  return 'ok';
}

describe('live people edits (validated with the config file schemas)', () => {
  it('adds an agent with its password hashed, or a one-time password returned once', async () => {
    const r = await addAgents(base(), [{ name: 'bob', password: 'bob-password-1', queues: ['support'] }, { name: 'carol' }], FAST);
    const bob = r.people.agents.find((a) => a.name === 'bob');
    assert.equal(bob?.password, undefined);
    assert.match(bob?.passwordHash ?? '', /^scrypt\$/);
    assert.deepEqual(r.oneTimePasswords.map((o) => o.agent), ['carol']);
    assert.equal(r.people.agents.find((a) => a.name === 'carol')?.mustChangePassword, true);
    assert.equal(JSON.stringify(r.added).includes('scrypt'), false, 'answers never carry hashes');
  });

  it('refuses with codes: duplicate 409, unknown queue or bad field 400, unknown name 404, queue in use 409', async () => {
    assert.equal(await code(addAgents(base(), [{ name: 'alice', password: 'x-password-1' }], FAST)), 'PEOPLE_EXISTS');
    assert.equal(await code(addAgents(base(), [{ name: 'bob', queues: ['nowhere'] }], FAST)), 'PEOPLE_INVALID');
    assert.equal(await code(addAgents(base(), [{ name: 'b o b' }], FAST)), 'PEOPLE_INVALID');
    assert.equal(await code(addAgents(base(), [{ name: 'bob', password: 'p', passwordHash: 'scrypt$1$1$1$AA$AA' }], FAST)), 'PEOPLE_INVALID');
    assert.equal(await code(addAgents(base(), [{ name: 'bob', skills: { x: 101 } }], FAST)), 'PEOPLE_INVALID');
    assert.equal(await code(setAgent(base(), 'nobody', { displayName: 'X' }, FAST)), 'PEOPLE_NOT_FOUND');
    assert.equal(await code(() => removeAgent(base(), 'nobody')), 'PEOPLE_NOT_FOUND');
    assert.equal(await code(() => removeQueue(base(), 'support')), 'PEOPLE_IN_USE');
    assert.equal(await code(() => addQueue(base(), { name: 'support' })), 'PEOPLE_EXISTS');
    assert.equal(await code(() => addQueue(base(), { name: 'sales', maxWaitS: 30 })), 'PEOPLE_INVALID', 'maxWaitS needs overflow, as in the file');
    assert.equal(await code(() => setQueue(base(), 'support', { ringTimeoutS: 0 })), 'PEOPLE_INVALID');
  });

  it('changes: a new password replaces the hash, null removes a field; queues change with defaults kept', async () => {
    const r = await setAgent(base(), 'alice', { password: 'new-password-1', queues: null, skills: { fr: 50 } }, FAST);
    const a = r.people.agents[0];
    assert.notEqual(a.passwordHash, base().agents[0].passwordHash);
    assert.equal(a.queues, undefined);
    assert.deepEqual(a.skills, { fr: 50 });
    const q = setQueue(base(), 'support', { wrapUpS: 0 }).people.queues[0];
    assert.deepEqual([q.ringTimeoutS, q.wrapUpS], [20, 0]);
    const added = addQueue(base(), { name: 'sales' }).people.queues[1];
    assert.deepEqual([added.ringTimeoutS, added.wrapUpS], [20, 10], 'the schema defaults');
  });

  it('a pushed agent with a clear password is refused', () => {
    assert.match(clearPasswordProblem([{ name: 'a', passwordHash: 'x' }, { name: 'b', password: 'p' }]) ?? '', /agents\.1: a pushed agent never carries a clear password/);
    assert.equal(clearPasswordProblem([{ name: 'a', passwordHash: 'x' }]), undefined);
  });
});

describe('CSV import of agents', () => {
  it('parses quotes, commas and line breaks in cells, CRLF, a BOM, and keeps line numbers', () => {
    const rows = parseCsv('\uFEFFname,displayName\r\nann,"Ann, ""the"" Boss"\r\n\r\nbo,"two\nlines"\ncy,Cy\n');
    assert.deepEqual(rows, [
      { line: 1, cells: ['name', 'displayName'] },
      { line: 2, cells: ['ann', 'Ann, "the" Boss'] },
      { line: 4, cells: ['bo', 'two\nlines'] },
      { line: 6, cells: ['cy', 'Cy'] },
    ]);
  });

  it('reads queues and skills cells; reports every problem with its line', () => {
    const ok = agentsFromCsv('name,queues,skills,mustChangePassword\nann,support;sales,fr=70;de=20,no\n');
    assert.deepEqual(ok.errors, []);
    assert.deepEqual(ok.agents, [{ line: 2, agent: { name: 'ann', queues: ['support', 'sales'], skills: { fr: 70, de: 20 }, mustChangePassword: false } }]);
    const bad = agentsFromCsv('name,queues,skills\nann,support\nbo,support,fr\n');
    assert.deepEqual(bad.errors, ['line 2: 2 cells, the header has 3', 'line 3: skills: "fr" is not name=level']);
    assert.deepEqual(agentsFromCsv('nom,queues\n').errors, ['line 1: unknown column "nom" (columns: name, displayName, password, passwordHash, queues, skills, role, mustChangePassword)', 'line 1: the header has no "name" column']);
  });
});
