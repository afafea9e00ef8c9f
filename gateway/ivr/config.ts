/**
 * The `ivr:` config section: menus of DTMF choices that end in an intent (or a callback request)
 * for the call before it is queued. The gateway's config schema includes `ivrSchema.optional()`;
 * the IVR is off when the key is absent.
 *
 * Everything that can be checked statically is checked here, with the offending path in each
 * issue: the entry menu exists, every `menu:` reference exists, every menu has an exit, choice keys
 * are DTMF digits, prompt names are plain file names, and every menu can reach an intent or a
 * callback (cycles are allowed, a cycle with no way out is not).
 */
import { z } from 'zod';

/** Menu names: also used in logs and call records. */
export const MENU_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Intents are routed on by the ACD (intent → queue), so they share the queue-name alphabet. */
export const INTENT_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/**
 * A prompt is `<dataDir>/prompts/<name>.<ext>`: a plain file name, no path separators, no leading
 * dot (so neither `..` nor hidden files), no extension of its own needed.
 */
export const PROMPT_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/** A choice key: one DTMF digit (0-9 * # A-D), or a short sequence of them (see interDigitTimeoutS). */
export const CHOICE_KEY_PATTERN = /^[0-9*#A-D]{1,8}$/;

const MENU_NAME_MESSAGE = 'menu names are letters, digits, _ - (1-64)';
const CHOICE_KEY_MESSAGE = 'is not DTMF: use digits 0-9 * # A-D (up to 8)';

const menuName = z.string().regex(MENU_NAME_PATTERN, MENU_NAME_MESSAGE);
const promptName = z
  .string()
  .regex(PROMPT_NAME_PATTERN, 'prompt names are plain file names: letters, digits, _ . - (1-64), no path separators, not starting with a dot');

/**
 * A record whose bad keys are reported with our message and the key itself (zod's default is
 * "Invalid key in record"), at the path of the key, alongside any problem in the values.
 */
function keyedRecord<V extends z.ZodType>(what: string, pattern: RegExp, message: string, value: V, max: number) {
  return z
    .record(z.string().regex(pattern), value, {
      error: (iss) => (iss.code === 'invalid_key' ? `${what} "${String(iss.input)}" ${message}` : undefined),
    })
    .refine((r) => Object.keys(r).length <= max, { message: `at most ${max} ${what}s` });
}

/**
 * Size limits of the IVR section (it can arrive from the cloud: bounded like every list there).
 * A DTMF menu has at most 16 single keys; multi-digit keys and many menus are still generous.
 */
export const IVR_LIMITS = {
  /** `ivr.menus` entries. */
  menus: 200,
  /** `choices` of one menu. */
  choices: 100,
} as const;

/** Where a choice (or a menu's failure) leads: exactly one of intent, menu, callback. */
export const ivrActionSchema = z
  .object({
    intent: z.string().regex(INTENT_PATTERN, 'intents are letters, digits, _ . - (1-64)').optional(),
    menu: menuName.optional(),
    callback: z.literal(true, { message: 'callback must be true (omit it otherwise)' }).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    const n = (a.intent !== undefined ? 1 : 0) + (a.menu !== undefined ? 1 : 0) + (a.callback !== undefined ? 1 : 0);
    if (n !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of intent, menu or callback' });
  });

/** Defaults of a speech menu's settings (applied by speechSettings(), so a DTMF menu can refuse them). */
export const SPEECH_MENU_DEFAULTS = {
  minConfidence: 0.5,
  maxSpeechS: 8,
  silenceMs: 800,
  noInputS: 5,
} as const;

/** The keys only a `type: speech` menu may have. */
const SPEECH_ONLY_KEYS = ['minConfidence', 'maxSpeechS', 'silenceMs', 'noInputS', 'intents'] as const;

export const ivrMenuSchema = z
  .object({
    /**
     * dtmf: the caller presses keys. speech: the caller says why they call; the answer is
     * recognised on site against the examples of the menu's intents. A speech menu's `choices`
     * still work (keys pressed during it) and are the fallback after two unrecognised answers.
     */
    type: z.enum(['dtmf', 'speech']).default('dtmf'),
    /** Speech: a decision below this confidence (0..1) asks once more, then falls back to the choices/onFail. */
    minConfidence: z.number().min(0).max(1).optional(),
    /** Speech: the longest answer listened to (seconds). */
    maxSpeechS: z.number().min(1).max(30).optional(),
    /** Speech: the silence that ends an answer (ms). */
    silenceMs: z.number().int().min(200).max(5000).optional(),
    /** Speech: seconds to wait for the caller to start speaking once the prompt has finished. */
    noInputS: z.number().min(1).max(60).optional(),
    /** Speech: the intents the answer may be (each needs `examples`); default every intent with examples. */
    intents: z.array(z.string().regex(INTENT_PATTERN, 'intents are letters, digits, _ . - (1-64)')).min(1).max(100).optional(),
    /** Played on entering the menu and on every retry. */
    prompt: promptName,
    /** Seconds to wait for a digit once the prompt has finished. */
    timeoutS: z.number().min(1).max(120).default(5),
    /** Replays of the menu after a timeout or invalid input, before onFail. */
    retries: z.number().int().min(0).max(10).default(2),
    /** Played after a key that is not a choice (then the menu again, or onFail). */
    invalidPrompt: promptName.optional(),
    choices: keyedRecord('choice key', CHOICE_KEY_PATTERN, CHOICE_KEY_MESSAGE, ivrActionSchema, IVR_LIMITS.choices).default({}),
    /** After the last retry. Absent: the IVR ends with `abandoned` (reason `no-input`). */
    onFail: ivrActionSchema.optional(),
  })
  .strict();

export const ivrSchema = z
  .object({
    /** The menu a call starts in. */
    entry: menuName,
    /** With multi-digit choice keys: how long to wait for the next digit of an ambiguous prefix. */
    interDigitTimeoutS: z.number().min(0.5).max(30).default(3),
    /** A caller still in the IVR after this long leaves it with `abandoned` (reason `max-duration`). */
    maxDurationS: z.number().int().min(10).max(3600).default(300),
    menus: keyedRecord('menu name', MENU_NAME_PATTERN, `is invalid: ${MENU_NAME_MESSAGE}`, ivrMenuSchema, IVR_LIMITS.menus),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    for (const issue of ivrConfigIssues(cfg)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  });

export type IvrAction = z.infer<typeof ivrActionSchema>;

/** A speech menu's settings with defaults applied. */
export interface SpeechMenuSettings {
  minConfidence: number;
  maxSpeechS: number;
  silenceMs: number;
  noInputS: number;
}

export function speechSettings(menu: Pick<IvrMenu, 'minConfidence' | 'maxSpeechS' | 'silenceMs' | 'noInputS'>): SpeechMenuSettings {
  return {
    minConfidence: menu.minConfidence ?? SPEECH_MENU_DEFAULTS.minConfidence,
    maxSpeechS: menu.maxSpeechS ?? SPEECH_MENU_DEFAULTS.maxSpeechS,
    silenceMs: menu.silenceMs ?? SPEECH_MENU_DEFAULTS.silenceMs,
    noInputS: menu.noInputS ?? SPEECH_MENU_DEFAULTS.noInputS,
  };
}

/** The intents a speech menu listens for: its `intents`, else every intent with examples (config order). */
export function speechMenuIntents(menu: Pick<IvrMenu, 'intents'>, intents: ReadonlyArray<{ name: string; examples: readonly string[] }>): string[] {
  if (menu.intents !== undefined) return [...menu.intents];
  return intents.filter((i) => i.examples.length > 0).map((i) => i.name);
}
export type IvrMenu = z.infer<typeof ivrMenuSchema>;
export type IvrConfig = z.infer<typeof ivrSchema>;
/** What the config file may say (defaults not yet applied). */
export type IvrConfigInput = z.input<typeof ivrSchema>;

export interface IvrConfigIssue {
  path: Array<string | number>;
  message: string;
}

/**
 * The cross-reference checks (paths relative to the `ivr` section). Exported so that tests and
 * `ccedge config validate` can call it on an already parsed section.
 */
export function ivrConfigIssues(cfg: Pick<IvrConfig, 'entry' | 'menus'>): IvrConfigIssue[] {
  const issues: IvrConfigIssue[] = [];
  const names = Object.keys(cfg.menus);
  const exists = (m: string): boolean => Object.prototype.hasOwnProperty.call(cfg.menus, m);

  if (names.length === 0) issues.push({ path: ['menus'], message: 'at least one menu is required' });
  if (!exists(cfg.entry)) {
    issues.push({ path: ['entry'], message: `no menu named "${cfg.entry}" in menus${names.length ? ` (have: ${names.join(', ')})` : ''}` });
  }

  for (const name of names) {
    const menu = cfg.menus[name];
    if (!MENU_NAME_PATTERN.test(name)) {
      issues.push({ path: ['menus', name], message: `menu name "${name}" is invalid: ${MENU_NAME_MESSAGE}` });
    }
    const keys = Object.keys(menu.choices);
    for (const key of keys) {
      if (!CHOICE_KEY_PATTERN.test(key)) {
        issues.push({ path: ['menus', name, 'choices', key], message: `choice key "${key}" ${CHOICE_KEY_MESSAGE}` });
      }
      const target = menu.choices[key].menu;
      if (target !== undefined && !exists(target)) {
        issues.push({ path: ['menus', name, 'choices', key, 'menu'], message: `no menu named "${target}" in menus` });
      }
    }
    if (menu.onFail?.menu !== undefined && !exists(menu.onFail.menu)) {
      issues.push({ path: ['menus', name, 'onFail', 'menu'], message: `no menu named "${menu.onFail.menu}" in menus` });
    }
    if (keys.length === 0 && menu.onFail === undefined && menu.type !== 'speech') {
      issues.push({ path: ['menus', name], message: 'a menu with no exits: give at least one choice or an onFail' });
    }
    if (menu.type !== 'speech') {
      for (const k of SPEECH_ONLY_KEYS) {
        if (menu[k] !== undefined) issues.push({ path: ['menus', name, k], message: `${k} is only for menus with type: speech` });
      }
    }
  }

  // Which menus can end the IVR with an intent or callback? Fixed point over menu references.
  const canFinish = new Set<string>();
  const actionsOf = (m: IvrMenu): IvrAction[] => [...Object.values(m.choices), ...(m.onFail ? [m.onFail] : [])];
  let changed = true;
  while (changed) {
    changed = false;
    for (const name of names) {
      if (canFinish.has(name)) continue;
      // A speech menu ends with one of its intents (checked against intents: by ivrSpeechIssues).
      const ok = cfg.menus[name].type === 'speech' || actionsOf(cfg.menus[name]).some((a) => a.intent !== undefined || a.callback === true || (a.menu !== undefined && canFinish.has(a.menu)));
      if (ok) {
        canFinish.add(name);
        changed = true;
      }
    }
  }
  for (const name of names) {
    const menu = cfg.menus[name];
    const hasExit = Object.keys(menu.choices).length > 0 || menu.onFail !== undefined || menu.type === 'speech';
    const danglingOnly = actionsOf(menu).every((a) => a.menu !== undefined && !exists(a.menu));
    // Already reported as "no exits" or as missing menus: one clear message per problem.
    if (canFinish.has(name) || !hasExit || danglingOnly) continue;
    const via = [...new Set(actionsOf(menu).flatMap((a) => (a.menu !== undefined ? [a.menu] : [])))];
    issues.push({
      path: ['menus', name],
      message: `menu "${name}" can never end with an intent or callback: every path from it only leads through menus (${[name, ...via.filter((v) => v !== name)].join(', ')}) that loop back or have no exit`,
    });
  }
  return issues;
}

/** Every intent the menus can end with (choices and onFail), each once, in config order. */
export function ivrIntents(cfg: Pick<IvrConfig, 'menus'>): string[] {
  const out = new Set<string>();
  for (const m of Object.values(cfg.menus)) {
    for (const a of [...Object.values(m.choices), ...(m.onFail ? [m.onFail] : [])]) if (a.intent !== undefined) out.add(a.intent);
    for (const i of m.intents ?? []) out.add(i);
  }
  return [...out];
}

/**
 * Speech menus against `intents:` (paths from the config root): speech needs intent routing, each
 * intent a menu listens for must exist and have examples, and a menu without `intents` needs at
 * least one intent with examples.
 */
export function ivrSpeechIssues(cfg: Pick<IvrConfig, 'menus'>, intents: ReadonlyArray<{ name: string; examples: readonly string[] }>): IvrConfigIssue[] {
  const issues: IvrConfigIssue[] = [];
  const byName = new Map(intents.map((i) => [i.name, i]));
  for (const [name, m] of Object.entries(cfg.menus)) {
    if (m.type !== 'speech') continue;
    const path = ['ivr', 'menus', name];
    if (m.intents === undefined) {
      if (!intents.some((i) => i.examples.length > 0)) issues.push({ path, message: 'a speech menu needs intents with examples (intents[].examples)' });
      continue;
    }
    m.intents.forEach((intent, j) => {
      const def = byName.get(intent);
      if (def === undefined) issues.push({ path: [...path, 'intents', j], message: `intent "${intent}" is not defined in intents` });
      else if (def.examples.length === 0) issues.push({ path: [...path, 'intents', j], message: `intent "${intent}" has no examples (intents[].examples): a speech menu cannot recognise it` });
    });
  }
  return issues;
}

/**
 * With intent routing on (a non-empty `intents:` list), every intent an IVR menu can end with must
 * be one of them: otherwise the router would silently ignore the caller's choice. Paths are
 * relative to the config root (for the gateway's superRefine).
 */
export function ivrIntentIssues(cfg: Pick<IvrConfig, 'menus'>, known: readonly string[]): IvrConfigIssue[] {
  if (known.length === 0) return [];
  const names = new Set(known);
  const issues: IvrConfigIssue[] = [];
  const check = (a: IvrAction, path: Array<string | number>): void => {
    if (a.intent !== undefined && !names.has(a.intent)) issues.push({ path: [...path, 'intent'], message: `intent "${a.intent}" is not defined in intents` });
  };
  for (const [name, m] of Object.entries(cfg.menus)) {
    for (const [key, a] of Object.entries(m.choices)) check(a, ['ivr', 'menus', name, 'choices', key]);
    if (m.onFail) check(m.onFail, ['ivr', 'menus', name, 'onFail']);
  }
  return issues;
}

/** Every prompt name the config refers to (entry first), for preloading. */
export function ivrPromptNames(cfg: Pick<IvrConfig, 'menus'>): string[] {
  const out = new Set<string>();
  for (const m of Object.values(cfg.menus)) {
    out.add(m.prompt);
    if (m.invalidPrompt !== undefined) out.add(m.invalidPrompt);
  }
  return [...out];
}
