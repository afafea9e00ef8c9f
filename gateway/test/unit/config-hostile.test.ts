import assert from 'node:assert/strict';
import { ACD_LIMITS } from '../../acd/config';
import { compileLinearPattern, linearPatternProblem, MAX_PATTERN_INPUT, MAX_PATTERN_LENGTH, PatternError } from '../../config/pattern';
import { checkDesiredConfig, rawShapeProblem } from '../../config/live-config';
import { loadConfig } from '../../config/load';
import { IVR_LIMITS } from '../../ivr/config';
import { compileDnisMatch, formatIssues, ROUTING_LIMITS, routingConfigSchema } from '../../routing/config';

/** The embedded demo config: one trunk, queue `support`, agents alice and bob. */
function base() {
  return loadConfig({ env: {}, cwd: '/nonexistent' }).config;
}

function refusal(desired: unknown): string {
  const r = checkDesiredConfig(base(), desired);
  assert.equal(r.ok, false, 'the push must be refused');
  return r.ok ? '' : r.error;
}

describe('hostile config: linear-time patterns', () => {
  it('matches like RegExp.test for ordinary patterns, incl. /.../i', () => {
    const cases: Array<[string, string, string[], string[]]> = [
      ['^80[01]\\d+$', '', ['8001234', '8011'], ['8021234', 'x8001234', '800']],
      ['55', '', ['5551', '1550'], ['5', '545']],
      ['^sales-[a-z]+$', 'i', ['SALES-north', 'sales-EU'], ['sales-', 'xsales-eu']],
      ['^(?:\\+49|0049)30', '', ['+4930123', '004930'], ['+4940']],
      ['[[:digit:]]{3}', '', ['a123'], ['a12b']],
    ];
    for (const [source, flags, yes, no] of cases) {
      const p = compileLinearPattern(source, flags);
      const js = new RegExp(source.replace('[[:digit:]]', '[0-9]'), flags);
      for (const s of yes) assert.equal(p.test(s), true, `/${source}/${flags} should match ${s}`);
      for (const s of no) assert.equal(p.test(s), false, `/${source}/${flags} should not match ${s}`);
      for (const s of [...yes, ...no]) assert.equal(p.test(s), js.test(s), `same answer as RegExp for /${source}/${flags} on ${s}`);
    }
  });

  it('a DNIS rule /.../i compiles to the linear engine and is case-insensitive', () => {
    const m = compileDnisMatch('/^vip-\\d+$/i');
    assert.equal(m.kind, 'regex');
    assert.equal(m.test('VIP-42'), true);
    assert.equal(m.test('vip-42x'), false);
  });

  it('^(a+)+$ against 10,000 a and a ! finishes with the right answer', () => {
    const m = compileDnisMatch('/^(a+)+$/');
    // Input longer than MAX_PATTERN_INPUT never matches, so test the engine itself on the long one.
    const p = compileLinearPattern('^(a+)+$');
    const long = 'a'.repeat(10_000);
    assert.equal(p.test(`${long}!`), false);
    assert.equal(compileLinearPattern('^(a+)+$').test(long), false, 'longer than MAX_PATTERN_INPUT: no match by rule');
    assert.equal(m.test(`${'a'.repeat(MAX_PATTERN_INPUT - 1)}!`), false);
    assert.equal(m.test('a'.repeat(MAX_PATTERN_INPUT)), true);
    assert.equal(m.test('a'.repeat(30) + '!'), false, 'the input that froze V8 for 21 s');
  });

  it('refuses backreferences and lookaround with a message saying so', () => {
    for (const src of ['(a)\\1', '(?<x>a)\\k<x>']) assert.match(linearPatternProblem(src) ?? '', /backreferences/);
    for (const src of ['a(?=b)', 'a(?!b)', '(?<=a)b', '(?<!a)b']) assert.match(linearPatternProblem(src) ?? '', /lookahead\/lookbehind/);
    assert.equal(linearPatternProblem('\\\\1'), undefined, 'an escaped backslash then 1 is no backreference');
    assert.equal(linearPatternProblem('\\(?=x'), undefined, 'an escaped parenthesis is no lookahead');
    assert.throws(() => compileLinearPattern('(a)\\1'), PatternError);
    assert.match(linearPatternProblem('a(') ?? '', /not a valid RE2 regular expression/);
    assert.match(linearPatternProblem('a'.repeat(MAX_PATTERN_LENGTH + 1)) ?? '', /longer than 256/);
    assert.match(linearPatternProblem('a', 'g') ?? '', /unsupported flags/);
  });

  it('the schema refuses such a rule and names the key', () => {
    const r = routingConfigSchema.safeParse({
      queues: [{ name: 'support' }],
      intents: [{ name: 'general', queue: 'support' }],
      routing: { dnis: [{ match: '/^(a)\\1$/', intent: 'general' }], forward: [] },
    });
    assert.equal(r.success, false);
    const lines = formatIssues(r.error?.issues ?? []);
    assert.ok(lines.some((l) => l.startsWith('routing.dnis.0.match: bad regular expression: backreferences')), lines.join('\n'));
  });

  it('a pushed catastrophic pattern is accepted (it is linear here), a backreference is refused', () => {
    const intents = [{ name: 'general', queue: 'support' }];
    const ok = checkDesiredConfig(base(), { intents, routing: { dnis: [{ match: '/^(a+)+$/', intent: 'general' }] } });
    assert.equal(ok.ok, true);
    const err = refusal({ intents, routing: { forward: [], dnis: [{ match: '/(a)\\1/', intent: 'general' }] } });
    assert.match(err, /^routing\.dnis\.0\.match: bad regular expression: backreferences/);
  });
});

describe('hostile config: size limits', () => {
  const many = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

  it('queues, agents, intents, rules, VIP callers, IVR menus: one over the limit is refused naming the key', () => {
    assert.match(refusal({ queues: many(ACD_LIMITS.queues + 1, (i) => ({ name: `q${i}` })) }), /^queues: at most 500 queues/);
    const queues = [{ name: 'support' }];
    const intents = many(ROUTING_LIMITS.intents + 1, (i) => ({ name: `i${i}`, queue: 'support' }));
    assert.match(refusal({ queues, intents }), /(^|; )intents: at most 1000 intents/);
    const one = [{ name: 'general', queue: 'support' }];
    for (const key of ['dnis', 'callerPrefixes'] as const) {
      const list = many(ROUTING_LIMITS.rules + 1, (i) => (key === 'dnis' ? { match: `9${i}`, intent: 'general' } : { prefix: `9${i}`, intent: 'general' }));
      assert.match(refusal({ intents: one, routing: { [key]: list } }), new RegExp(`(^|; )routing\\.${key}: at most 2000 rules`));
    }
    assert.match(refusal({ intents: one, routing: { forward: many(ROUTING_LIMITS.rules + 1, (i) => ({ match: `9${i}`, trunk: 'pbx' })) } }), /(^|; )routing\.forward: at most 2000 rules/);
    assert.match(refusal({ vipCallers: many(ROUTING_LIMITS.vipCallers + 1, (i) => `+1${i}`) }), /entries, at most 10000 per list/);
    assert.equal(checkDesiredConfig(base(), { vipCallers: many(ROUTING_LIMITS.vipCallers, (i) => `+1${i}`) }).ok, true, 'at the limit it is accepted');
    const r = routingConfigSchema.safeParse({ queues: [], vipCallers: many(ROUTING_LIMITS.vipCallers + 1, (i) => `+1${i}`) });
    assert.equal(r.success, false);
    assert.ok(formatIssues(r.error?.issues ?? []).includes('vipCallers: at most 10000 VIP prefixes'));
  });

  it('agents and IVR menus are bounded in their own schemas', async () => {
    const { agentsSchema } = await import('../../acd/config');
    const { ivrSchema } = await import('../../ivr/config');
    const agents = agentsSchema.safeParse(many(ACD_LIMITS.agents + 1, (i) => ({ name: `a${i}`, passwordHash: 'scrypt$16384$8$1$c2FsdA==$aGFzaA==' })));
    assert.equal(agents.success, false);
    assert.ok(formatIssues(agents.error?.issues ?? []).includes('(root): at most 5000 agents'));
    const menus = Object.fromEntries(many(IVR_LIMITS.menus + 1, (i) => [`m${i}`, { prompt: 'p' }]));
    const ivr = ivrSchema.safeParse({ entry: 'm0', menus });
    assert.equal(ivr.success, false);
    assert.ok(formatIssues(ivr.error?.issues ?? []).some((l) => l === 'menus: at most 200 menu names'), formatIssues(ivr.error?.issues ?? []).join('\n'));
  });

  it('100,000 queues are refused by the raw shape walk before zod parses them', () => {
    const err = refusal({ queues: many(100_000, (i) => ({ name: `q${i}` })) });
    assert.equal(err, 'queues: 100000 entries, at most 10000 per list');
    assert.equal(rawShapeProblem({ a: { b: { c: 1 } } }, { entries: 10, depth: 1 }), 'a.b: nested deeper than 1 levels');
    assert.equal(rawShapeProblem({ a: [1, 2, 3] }, { entries: 2, depth: 5 }), 'a: 3 entries, at most 2 per list');
    assert.equal(rawShapeProblem({ a: [1, 2] }, { entries: 2, depth: 5 }), undefined);
  });
});
