/**
 * Config sections of intelligent routing — `intents:`, `routing:`, `vipCallers:` — for the
 * gateway's config schema to include (spread routingConfigShape into its object and call
 * routingConfigIssues from its superRefine, which sees `queues` too). The queue side (strategy,
 * requiredSkills, overflow, maxSize, aging) lives in gateway/acd/config.ts queueConfigSchema.
 */
import { z } from 'zod';
import { queuesSchema, type QueueConfig } from '../acd/config';
import { compileLinearPattern, linearPatternProblem, MAX_PATTERN_LENGTH } from '../config/pattern';

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64)');

/** A number or SIP user part prefix: digits, letters, + * # . _ - (1-64). */
const numberPrefix = z.string().regex(/^[A-Za-z0-9+*#._-]{1,64}$/, 'letters, digits, + * # . _ - (1-64)');

/** An HTTP/SIP header field name (token characters). */
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, 'a header field name such as X-Intent');

/**
 * Size limits of the routing sections: they arrive from the cloud too, and every rule is checked
 * on every call, so the lists are bounded (generous for one site).
 */
export const ROUTING_LIMITS = {
  /** `intents:` entries. */
  intents: 1_000,
  /** Entries of each of routing.dnis, routing.forward and routing.callerPrefixes. */
  rules: 2_000,
  /** `vipCallers:` prefixes. */
  vipCallers: 10_000,
  /** `intents[].examples` phrases of one intent (each becomes grammar rules and classifier training). */
  examples: 50,
  /** Characters of one example phrase. */
  exampleLength: 120,
} as const;

/**
 * An example of what a caller says for an intent ("my bill is wrong"): lower-case words of letters
 * and apostrophes, single spaces. Speech menus build their grammar from these words, so they must
 * be plain dictionary words (the engine checks them against its dictionary when it builds the grammar).
 */
export const EXAMPLE_PATTERN = /^[a-z']+( [a-z']+)*$/;

const example = z
  .string()
  .transform((s) => s.trim().toLowerCase().replace(/\s+/g, ' '))
  .pipe(
    z
      .string()
      .min(1, 'an empty example')
      .max(ROUTING_LIMITS.exampleLength, `examples are at most ${ROUTING_LIMITS.exampleLength} characters`)
      .regex(EXAMPLE_PATTERN, 'examples are words of letters and apostrophes separated by spaces (no digits or punctuation: spell numbers out)'),
  );

const RULES_MESSAGE = `at most ${ROUTING_LIMITS.rules} rules`;

export type DnisMatchKind = 'exact' | 'prefix' | 'regex';

/** A compiled DNIS `match`: exact user, prefix (`800*`) or regular expression (`/^80[01]\d+$/i`). */
export interface DnisMatcher {
  kind: DnisMatchKind;
  /** Exact: the user; prefix: the prefix without `*`; regex: the source. */
  text: string;
  test(user: string): boolean;
}

/**
 * Compiles a DNIS rule's `match`. `/body/` or `/body/i` is a regular expression (tested against
 * the whole To user: anchor it yourself); a trailing `*` makes a prefix (`800*`); anything else is
 * an exact To user. Regular expressions run on the linear-time engine of config/pattern.ts (RE2
 * syntax: no backreferences or lookaround); throws PatternError for one it refuses.
 */
export function compileDnisMatch(match: string): DnisMatcher {
  const re = /^\/(.+)\/(i?)$/.exec(match);
  if (re) {
    const rx = compileLinearPattern(re[1], re[2]);
    return { kind: 'regex', text: match, test: (u) => rx.test(u) };
  }
  if (match.length > 1 && match.endsWith('*')) {
    const prefix = match.slice(0, -1);
    return { kind: 'prefix', text: prefix, test: (u) => u.startsWith(prefix) };
  }
  return { kind: 'exact', text: match, test: (u) => u === match };
}

const dnisMatch = z
  .string()
  .min(1)
  // The slashes and a flag on top of the longest pattern the engine accepts.
  .max(MAX_PATTERN_LENGTH + 3)
  .superRefine((m, ctx) => {
    const re = /^\/(.+)\/(i?)$/.exec(m);
    if (re) {
      const problem = linearPatternProblem(re[1], re[2]);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `bad regular expression: ${problem}` });
    } else if (!/^[A-Za-z0-9+*#._-]+$/.test(m)) {
      ctx.addIssue({ code: 'custom', message: 'an exact To user, a prefix ending in * (800*), or /regex/ (/regex/i)' });
    }
  });

export const intentSchema = z
  .object({
    name,
    /** The queue calls of this intent wait in. */
    queue: name,
    /** Base priority of its calls (higher is served first; VIP callers add routing.vipBoost). */
    priority: z.number().int().min(0).max(1000).default(0),
    /** What callers say for this intent: a speech IVR menu's grammar and classifier are built from these. */
    examples: z
      .array(example)
      .max(ROUTING_LIMITS.examples, `at most ${ROUTING_LIMITS.examples} examples per intent`)
      .default([]),
  })
  .strict();

export const intentsSchema = z.array(intentSchema).max(ROUTING_LIMITS.intents, `at most ${ROUTING_LIMITS.intents} intents`).superRefine((list, ctx) => {
  const seen = new Set<string>();
  // One phrase meaning two intents would make the grammar match ambiguous.
  const phrases = new Map<string, string>();
  list.forEach((intent, i) => {
    if (seen.has(intent.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate intent name "${intent.name}"` });
    seen.add(intent.name);
    intent.examples.forEach((ex, j) => {
      const other = phrases.get(ex);
      if (other !== undefined && other !== intent.name) ctx.addIssue({ code: 'custom', path: [i, 'examples', j], message: `example "${ex}" is also an example of intent "${other}"` });
      phrases.set(ex, intent.name);
    });
  });
});

/**
 * A call forwarded instead of queued: answered, then bridged RTP↔RTP (no transcoding) to an
 * outbound call placed on `trunk` (which needs an `outbound` address). Overflow to an external
 * number or another PBX.
 */
export const forwardRuleSchema = z
  .object({
    /** Called number (To user), as in dnis rules: exact, prefix (`800*`) or `/regex/`. */
    match: dnisMatch,
    /** The trunk the outbound call is placed through. */
    trunk: name,
    /** The number dialled on that trunk; default: the called number itself. */
    number: numberPrefix.optional(),
  })
  .strict();

export const routingSchema = z
  .object({
    /** Forward rules, checked before intents and queues: exact wins, then the longest prefix, then regexes in order. */
    forward: z.array(forwardRuleSchema).max(ROUTING_LIMITS.rules, RULES_MESSAGE).default([]),
    /**
     * Called number rules: exact wins, then the longest prefix, then regexes in order. `on`: the
     * To user (`called`, default), the number originally called before a diversion (`original`,
     * from Diversion/History-Info; checked first), or `either`.
     */
    dnis: z
      .array(z.object({ match: dnisMatch, intent: name, on: z.enum(['called', 'original', 'either']).optional() }).strict())
      .max(ROUTING_LIMITS.rules, RULES_MESSAGE)
      .default([]),
    /** Caller (From user) prefix rules: the longest matching prefix wins. */
    callerPrefixes: z.array(z.object({ prefix: numberPrefix, intent: name }).strict()).max(ROUTING_LIMITS.rules, RULES_MESSAGE).default([]),
    /** Header from the PBX naming the intent (value must be a known intent); null: not consulted. */
    header: headerName.nullable().default('X-Intent'),
    /** Intent of calls nothing else decided. */
    defaultIntent: name.default('general'),
    /** Priority points added to calls from vipCallers. */
    vipBoost: z.number().int().min(0).max(1000).default(10),
    /** Total time classifiers may take for one call; after it the call goes on to the default intent. */
    classifierTimeoutMs: z.number().int().min(1).max(10_000).default(500),
  })
  .strict();

/** Caller (From user) prefixes whose calls get routing.vipBoost on top of their intent's priority. */
export const vipCallersSchema = z.array(numberPrefix).max(ROUTING_LIMITS.vipCallers, `at most ${ROUTING_LIMITS.vipCallers} VIP prefixes`);

/** Spread into the gateway's config object. */
export const routingConfigShape = {
  intents: intentsSchema.default([]),
  routing: routingSchema.prefault({}),
  vipCallers: vipCallersSchema.default([]),
};

export type ForwardRuleConfig = z.infer<typeof forwardRuleSchema>;
export type IntentConfig = z.infer<typeof intentSchema>;
export type RoutingRulesConfig = z.infer<typeof routingSchema>;
export interface RoutingConfig {
  intents: IntentConfig[];
  routing: RoutingRulesConfig;
  vipCallers: string[];
}

export interface ConfigIssue {
  path: Array<string | number>;
  message: string;
}

/**
 * Problems that need the queues too; paths are relative to the config root. With no intents
 * routing is off (calls go to calls.queue) and defaultIntent is not checked; rules that name
 * intents are still checked.
 */
export function routingConfigIssues(cfg: RoutingConfig, queues: readonly Pick<QueueConfig, 'name'>[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const queueNames = new Set(queues.map((q) => q.name));
  const intentNames = new Set(cfg.intents.map((i) => i.name));
  cfg.intents.forEach((intent, i) => {
    if (!queueNames.has(intent.queue)) issues.push({ path: ['intents', i, 'queue'], message: `intent "${intent.name}" names unknown queue "${intent.queue}"` });
  });
  if (cfg.intents.length > 0 && !intentNames.has(cfg.routing.defaultIntent)) {
    issues.push({ path: ['routing', 'defaultIntent'], message: `default intent "${cfg.routing.defaultIntent}" is not defined in intents` });
  }
  const seenMatch = new Set<string>();
  cfg.routing.dnis.forEach((r, i) => {
    if (!intentNames.has(r.intent)) issues.push({ path: ['routing', 'dnis', i, 'intent'], message: `DNIS rule "${r.match}" names unknown intent "${r.intent}"` });
    if (seenMatch.has(`${r.on ?? 'called'}:${r.match}`)) issues.push({ path: ['routing', 'dnis', i, 'match'], message: `duplicate DNIS match "${r.match}"` });
    seenMatch.add(`${r.on ?? 'called'}:${r.match}`);
  });
  const seenForward = new Set<string>();
  cfg.routing.forward.forEach((r, i) => {
    if (seenForward.has(r.match)) issues.push({ path: ['routing', 'forward', i, 'match'], message: `duplicate forward match "${r.match}"` });
    seenForward.add(r.match);
  });
  const seenPrefix = new Set<string>();
  cfg.routing.callerPrefixes.forEach((r, i) => {
    if (!intentNames.has(r.intent)) issues.push({ path: ['routing', 'callerPrefixes', i, 'intent'], message: `caller prefix "${r.prefix}" names unknown intent "${r.intent}"` });
    if (seenPrefix.has(r.prefix)) issues.push({ path: ['routing', 'callerPrefixes', i, 'prefix'], message: `duplicate caller prefix "${r.prefix}"` });
    seenPrefix.add(r.prefix);
  });
  const seenVip = new Set<string>();
  cfg.vipCallers.forEach((p, i) => {
    if (seenVip.has(p)) issues.push({ path: ['vipCallers', i], message: `duplicate VIP prefix "${p}"` });
    seenVip.add(p);
  });
  return issues;
}

/**
 * The routing sections with the queues, validated on their own (tests, `config validate` of a
 * fragment). The gateway's schema does the same through routingConfigShape + routingConfigIssues.
 */
export const routingConfigSchema = z
  .object({ ...routingConfigShape, queues: queuesSchema.default([]) })
  .strict()
  .superRefine((cfg, ctx) => {
    for (const i of routingConfigIssues(cfg, cfg.queues)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
  });

/** Issues as `path: reason` lines, as the CLI prints them. */
export function formatIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): string[] {
  return issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
}
