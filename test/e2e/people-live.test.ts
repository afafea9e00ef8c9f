import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FleetConsole } from '../../scripts/fleet-console/fleet-console';
import { waitFor } from '../../sync/test/helpers/cloud';
import { Mosquitto } from '../../sync/test/helpers/mosquitto';
import { hashPassword } from '../../gateway/acd/password';
import { eventually, runCli, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';

interface AgentRow {
  name: string;
  state?: string;
  queues?: string[];
  skills?: Record<string, number>;
  removed?: boolean;
  passwordHash?: string;
  password?: string;
}

/**
 * People and queues changed while calls are up, through the admin API, the CLI and a cloud push
 * (fleet console over mosquitto): new agents take the next call without a restart, a removed
 * agent on a call keeps it until it ends, a removed queue's waiting caller goes to the fallback
 * queue and is answered there.
 */
describe('people and queues are live data (API, CLI, cloud push while calls are up)', function () {
  const site = 'e2e-people';
  const device = 'edge-people';
  const config = {
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
    calls: { queue: 'support' },
    agents: [{ name: 'alice', password: 'alice-password-1', queues: ['support'] }],
    people: { fallbackQueue: 'support' },
  };
  let broker: Mosquitto;
  let daemon: DaemonHandle;
  let fc: FleetConsole;
  const uacs: TestUac[] = [];
  const agents: WeriftAgent[] = [];
  let cliEnv: Record<string, string>;

  const call = async (): Promise<TestUac> => {
    const uac = await TestUac.create({ codec: 'PCMA' });
    uacs.push(uac);
    assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { from: `10${uacs.length}`, to: '8005551000' }), 200);
    return uac;
  };
  const login = async (name: string, password: string): Promise<WeriftAgent> => {
    const a = await WeriftAgent.login(daemon.httpPort, name, password);
    agents.push(a);
    a.available();
    return a;
  };
  const request = async <T>(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`http://127.0.0.1:${daemon.httpPort}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${daemon.adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const agentList = async (): Promise<AgentRow[]> => (await daemon.api<{ agents: AgentRow[] }>('/api/v1/agents')).body.agents;
  const agentIs = (name: string, state: string): Promise<AgentRow> => eventually(async () => (await agentList()).find((a) => a.name === name && a.state === state), 20_000);

  before(async () => {
    broker = await Mosquitto.start(mkdtempSync(path.join(tmpdir(), 'ccedge-mosq-people-')));
    fc = await FleetConsole.connect({ url: `mqtt://127.0.0.1:${broker.port}`, site });
    daemon = await startDaemon({ config, env: { CCEDGE_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`, CCEDGE_SITE_ID: site, CCEDGE_DEVICE_ID: device, CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
    cliEnv = { CCEDGE_DATA_DIR: daemon.dataDir, CCEDGE_HTTP_HOST: '127.0.0.1', CCEDGE_HTTP_PORT: String(daemon.httpPort), CCEDGE_ADMIN_TOKEN: daemon.adminToken };
    await waitFor(async () => (await fc.devices(300)).some((d) => d.device === device && d.online), 20_000, 'device online');
  });
  after(async () => {
    for (const a of agents) await a.close().catch(() => undefined);
    for (const u of uacs) u.close();
    await daemon?.stop();
    await fc?.close();
    await broker?.stop();
  });

  let first: TestUac;

  it('API: an agent added while a call is up logs in and takes the next call; bad requests get coded errors', async () => {
    await login('alice', 'alice-password-1');
    await agentIs('alice', 'available');
    first = await call();
    await agentIs('alice', 'on-call');

    const created = await request<{ agent: AgentRow }>('POST', '/api/v1/agents', { name: 'dave', displayName: 'Dave', password: 'dave-password-1', queues: ['support'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.agent.password, undefined);
    assert.equal(created.body.agent.passwordHash, undefined);
    const dup = await request<{ error: { code: string } }>('POST', '/api/v1/agents', { name: 'dave', password: 'x-password-1' });
    assert.deepEqual([dup.status, dup.body.error.code], [409, 'PEOPLE_EXISTS']);
    const bad = await request<{ error: { code: string; message: string } }>('POST', '/api/v1/agents', { name: 'eve', password: 'eve-password-1', queues: ['nowhere'] });
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'PEOPLE_INVALID']);
    assert.match(bad.body.error.message, /unknown queue "nowhere"/);
    assert.equal((await request('GET', '/api/v1/agents/nobody')).status, 404);

    await login('dave', 'dave-password-1');
    await agentIs('dave', 'available');
    await call();
    await agentIs('dave', 'on-call');
    assert.equal(first.byeReceived, false, 'the first call is still up');
  });

  it('CLI: queues and agents added, changed, listed, imported from CSV (all or nothing, errors by line) and removed', async () => {
    const q = await runCli(['queues', 'add', 'backoffice', '--wrap-up-s', '0'], cliEnv);
    assert.equal(q.code, 0, q.stderr);
    const add = await runCli(['agents', 'add', 'erin', '--display-name', 'Erin', '--queues', 'support,backoffice'], cliEnv);
    assert.equal(add.code, 0, add.stderr);
    const code = /erin\s+([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})/.exec(add.stdout)?.[1];
    assert.ok(code, `a one-time password is printed once: ${add.stdout}`);
    // The one-time password asks for a new one (i17-first's mechanism), then works.
    const first = await fetch(`http://127.0.0.1:${daemon.httpPort}/agent/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ agent: 'erin', password: code }) });
    assert.equal(first.status, 403);
    const set = await runCli(['agents', 'set', 'dave', '--skills', 'french=70'], cliEnv);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual((await agentList()).find((a) => a.name === 'dave')?.skills, { french: 70 });

    const dir = mkdtempSync(path.join(tmpdir(), 'ccedge-csv-'));
    writeFileSync(path.join(dir, 'bad.csv'), 'name,displayName,password,queues\ngus,Gus,gus-password-1,support\nhal,Hal,,nowhere\n"ida",Ida,,support\ngus,Gus 2,,support\n');
    const bad = await runCli(['agents', 'import', path.join(dir, 'bad.csv')], cliEnv);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /line 5: agent "gus" is also on line 2/);
    assert.match(bad.stderr, /nothing imported/);
    writeFileSync(path.join(dir, 'bad2.csv'), 'name,password,queues\ngus,gus-password-1,support\nhal,hal-password-1,nowhere\n');
    const bad2 = await runCli(['agents', 'import', path.join(dir, 'bad2.csv')], cliEnv);
    assert.equal(bad2.code, 1);
    assert.match(bad2.stderr, /hal.*unknown queue "nowhere"/);
    assert.equal((await agentList()).some((a) => a.name === 'gus'), false, 'all or nothing');
    writeFileSync(path.join(dir, 'good.csv'), 'name,displayName,password,queues,skills\ngus,Gus,gus-password-1,support,french=40\nhal,"Hal, Jr.",,support;backoffice,\n');
    const good = await runCli(['agents', 'import', path.join(dir, 'good.csv')], cliEnv);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /imported 2 agents/);
    assert.match(good.stdout, /hal\s+[A-Z0-9]{4}-/);
    const list = await runCli(['agents', 'list', '--json'], cliEnv);
    const listed = JSON.parse(list.stdout) as AgentRow[];
    assert.deepEqual(listed.map((a) => a.name).sort(), ['alice', 'dave', 'erin', 'gus', 'hal']);
    assert.ok(listed.every((a) => a.passwordHash === undefined && a.password === undefined));

    const inUse = await runCli(['queues', 'remove', 'backoffice'], cliEnv);
    assert.notEqual(inUse.code, 0);
    assert.match(inUse.stderr, /PEOPLE_IN_USE.*erin, hal/);
    assert.equal((await runCli(['agents', 'remove', 'hal'], cliEnv)).code, 0);
    assert.equal((await runCli(['agents', 'set', 'erin', '--queues', 'support'], cliEnv)).code, 0);
    const removed = await runCli(['queues', 'remove', 'backoffice'], cliEnv);
    assert.equal(removed.code, 0, removed.stderr);
    const queues = JSON.parse((await runCli(['queues', 'list', '--json'], cliEnv)).stdout) as Array<{ name: string }>;
    assert.deepEqual(queues.map((x) => x.name), ['support']);
  });

  it('cloud push: agents are hot (hashes only), a removed agent on a call stays until it ends, a removed queue’s caller goes to the fallback queue', async () => {
    const clear = await fc.pushConfig(device, 2, { agents: [{ name: 'frank', password: 'frank-password-1' }] });
    assert.match(String(clear.error), /never carries a clear password/);

    const hash = (pw: string): Promise<string> => hashPassword(pw, { N: 1024, r: 8, p: 1 });
    const pushedAgents = [
      { name: 'dave', passwordHash: await hash('dave-password-1'), queues: ['support'] },
      { name: 'frank', passwordHash: await hash('frank-password-1'), queues: ['support'] },
    ];
    // alice (on a call) is left out; a new queue `sales` that nobody serves becomes the entry queue.
    const pushed = await fc.pushConfig(device, 3, { agents: pushedAgents, queues: [{ name: 'support', wrapUpS: 0 }, { name: 'sales', wrapUpS: 0 }], calls: { queue: 'sales' } });
    assert.equal(pushed.error, undefined, JSON.stringify(pushed));
    const alice = await eventually(async () => (await agentList()).find((a) => a.name === 'alice' && a.removed === true), 10_000);
    assert.equal(alice.state, 'on-call', 'removed, but on a call: it stays');
    assert.equal(first.byeReceived, false, 'her call is not cut');
    assert.deepEqual((await agentList()).filter((a) => !a.removed).map((a) => a.name).sort(), ['dave', 'frank']);

    const waiting = await call();
    await eventually(async () => (await daemon.api<{ queues: Array<{ name: string; waiting: number }> }>('/api/v1/queues')).body.queues.find((x) => x.name === 'sales' && x.waiting === 1), 15_000);

    await first.hangup();
    await eventually(async () => !(await agentList()).some((a) => a.name === 'alice'), 15_000);
    const again = await fetch(`http://127.0.0.1:${daemon.httpPort}/agent/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ agent: 'alice', password: 'alice-password-1' }) });
    assert.equal(again.status, 401, 'alice is gone after her call');

    // frank logs in; removing `sales` sends its waiting caller to people.fallbackQueue (support): frank answers.
    await login('frank', 'frank-password-1');
    await agentIs('frank', 'available');
    const removed = await fc.pushConfig(device, 4, { agents: pushedAgents, queues: [{ name: 'support', wrapUpS: 0 }], calls: { queue: 'support' } });
    assert.equal(removed.error, undefined, JSON.stringify(removed));
    await agentIs('frank', 'on-call');
    assert.equal(waiting.byeReceived, false, 'the caller of the removed queue was answered, not dropped');
    const loggedMove = await daemon.waitForLog((l) => l.msg === 'people and queues changed live' && Array.isArray(l.callsMoved) && (l.callsMoved as Array<{ to: string | null }>).some((m) => m.to === 'support'));
    assert.equal(loggedMove.source, 'cloud');
  });
});
