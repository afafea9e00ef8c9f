import assert from 'node:assert/strict';
import type { CallEvent, CallRecord } from '../../gateway/store/call-store';
import { runCli, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';
import { WeriftAgent } from './werift-agent';

const CONFIG = {
  calls: { queue: 'general' },
  trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
  intents: [
    { name: 'technical_support', queue: 'level3', priority: 20 },
    { name: 'billing_inquiry', queue: 'billing', priority: 10 },
    { name: 'general', queue: 'general' },
  ],
  routing: { dnis: [{ match: '8005550100', intent: 'billing_inquiry' }], callerPrefixes: [{ prefix: '4930', intent: 'billing_inquiry' }], header: 'X-Intent', defaultIntent: 'general' },
  queues: [
    { name: 'level3', strategy: 'skills-best-match', requiredSkills: { tech: 3 }, ringTimeoutS: 20, wrapUpS: 0 },
    { name: 'billing', requiredSkills: { billing: 1 }, maxWaitS: 2, overflow: { queue: 'general' }, ringTimeoutS: 20, wrapUpS: 0 },
    { name: 'general', ringTimeoutS: 20, wrapUpS: 0 },
  ],
  agents: [
    { name: 'eng', password: 'eng-password', skills: { tech: 4 }, queues: ['level3'] },
    { name: 'junior', password: 'junior-password', skills: { tech: 2 }, queues: ['level3', 'general'] },
    { name: 'bill', password: 'bill-password', skills: { billing: 2 }, queues: ['billing'] },
  ],
};

describe('routing: intents choose the queue, skills choose the agent', function () {
  let daemon: DaemonHandle;
  const agents: Record<string, WeriftAgent> = {};
  const uacs: TestUac[] = [];
  before(async () => {
    daemon = await startDaemon({ config: CONFIG, env: { CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' } });
    for (const name of ['eng', 'junior', 'bill']) {
      agents[name] = await WeriftAgent.login(daemon.httpPort, name, `${name}-password`);
      agents[name].autoAnswer = false;
    }
  });
  after(async () => {
    for (const u of uacs) u.close();
    for (const a of Object.values(agents)) await a.close();
    await daemon?.stop();
  });

  async function call(opts: { to?: string; from?: string; headers?: Record<string, string> }): Promise<TestUac> {
    const uac = await TestUac.create();
    uacs.push(uac);
    assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, opts), 200);
    return uac;
  }
  const rings = (agent: WeriftAgent, caller: string, from = 0): Promise<unknown> =>
    agent.waitFor((m) => m.type === 'ringing' && m.call.caller === caller, 10_000, from);

  it('X-Intent technical_support rings the level-3 engineer, not the junior', async () => {
    agents.eng.available();
    agents.junior.available();
    const uac = await call({ from: '5551001', headers: { 'X-Intent': 'technical_support' } });
    await rings(agents.eng, '5551001');
    assert.ok(!agents.junior.inbox.some((m) => m.type === 'ringing'), 'junior has tech 2 < 3');
    await uac.hangup();
  });

  it('the called number 8005550100 means billing: the billing specialist rings', async () => {
    agents.bill.available();
    const uac = await call({ to: '8005550100', from: '5551002' });
    await rings(agents.bill, '5551002');
    await uac.hangup();
  });

  it('billing waits past maxWaitS with nobody free: the call overflows to general and the junior rings', async () => {
    const billFrom = agents.bill.inbox.length;
    agents.bill.send({ type: 'setState', state: 'away', reason: 'lunch' });
    // Bill must be away before the call comes in, or the ACD may offer it to him first.
    await agents.bill.waitFor((m) => m.type === 'state' && m.state === 'away', 15_000, billFrom);
    const from = agents.junior.inbox.length;
    const uac = await call({ from: '4930777' }); // caller prefix → billing
    await rings(agents.junior, '4930777', from);
    await uac.hangup();
    const rec = (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls')).body.calls.find((c) => c.fromUser === '4930777');
    assert.ok(rec);
    const { body } = await daemon.api<{ events: CallEvent[] }>(`/api/v1/calls/${rec.id}`);
    const queued = body.events.find((e) => e.type === 'call.queued');
    assert.equal(queued?.data.intent, 'billing_inquiry');
    assert.equal(queued?.data.source, 'caller');
    const overflow = body.events.find((e) => e.type === 'call.overflow');
    assert.deepEqual([overflow?.data.from, overflow?.data.to], ['billing', 'general']);
  });

  it('rejects bad routing config at load: unknown queue, overflow cycle', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const YAML = (await import('yaml')).default;
    const dir = mkdtempSync(`${tmpdir()}/ccedge-routing-`);
    const bad = {
      ...CONFIG,
      intents: [...CONFIG.intents, { name: 'sales', queue: 'nowhere' }],
      queues: [
        { name: 'level3', maxWaitS: 5, overflow: { queue: 'general' } },
        { name: 'billing' },
        { name: 'general', maxWaitS: 5, overflow: { queue: 'level3' } },
      ],
    };
    writeFileSync(`${dir}/bad.yaml`, YAML.stringify(bad));
    const r = await runCli(['config', 'validate', `${dir}/bad.yaml`], {});
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /nowhere/);
    assert.match(r.stderr, /cycle/i);
  });
});
