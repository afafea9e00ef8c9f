import assert from 'node:assert/strict';
import { z } from 'zod';
import { ivrConfigIssues, ivrIntentIssues, ivrIntents, ivrPromptNames, ivrSchema, type IvrConfigInput } from '../../ivr/config';

/** The example of the issue: main → more (nested), a callback, onFail intents. */
function example(): IvrConfigInput {
  return {
    entry: 'main',
    interDigitTimeoutS: 3,
    menus: {
      main: {
        prompt: 'welcome',
        timeoutS: 5,
        retries: 2,
        invalidPrompt: 'invalid',
        choices: {
          '1': { intent: 'technical_support' },
          '2': { intent: 'billing_inquiry' },
          '3': { menu: 'more' },
          '9': { callback: true },
        },
        onFail: { intent: 'general' },
      },
      more: {
        prompt: 'more-options',
        choices: { '1': { intent: 'sales' }, '0': { menu: 'main' }, '*': { menu: 'main' }, '#': { intent: 'general' } },
      },
    },
  };
}

/** The config as the gateway includes it: issues come out as `ivr.…` paths like every other key. */
const root = z.object({ ivr: ivrSchema.optional() }).strict();

function problems(ivr: unknown): string[] {
  const r = root.safeParse({ ivr });
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`);
}

function expectProblem(ivr: unknown, path: string, message: RegExp): void {
  const found = problems(ivr);
  assert.ok(
    found.some((p) => p.startsWith(`${path}: `) && message.test(p.slice(path.length + 2))),
    `expected an issue at ${path} matching ${String(message)}, got:\n  ${found.join('\n  ') || '(valid)'}`,
  );
}

describe('ivr config', () => {
  it('accepts the documented example and fills defaults', () => {
    const cfg = ivrSchema.parse(example());
    assert.equal(cfg.entry, 'main');
    assert.equal(cfg.interDigitTimeoutS, 3);
    assert.equal(cfg.maxDurationS, 300);
    assert.equal(cfg.menus.more.timeoutS, 5);
    assert.equal(cfg.menus.more.retries, 2);
    assert.equal(cfg.menus.more.onFail, undefined);
    assert.deepEqual(cfg.menus.main.choices['9'], { callback: true });
    assert.deepEqual(ivrPromptNames(cfg).sort(), ['invalid', 'more-options', 'welcome']);
  });

  it('is optional in the main config (IVR off when absent)', () => {
    assert.deepEqual(problems(undefined), []);
  });

  it('accepts cycles between menus when a leaf is reachable', () => {
    const cfg = example();
    cfg.menus.more.onFail = { menu: 'main' };
    assert.deepEqual(problems(cfg), []);
  });

  it('accepts a menu whose only exit is onFail, and multi-digit keys', () => {
    const cfg = example();
    cfg.menus.main.choices = { '12': { intent: 'a' }, '1': { intent: 'b' }, '*0': { menu: 'more' } };
    cfg.menus.more = { prompt: 'more', onFail: { intent: 'general' } };
    assert.deepEqual(problems(cfg), []);
  });

  it('rejects an entry that is not a menu, naming it', () => {
    const cfg = example();
    cfg.entry = 'start';
    expectProblem(cfg, 'ivr.entry', /no menu named "start".*main, more/);
  });

  it('rejects a choice leading to a menu that does not exist', () => {
    const cfg = example();
    cfg.menus.main.choices = { ...cfg.menus.main.choices, '4': { menu: 'missing' } };
    expectProblem(cfg, 'ivr.menus.main.choices.4.menu', /no menu named "missing"/);
  });

  it('rejects an onFail leading to a menu that does not exist', () => {
    const cfg = example();
    cfg.menus.main.onFail = { menu: 'nowhere' };
    expectProblem(cfg, 'ivr.menus.main.onFail.menu', /no menu named "nowhere"/);
  });

  it('rejects a menu with no exits', () => {
    const cfg = example();
    cfg.menus.more = { prompt: 'more', choices: {} };
    expectProblem(cfg, 'ivr.menus.more', /a menu with no exits/);
    cfg.menus.more = { prompt: 'more' };
    expectProblem(cfg, 'ivr.menus.more', /a menu with no exits/);
  });

  it('rejects menus whose every path loops without an intent or callback', () => {
    const cfg: IvrConfigInput = {
      entry: 'main',
      menus: {
        main: { prompt: 'welcome', choices: { '1': { intent: 'sales' }, '2': { menu: 'a' } } },
        a: { prompt: 'a', choices: { '1': { menu: 'b' } }, onFail: { menu: 'a' } },
        b: { prompt: 'b', choices: { '0': { menu: 'a' } } },
      },
    };
    expectProblem(cfg, 'ivr.menus.a', /can never end with an intent or callback.*\(a, b\)/);
    expectProblem(cfg, 'ivr.menus.b', /can never end with an intent or callback/);
    assert.ok(!problems(cfg).some((p) => p.startsWith('ivr.menus.main')), 'main can finish');
  });

  it('rejects choice keys that are not DTMF digits', () => {
    for (const key of ['x', 'E', '1 ', '', 'a', '123456789', '+']) {
      const cfg = example();
      cfg.menus.main.choices = { ...cfg.menus.main.choices, [key]: { intent: 'x' } };
      expectProblem(cfg, `ivr.menus.main.choices.${key}`, /is not DTMF: use digits 0-9 \* # A-D/);
    }
  });

  it('rejects prompt names that are not plain file names', () => {
    for (const name of ['../etc/passwd', 'a/b', 'a\\b', '..', '.hidden', '', 'x'.repeat(65), 'we come', 'nul\0']) {
      const cfg = example();
      cfg.menus.main.prompt = name;
      expectProblem(cfg, 'ivr.menus.main.prompt', /plain file names/);
      const cfg2 = example();
      cfg2.menus.main.invalidPrompt = name;
      expectProblem(cfg2, 'ivr.menus.main.invalidPrompt', /plain file names/);
    }
  });

  it('rejects an action that is not exactly one of intent, menu, callback', () => {
    const cfg = example();
    cfg.menus.main.choices = { '1': { intent: 'a', menu: 'more' }, '2': {}, '3': { intent: 'ok' } };
    expectProblem(cfg, 'ivr.menus.main.choices.1', /exactly one of intent, menu or callback/);
    expectProblem(cfg, 'ivr.menus.main.choices.2', /exactly one of intent, menu or callback/);
  });

  it('rejects callback: false, bad intents, bad menu names and unknown keys', () => {
    const cfg = example() as Record<string, unknown> & IvrConfigInput;
    cfg.menus.main.choices = { '1': { callback: false as unknown as true }, '2': { intent: 'no spaces' }, '3': { menu: 'more' } };
    cfg.menus['bad name'] = { prompt: 'x', onFail: { intent: 'general' } };
    (cfg.menus.more as Record<string, unknown>).promt = 'typo';
    expectProblem(cfg, 'ivr.menus.main.choices.1.callback', /callback must be true/);
    expectProblem(cfg, 'ivr.menus.main.choices.2.intent', /intents are letters/);
    expectProblem(cfg, 'ivr.menus.bad name', /menu name "bad name" is invalid: menu names are letters/);
    expectProblem(cfg, 'ivr.menus.more', /promt/);
  });

  it('reports a bad choice key together with other problems in the same file', () => {
    const cfg = example();
    cfg.menus.main.choices = { ...cfg.menus.main.choices, x: { intent: 'x' } };
    cfg.menus.main.timeoutS = -3;
    expectProblem(cfg, 'ivr.menus.main.choices.x', /choice key "x" is not DTMF/);
    expectProblem(cfg, 'ivr.menus.main.timeoutS', />=1|1/);
  });

  it('rejects out-of-range timers and retries', () => {
    const cfg = example();
    cfg.interDigitTimeoutS = 0;
    cfg.menus.main.timeoutS = 0;
    cfg.menus.main.retries = -1;
    expectProblem(cfg, 'ivr.interDigitTimeoutS', /0\.5/);
    expectProblem(cfg, 'ivr.menus.main.timeoutS', /1/);
    expectProblem(cfg, 'ivr.menus.main.retries', /0/);
  });

  it('rejects an empty menus map', () => {
    expectProblem({ entry: 'main', menus: {} }, 'ivr.menus', /at least one menu/);
  });

  it('ivrConfigIssues reports paths relative to the section', () => {
    const issues = ivrConfigIssues({ entry: 'x', menus: {} });
    assert.deepEqual(issues.map((i) => i.path.join('.')).sort(), ['entry', 'menus']);
  });

  it('lists the intents of the menus, and checks them against the routing intents', () => {
    const cfg = ivrSchema.parse(example());
    assert.deepEqual(ivrIntents(cfg), ['technical_support', 'billing_inquiry', 'general', 'sales']);
    assert.deepEqual(ivrIntentIssues(cfg, []), [], 'routing off: any intent goes');
    const issues = ivrIntentIssues(cfg, ['technical_support', 'billing_inquiry', 'general']);
    assert.deepEqual(issues, [{ path: ['ivr', 'menus', 'more', 'choices', '1', 'intent'], message: 'intent "sales" is not defined in intents' }]);
  });
});

describe('speech menus in the config', () => {
  const intents = [
    { name: 'billing_inquiry', queue: 'billing', examples: ['My bill  is wrong', 'pay my bill'] },
    { name: 'technical_support', queue: 'tech', examples: ['internet is down'] },
    { name: 'general', queue: 'tech' },
  ];
  const speechIvr = {
    entry: 'main',
    menus: { main: { type: 'speech', prompt: 'say-why', minConfidence: 0.4, choices: { '1': { intent: 'billing_inquiry' } }, onFail: { intent: 'general' } } },
  };

  it('accepts a speech menu, normalises examples and defaults the rest', async () => {
    const { configSchema } = await import('../../config/schema');
    const cfg = configSchema.parse({ site: { id: 's', deviceId: 'd' }, trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }], queues: [{ name: 'billing' }, { name: 'tech' }], intents, routing: { defaultIntent: 'general' }, ivr: speechIvr });
    assert.deepEqual(cfg.intents[0].examples, ['my bill is wrong', 'pay my bill']);
    assert.deepEqual(cfg.intents[2].examples, []);
    const { speechSettings, speechMenuIntents } = await import('../../ivr/config');
    const main = cfg.ivr?.menus.main;
    assert.ok(main);
    assert.equal(main.type, 'speech');
    assert.deepEqual(speechSettings(main), { minConfidence: 0.4, maxSpeechS: 8, silenceMs: 800, noInputS: 5 });
    assert.deepEqual(speechMenuIntents(main, cfg.intents), ['billing_inquiry', 'technical_support']);
  });

  it('refuses speech keys on a DTMF menu, unknown intents and intents without examples', async () => {
    assert.deepEqual(problems({ entry: 'm', menus: { m: { prompt: 'p', silenceMs: 500, choices: { '1': { intent: 'x' } } } } }), ['ivr.menus.m.silenceMs: silenceMs is only for menus with type: speech']);
    const { configSchema } = await import('../../config/schema');
    const r = configSchema.safeParse({
      site: { id: 's', deviceId: 'd' }, trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
      queues: [{ name: 'billing' }, { name: 'tech' }],
      intents,
      routing: { defaultIntent: 'general' },
      ivr: { entry: 'main', menus: { main: { type: 'speech', prompt: 'p', intents: ['general', 'nope'] } } },
    });
    assert.equal(r.success, false);
    const msgs = r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    assert.ok(msgs.includes('ivr.menus.main.intents.0: intent "general" has no examples (intents[].examples): a speech menu cannot recognise it'), msgs.join('\n'));
    assert.ok(msgs.includes('ivr.menus.main.intents.1: intent "nope" is not defined in intents'), msgs.join('\n'));
  });

  it('refuses examples with digits, and one phrase for two intents', async () => {
    const { intentsSchema } = await import('../../routing/config');
    const bad = intentsSchema.safeParse([
      { name: 'a', queue: 'q', examples: ['press 1 for sales'] },
      { name: 'b', queue: 'q', examples: ['hello there'] },
      { name: 'c', queue: 'q', examples: ['Hello there'] },
    ]);
    assert.equal(bad.success, false);
    const msgs = bad.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    assert.ok(msgs.some((m) => m.startsWith('0.examples.0: examples are words of letters')), msgs.join('\n'));
    assert.ok(msgs.includes('2.examples.0: example "hello there" is also an example of intent "b"'), msgs.join('\n'));
  });

  it('a speech menu needs no choices: its intents are its exits', () => {
    assert.deepEqual(problems({ entry: 'm', menus: { m: { type: 'speech', prompt: 'p' } } }), []);
  });
});
