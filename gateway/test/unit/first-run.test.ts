import assert from 'node:assert/strict';
import { verifyPassword } from '../../acd/password';
import { applyFirstRun, firstRunSchema, formatOneTimePasswords, oneTimePassword } from '../../setup/first-run';

const FAST = { N: 1024, r: 8, p: 1 };

describe('first-run settings (shared by ccedge provision and /setup)', () => {
  it('one-time passwords: 12 unambiguous characters in three groups, all different', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = oneTimePassword();
      assert.match(p, /^[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}$/);
      seen.add(p);
    }
    assert.equal(seen.size, 200);
  });

  it('adds the queue, routes calls to it, adds agents with hashed one-time passwords and replaces the trunk peers', async () => {
    const doc = { site: { id: 's', deviceId: 'd' }, trunks: [{ name: 'pbx', allow: ['10.0.0.5'], codecs: ['PCMA'] }], queues: [{ name: 'support', wrapUpS: 5 }], agents: [{ name: 'zed', password: 'x' }] };
    const input = firstRunSchema.parse({ trunkPeers: ['10.1.0.7', '10.1.0.0/24'], queue: 'support', agents: ['alice:Alice Martin', 'bob'] });
    const { doc: out, passwords } = await applyFirstRun(doc, input, FAST);
    assert.deepEqual(out.queues, [{ name: 'support', wrapUpS: 5 }], 'an existing queue is kept as it is');
    assert.deepEqual(out.calls, { queue: 'support' });
    assert.deepEqual(out.trunks, [{ name: 'pbx', allow: ['10.1.0.7', '10.1.0.0/24'], codecs: ['PCMA'], outbound: { host: '10.1.0.7' } }]);
    const agents = out.agents as Array<Record<string, unknown>>;
    assert.deepEqual(agents.map((a) => a.name), ['zed', 'alice', 'bob']);
    assert.equal(agents[1].displayName, 'Alice Martin');
    assert.equal(agents[1].mustChangePassword, true);
    assert.equal(await verifyPassword(passwords[0].password, agents[1].passwordHash as string), true);
    assert.ok(!JSON.stringify(out).includes(passwords[0].password), 'never in clear');
    assert.deepEqual(doc.agents, [{ name: 'zed', password: 'x' }], 'the input document is not changed');
    assert.match(formatOneTimePasswords(passwords), /shown only now[\s\S]*alice\s+[A-Z2-9-]{14}\n {2}bob {3}\s*[A-Z2-9-]{14}\n$/);
  });

  it('refuses an agent that exists, a name listed twice, bad names and host names as trunk peers', async () => {
    await assert.rejects(applyFirstRun({ agents: [{ name: 'alice', password: 'x' }] }, firstRunSchema.parse({ queue: 'q', agents: ['alice'] }), FAST), /agent "alice" already exists/);
    assert.equal(firstRunSchema.safeParse({ queue: 'q', agents: ['alice', 'alice:A'] }).success, false);
    assert.equal(firstRunSchema.safeParse({ queue: 'q', agents: ['al ice'] }).success, false);
    assert.equal(firstRunSchema.safeParse({ queue: 'q', agents: [], trunkPeers: ['pbx.example.com'] }).success, false);
    assert.equal(firstRunSchema.safeParse({ queue: 'bad queue', agents: [] }).success, false);
  });
});
