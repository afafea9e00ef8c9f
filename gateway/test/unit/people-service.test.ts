import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Acd } from '../../acd/acd';
import { AgentDirectory } from '../../acd/agent-directory';
import { configSchema, type Config } from '../../config/schema';
import { addAgents, removeAgent, setAgent } from '../../people/people-edit';
import { PeopleService } from '../../people/people-service';
import { PeopleStore } from '../../people/people-store';
import { Db } from '../../store/db';
import { ManualClock } from './manual-clock';

const FAST = { N: 1024, r: 8, p: 1 };

describe('PeopleService (live changes saved and applied to the directory and the ACD)', () => {
  let dir: string;
  let db: Db;
  let directory: AgentDirectory;
  let acd: Acd;
  let config: Config;
  let service: PeopleService;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'people-'));
    db = await Db.open(path.join(dir, 'ccedge.db'));
    config = configSchema.parse({
      dataDir: dir,
      site: { deviceId: 'test' },
      trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
      queues: [{ name: 'support', wrapUpS: 0 }],
      calls: { queue: 'support' },
      agents: [{ name: 'alice', password: 'alice-password-1' }],
    });
    directory = await AgentDirectory.create(config.agents, { scrypt: FAST });
    acd = new Acd({ clock: new ManualClock(), queues: config.queues, agents: directory.list() });
    service = new PeopleService({ config, store: new PeopleStore(db), acd, directory, log: pino({ level: 'silent' }), scrypt: FAST }, undefined);
  });
  afterEach(async () => {
    directory?.close();
    acd?.close();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the first change saves the whole set with the file’s clear passwords hashed; a new agent can log in', async () => {
    await service.change('api', (p) => addAgents(p, [{ name: 'bob', password: 'bob-password-1' }], { scrypt: FAST }));
    const saved = await new PeopleStore(db).get();
    assert.equal(saved?.version, 1);
    assert.equal(JSON.stringify(saved?.people).includes('alice-password-1'), false, 'no clear password at rest');
    assert.deepEqual(saved?.people.agents.map((a) => a.name), ['alice', 'bob']);
    assert.ok((await directory.login('bob', 'bob-password-1')).token);
    assert.ok((await directory.login('alice', 'alice-password-1')).token, 'alice still logs in with her (now hashed) password');
    assert.deepEqual(config.agents.map((a) => a.name), ['alice', 'bob'], 'the running config sees the change');
  });

  it('a removed agent on a call keeps the session until the call ends; one made supervisor on a call too', async () => {
    await service.change('api', (p) => addAgents(p, [{ name: 'bob', password: 'bob-password-1' }], { scrypt: FAST }));
    const ended: Array<[string, string]> = [];
    directory.on('sessionEnded', (_t, name, reason) => ended.push([name, reason]));
    for (const n of ['alice', 'bob']) {
      await directory.login(n, `${n}-password-1`);
      acd.login(n, { ready: true });
    }
    acd.enqueue('support', { callId: 'c1', caller: '1', callerName: null });
    acd.enqueue('support', { callId: 'c2', caller: '2', callerName: null });
    const onCall = (id: string): string => acd.locate(id)?.agent as string;
    acd.answer(onCall('c1'), 'c1');
    acd.answer(onCall('c2'), 'c2');
    await service.change('api', (p) => ({ people: removeAgent(p, 'alice') }));
    await service.change('api', (p) => setAgent(p, 'bob', { role: 'supervisor' }, { scrypt: FAST }));
    assert.deepEqual(ended, [], 'no session ends while its call is up');
    acd.callEnded(onCall('c1'), 'c1');
    acd.callEnded(onCall('c2'), 'c2');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(ended.sort(), [['alice', 'removed'], ['bob', 'removed']]);
    assert.equal(acd.agent('alice'), undefined);
    assert.equal(acd.agent('bob'), undefined, 'a supervisor takes no calls');
    assert.ok((await directory.login('bob', 'bob-password-1', 'supervisor')).token, 'bob logs in at /supervisor now');
  });

  it('a refused change changes nothing (not saved, not applied)', async () => {
    await assert.rejects(service.change('api', (p) => ({ people: { ...p, queues: [] } })), /PEOPLE_INVALID|calls\.queue/);
    assert.equal(await new PeopleStore(db).get(), undefined);
    assert.deepEqual(acd.snapshot().queues.map((q) => q.name), ['support']);
  });
});
