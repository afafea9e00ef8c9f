import assert from 'node:assert/strict';
import * as sip from 'sip';
import type { SipRequest } from 'sip';
import { queuesSchema } from '../../acd/config';
import { compileDnisMatch, formatIssues, routingConfigSchema, type RoutingConfig } from '../../routing/config';
import { IntentResolver, type IntentClassifier, type RoutingCall } from '../../routing/intent';
import { Router } from '../../routing/router';
import { routingCallFromInvite } from '../../routing/sip-call';
import { ManualClock } from './manual-clock';

const INTENTS = ['general', 'technical_support', 'billing_inquiry', 'sales', 'vip_desk'];

function rules(over: Partial<ConstructorParameters<typeof IntentResolver>[0]['routing']> = {}) {
  return {
    dnis: [
      { match: '8005550100', intent: 'billing_inquiry' },
      { match: '800*', intent: 'sales' },
      { match: '8005*', intent: 'technical_support' },
      { match: '/^9\\d{3}$/', intent: 'general' },
    ],
    callerPrefixes: [
      { prefix: '+49', intent: 'sales' },
      { prefix: '+4930', intent: 'billing_inquiry' },
    ],
    header: 'X-Intent',
    defaultIntent: 'general',
    classifierTimeoutMs: 500,
    ...over,
  };
}

function rc(over: Partial<RoutingCall> = {}): RoutingCall {
  return { callId: 'c1', fromUser: null, toUser: null, headers: {}, ...over };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe('IntentResolver', () => {
  it('takes each source in order: ivr, dnis, caller, header, classifier, default', async () => {
    const classifier: IntentClassifier = { name: 'nlu', classify: () => 'vip_desk' };
    const r = new IntentResolver({ intents: INTENTS, routing: rules(), classifiers: [classifier] });
    const all = rc({ ivrIntent: 'technical_support', toUser: '8005550100', fromUser: '+4930123', headers: { 'x-intent': 'sales' } });
    assert.deepEqual(await r.resolve(all), { intent: 'technical_support', source: 'ivr', ignored: [] });
    const noIvr = { ...all, ivrIntent: undefined };
    assert.deepEqual(await r.resolve(noIvr), { intent: 'billing_inquiry', source: 'dnis', rule: '8005550100', ignored: [] });
    const noDnis = { ...noIvr, toUser: '5551234' };
    assert.deepEqual(await r.resolve(noDnis), { intent: 'billing_inquiry', source: 'caller', rule: '+4930', ignored: [] });
    const noCaller = { ...noDnis, fromUser: '+1212555' };
    assert.deepEqual(await r.resolve(noCaller), { intent: 'sales', source: 'header', rule: 'x-intent', ignored: [] });
    const noHeader = { ...noCaller, headers: {} };
    assert.deepEqual(await r.resolve(noHeader), { intent: 'vip_desk', source: 'classifier', rule: 'nlu', ignored: [] });
    const plain = new IntentResolver({ intents: INTENTS, routing: rules() });
    assert.deepEqual(await plain.resolve(noHeader), { intent: 'general', source: 'default', ignored: [] });
  });

  it('DNIS: exact beats prefix, the longest prefix beats a shorter one, regexes come last', async () => {
    const r = new IntentResolver({ intents: INTENTS, routing: rules() });
    const dnis = async (to: string) => {
      const x = await r.resolve(rc({ toUser: to }));
      return `${x.source}:${x.intent}:${x.rule ?? ''}`;
    };
    assert.equal(await dnis('8005550100'), 'dnis:billing_inquiry:8005550100');
    assert.equal(await dnis('8005550199'), 'dnis:technical_support:8005*');
    assert.equal(await dnis('8001234567'), 'dnis:sales:800*');
    assert.equal(await dnis('9123'), 'dnis:general:/^9\\d{3}$/');
    assert.equal(await dnis('91234'), 'default:general:', 'the regex is anchored');
    assert.equal(await dnis('700'), 'default:general:');
  });

  it('caller prefixes: the longest matching prefix wins', async () => {
    const r = new IntentResolver({ intents: INTENTS, routing: rules() });
    assert.equal((await r.resolve(rc({ fromUser: '+4930999' }))).intent, 'billing_inquiry');
    assert.equal((await r.resolve(rc({ fromUser: '+4989999' }))).intent, 'sales');
    assert.equal((await r.resolve(rc({ fromUser: '0049' }))).source, 'default');
  });

  it('header: configured name, any case, first value; an unknown intent is skipped and reported', async () => {
    const r = new IntentResolver({ intents: INTENTS, routing: rules({ header: 'X-Call-Reason' }) });
    assert.deepEqual(await r.resolve(rc({ headers: { 'X-CALL-REASON': ' Billing_Inquiry ;confidence=0.8' } })), {
      intent: 'billing_inquiry',
      source: 'header',
      rule: 'x-call-reason',
      ignored: [],
    });
    assert.equal((await r.resolve(rc({ headers: { 'x-intent': 'sales' } }))).source, 'default', 'X-Intent is not the configured header');
    assert.deepEqual(await r.resolve(rc({ headers: { 'x-call-reason': 'refund' } })), {
      intent: 'general',
      source: 'default',
      ignored: [{ source: 'header', value: 'refund', reason: 'unknown-intent' }],
    });
    const off = new IntentResolver({ intents: INTENTS, routing: rules({ header: null }) });
    assert.equal((await off.resolve(rc({ headers: { 'x-intent': 'sales' } }))).source, 'default');
  });

  it('an unknown IVR choice falls through to the next step', async () => {
    const r = new IntentResolver({ intents: INTENTS, routing: rules() });
    assert.deepEqual(await r.resolve(rc({ ivrIntent: 'nonsense', toUser: '8001' })), {
      intent: 'sales',
      source: 'dnis',
      rule: '800*',
      ignored: [{ source: 'ivr', value: 'nonsense', reason: 'unknown-intent' }],
    });
  });

  it('a slow classifier times out (never blocking the call) and the next one gets the time left', async () => {
    const clock = new ManualClock();
    let lateResolve: (v: string) => void = () => undefined;
    const slow: IntentClassifier = { name: 'slow', classify: () => new Promise<string>((res) => (lateResolve = res)) };
    const calls: string[] = [];
    const second: IntentClassifier = {
      name: 'second',
      classify: (call) => {
        calls.push(call.callId);
        return new Promise<string | null>(() => undefined); // never answers either
      },
    };
    const r = new IntentResolver({ intents: INTENTS, routing: rules({ classifierTimeoutMs: 500 }), classifiers: [slow, second], clock });
    let result: Awaited<ReturnType<IntentResolver['resolve']>> | undefined;
    const p = r.resolve(rc()).then((x) => (result = x));
    assert.equal(clock.pending, 1, 'one timeout armed');
    clock.advance(300);
    await settle();
    assert.equal(result, undefined, 'still waiting for the slow classifier');
    lateResolve('sales'); // 300 ms < 500 ms: in time, it wins
    await p;
    assert.deepEqual(result, { intent: 'sales', source: 'classifier', rule: 'slow', ignored: [] });
    assert.equal(clock.pending, 0, 'its timer was cleared');

    // Now one that misses the deadline: the second classifier only gets what is left.
    let late: (v: string) => void = () => undefined;
    const slow2: IntentClassifier = { name: 'slow', classify: () => new Promise<string>((res) => (late = res)) };
    const r2 = new IntentResolver({ intents: INTENTS, routing: rules({ classifierTimeoutMs: 500 }), classifiers: [slow2, second], clock });
    let result2: Awaited<ReturnType<IntentResolver['resolve']>> | undefined;
    const p2 = r2.resolve(rc({ callId: 'c2' })).then((x) => (result2 = x));
    clock.advance(499);
    await settle();
    assert.equal(result2, undefined);
    clock.advance(1);
    await settle();
    assert.deepEqual(calls, [], 'no time left for the second classifier');
    await p2;
    late('sales'); // after the timeout: dropped
    await settle();
    assert.deepEqual(result2, {
      intent: 'general',
      source: 'default',
      ignored: [
        { source: 'classifier', value: 'slow', classifier: 'slow', reason: 'timeout' },
        { source: 'classifier', value: 'second', classifier: 'second', reason: 'timeout' },
      ],
    });
    assert.equal(clock.pending, 0);
  });

  it('classifier errors, unknown answers and null fall through to the next classifier', async () => {
    const clock = new ManualClock();
    const stalls: IntentClassifier = { name: 'a', classify: () => new Promise<string>(() => undefined) };
    let answer: (v: string) => void = () => undefined;
    const b: IntentClassifier = { name: 'b', classify: () => new Promise<string>((res) => (answer = res)) };
    const throws: IntentClassifier = {
      name: 'boom',
      classify: () => {
        throw new Error('nlu down');
      },
    };
    const rejects: IntentClassifier = { name: 'rej', classify: () => Promise.reject(new Error('503')) };
    const unknown: IntentClassifier = { name: 'odd', classify: () => 'astrology' };
    const none: IntentClassifier = { name: 'none', classify: () => null };
    const r = new IntentResolver({ intents: INTENTS, routing: rules({ classifierTimeoutMs: 1000 }), classifiers: [throws, rejects, unknown, none, b, stalls], clock });
    let result: Awaited<ReturnType<IntentResolver['resolve']>> | undefined;
    const p = r.resolve(rc()).then((x) => (result = x));
    await settle();
    clock.advance(999);
    answer('technical_support');
    await p;
    assert.deepEqual(result, {
      intent: 'technical_support',
      source: 'classifier',
      rule: 'b',
      ignored: [
        { source: 'classifier', value: 'boom', classifier: 'boom', reason: 'error', error: 'nlu down' },
        { source: 'classifier', value: 'rej', classifier: 'rej', reason: 'error', error: '503' },
        { source: 'classifier', value: 'astrology', classifier: 'odd', reason: 'unknown-intent' },
      ],
    });
    assert.equal(clock.pending, 0);
  });

  it('classifiers are not consulted when an earlier step decided', async () => {
    let consulted = 0;
    const c: IntentClassifier = {
      name: 'c',
      classify: () => {
        consulted++;
        return 'sales';
      },
    };
    const r = new IntentResolver({ intents: INTENTS, routing: rules(), classifiers: [c] });
    await r.resolve(rc({ headers: { 'x-intent': 'billing_inquiry' } }));
    assert.equal(consulted, 0);
  });

  it('refuses rules naming unknown intents', () => {
    assert.throws(() => new IntentResolver({ intents: INTENTS, routing: rules({ defaultIntent: 'nope' }) }), /defaultIntent names unknown intent "nope"/);
    assert.throws(() => new IntentResolver({ intents: INTENTS, routing: rules({ dnis: [{ match: '1', intent: 'x' }] }) }), /DNIS rule "1"/);
  });

  it('compileDnisMatch: exact, prefix, regex', () => {
    assert.equal(compileDnisMatch('123').kind, 'exact');
    assert.equal(compileDnisMatch('*99').kind, 'exact', 'a star elsewhere than the end is part of the number');
    assert.equal(compileDnisMatch('12*').kind, 'prefix');
    const rx = compileDnisMatch('/^ab/i');
    assert.equal(rx.kind, 'regex');
    assert.ok(rx.test('ABc'));
  });
});

describe('Router', () => {
  const config = (): RoutingConfig =>
    routingConfigSchema.parse({
      queues: [{ name: 'level3' }, { name: 'billing' }, { name: 'general' }],
      intents: [
        { name: 'technical_support', queue: 'level3', priority: 20 },
        { name: 'billing_inquiry', queue: 'billing', priority: 10 },
        { name: 'general', queue: 'general' },
      ],
      routing: { dnis: [{ match: '8005550100', intent: 'billing_inquiry' }] },
      vipCallers: ['+4930', '0800'],
    });

  it('maps the intent to its queue and priority, with the VIP boost', async () => {
    const router = new Router({ config: config() });
    assert.equal(router.enabled, true);
    assert.deepEqual(await router.route(rc({ toUser: '8005550100', fromUser: '555' })), {
      intent: 'billing_inquiry',
      source: 'dnis',
      rule: '8005550100',
      queue: 'billing',
      priority: 10,
      vip: false,
      ignored: [],
    });
    const vip = await router.route(rc({ fromUser: '+4930111', headers: { 'x-intent': 'technical_support' } }));
    assert.deepEqual([vip.queue, vip.priority, vip.vip, vip.source], ['level3', 30, true, 'header']);
    const dflt = await router.route(rc({ fromUser: null }));
    assert.deepEqual([dflt.intent, dflt.queue, dflt.priority], ['general', 'general', 0]);
  });

  it('is disabled without intents', async () => {
    const router = new Router({ config: routingConfigSchema.parse({}) });
    assert.equal(router.enabled, false);
    await assert.rejects(router.route(rc()), /not configured/);
  });

  it('builds a RoutingCall from an INVITE', () => {
    const raw = [
      'INVITE sip:8005550100@10.0.0.5 SIP/2.0',
      'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1',
      'From: "Ann" <sip:%2B4930123@10.0.0.1>;tag=1',
      'To: <sip:8005550100@10.0.0.5>',
      'Call-ID: abc',
      'CSeq: 1 INVITE',
      'X-Intent: billing_inquiry',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const rq = sip.parse(raw) as SipRequest;
    const call = routingCallFromInvite('c9', rq, 'sales');
    assert.equal(call.fromUser, '+4930123');
    assert.equal(call.toUser, '8005550100');
    assert.equal(call.headers['x-intent'], 'billing_inquiry');
    assert.equal(call.ivrIntent, 'sales');
  });
});

describe('routing config', () => {
  const base = {
    queues: [
      { name: 'level3', requiredSkills: { tech: 3 }, strategy: 'skills-best-match' },
      { name: 'billing', maxSize: 10, whenFull: 'busy' },
      { name: 'general', maxWaitS: 120, overflow: { callback: true } },
    ],
    intents: [
      { name: 'technical_support', queue: 'level3', priority: 20 },
      { name: 'billing_inquiry', queue: 'billing' },
      { name: 'general', queue: 'general' },
    ],
  };
  const issues = (cfg: unknown) => {
    const r = routingConfigSchema.safeParse(cfg);
    return r.success ? [] : formatIssues(r.error.issues);
  };

  it('accepts a full config and fills the defaults', () => {
    const cfg = routingConfigSchema.parse({
      ...base,
      routing: { dnis: [{ match: '800*', intent: 'technical_support' }, { match: '/^9\\d+$/', intent: 'general' }], callerPrefixes: [{ prefix: '+49', intent: 'billing_inquiry' }] },
      vipCallers: ['+4930'],
    });
    assert.deepEqual(cfg.routing.header, 'X-Intent');
    assert.equal(cfg.routing.defaultIntent, 'general');
    assert.equal(cfg.routing.vipBoost, 10);
    assert.equal(cfg.routing.classifierTimeoutMs, 500);
    assert.equal(cfg.intents[1].priority, 0);
    assert.equal(cfg.queues[0].strategy, 'skills-best-match');
  });

  it('an intent naming an unknown queue', () => {
    assert.deepEqual(issues({ ...base, intents: [...base.intents, { name: 'x', queue: 'nowhere' }] }), ['intents.3.queue: intent "x" names unknown queue "nowhere"']);
  });

  it('a default intent that is not defined', () => {
    assert.deepEqual(issues({ ...base, routing: { defaultIntent: 'fallback' } }), ['routing.defaultIntent: default intent "fallback" is not defined in intents']);
    assert.deepEqual(issues({ queues: base.queues, intents: [{ name: 'sales', queue: 'billing' }] }), ['routing.defaultIntent: default intent "general" is not defined in intents']);
  });

  it('an overflow into an unknown queue, and overflow cycles (A → B → A, also through whenFull)', () => {
    assert.deepEqual(issues({ ...base, queues: [...base.queues, { name: 'a', maxWaitS: 5, overflow: { queue: 'zz' } }] }), ['queues.3.overflow.queue: queue "a" overflows into unknown queue "zz"']);
    const cycle = issues({
      ...base,
      queues: [...base.queues, { name: 'a', maxWaitS: 5, overflow: { queue: 'b' } }, { name: 'b', maxWaitS: 5, overflow: { queue: 'a' } }],
    });
    assert.deepEqual(cycle, ['queues.4.overflow.queue: overflow cycle: a → b → a']);
    const mixed = issues({
      ...base,
      queues: [...base.queues, { name: 'a', maxSize: 5, whenFull: { overflowQueue: 'b' } }, { name: 'b', maxWaitS: 5, overflow: { queue: 'c' } }, { name: 'c', maxWaitS: 5, overflow: { queue: 'a' } }],
    });
    assert.deepEqual(mixed, ['queues.5.overflow.queue: overflow cycle: a → b → c → a']);
    assert.deepEqual(issues({ ...base, queues: [...base.queues, { name: 'a', maxWaitS: 5, overflow: { queue: 'a' } }] }), ['queues.3.overflow.queue: queue "a" overflows into itself']);
  });

  it('duplicate names and rules, unknown intents in rules, incomplete queue settings, bad regex', () => {
    assert.deepEqual(issues({ ...base, intents: [...base.intents, { name: 'general', queue: 'billing' }] }), ['intents.3.name: duplicate intent name "general"']);
    assert.deepEqual(issues({ ...base, queues: [...base.queues, { name: 'billing' }] }), ['queues.3.name: duplicate queue name "billing"']);
    assert.deepEqual(
      issues({
        ...base,
        routing: {
          dnis: [{ match: '100', intent: 'general' }, { match: '100', intent: 'general' }, { match: '200', intent: 'refunds' }],
          callerPrefixes: [{ prefix: '+1', intent: 'nope' }],
        },
        vipCallers: ['1', '1'],
      }),
      [
        'routing.dnis.1.match: duplicate DNIS match "100"',
        'routing.dnis.2.intent: DNIS rule "200" names unknown intent "refunds"',
        'routing.callerPrefixes.0.intent: caller prefix "+1" names unknown intent "nope"',
        'vipCallers.1: duplicate VIP prefix "1"',
      ],
    );
    assert.deepEqual(issues({ ...base, queues: [{ name: 'q', maxWaitS: 5 }, { name: 'r', overflow: { callback: true } }, { name: 's', whenFull: 'busy' }], intents: [] }), [
      'queues.0.overflow: maxWaitS needs an overflow target ({ queue } or { callback: true })',
      'queues.1.maxWaitS: overflow needs maxWaitS',
      'queues.2.maxSize: whenFull needs maxSize',
    ]);
    const badRx = issues({ ...base, routing: { dnis: [{ match: '/([/', intent: 'general' }] } });
    assert.equal(badRx.length, 1);
    assert.match(badRx[0], /^routing\.dnis\.0\.match: bad regular expression/);
    assert.ok(!queuesSchema.safeParse([{ name: 'q', strategy: 'random' }]).success);
  });
});
