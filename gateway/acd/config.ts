/**
 * Config sections of the ACD, `agents:` and `queues:`, for the gateway's config schema to include.
 * Cross-references (an agent's `queues` naming a configured queue) are checked by acdConfigIssues,
 * which the gateway's superRefine calls because it sees both lists.
 */
import { z } from 'zod';

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64)');

/**
 * Size limits of the ACD sections. Config also arrives from the cloud (`config/desired`), and
 * every queue costs a KPI snapshot, a retained MQTT message and per-call scans, so the lists are
 * bounded: generous for one site, far from what stalls the box (100,000 queues took 7 s of event
 * loop and 700 MB; issue 13).
 */
export const ACD_LIMITS = {
  /** `queues:` entries. */
  queues: 500,
  /** `agents:` entries. */
  agents: 5_000,
  /** Skills of one agent, required skills of one queue. */
  skills: 100,
} as const;

/** A record (skills) with at most `max` keys. */
function boundedKeys<T extends z.ZodType>(record: T, max: number, what: string) {
  return record.refine((r) => typeof r !== 'object' || r === null || Object.keys(r).length <= max, { message: `at most ${max} ${what}` });
}

/** `scrypt$N$r$p$saltB64$hashB64`, as written by hashPassword (see password.ts). */
export const SCRYPT_HASH_PATTERN = /^scrypt\$\d{1,8}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;

/**
 * What a person in `agents:` does: `agent` takes calls at /agent; `supervisor` logs in at
 * /supervisor only, watches agents and queues and monitors calls, and is never offered a call.
 */
export const AGENT_ROLES = ['agent', 'supervisor'] as const;
export type AgentRole = (typeof AGENT_ROLES)[number];

export const agentConfigSchema = z
  .object({
    name,
    /** `agent` (default) or `supervisor` (see AGENT_ROLES). */
    role: z.enum(AGENT_ROLES).optional(),
    displayName: z.string().min(1).max(128).optional(),
    /** Plain password: hashed when the directory loads and never kept; prefer passwordHash. */
    password: z.string().min(1).max(1024).optional(),
    passwordHash: z.string().regex(SCRYPT_HASH_PATTERN, 'must be scrypt$N$r$p$salt$hash (base64)').optional(),
    /** Skill levels 0-100 by skill name: a queue's requiredSkills and the skills-best-match strategy use them. */
    skills: boundedKeys(z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), z.number().int().min(0).max(100)), ACD_LIMITS.skills, 'skills').optional(),
    /** Queues this agent serves; absent = every queue. */
    queues: z.array(name).min(1).max(ACD_LIMITS.queues, `at most ${ACD_LIMITS.queues} queues`).optional(),
    /**
     * passwordHash is a one-time password: the first login must choose a new one, which the box
     * keeps (hashed) in its database. Setting another passwordHash here resets the agent to it.
     */
    mustChangePassword: z.boolean().optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if ((a.password === undefined) === (a.passwordHash === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'give exactly one of password or passwordHash' });
    }
    // A plain password gets a new salt at every start: the "already replaced" check needs a fixed hash.
    if (a.mustChangePassword && a.passwordHash === undefined) {
      ctx.addIssue({ code: 'custom', path: ['mustChangePassword'], message: 'a one-time password must be given as passwordHash (ccedge provision writes one)' });
    }
  });

export const agentsSchema = z.array(agentConfigSchema).max(ACD_LIMITS.agents, `at most ${ACD_LIMITS.agents} agents`).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((a, i) => {
    if (seen.has(a.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate agent name "${a.name}"` });
    seen.add(a.name);
  });
});

const skillName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64)');

/** Where a call goes when it has waited maxWaitS in a queue: another queue, or a callback offer. */
export const overflowTargetSchema = z.union([
  z.object({ queue: name }).strict(),
  z.object({ callback: z.literal(true) }).strict(),
]);

export const queueStrategies = ['longest-idle', 'skills-best-match', 'round-robin'] as const;
export type QueueStrategy = (typeof queueStrategies)[number];

/**
 * One queue. The routing fields are optional and have no zod defaults (so that code and tests can
 * build a QueueConfig with just name/ringTimeoutS/wrapUpS); their defaults are applied by the ACD
 * and documented on each field.
 */
export const queueConfigSchema = z
  .object({
    name,
    /** Seconds an offered call rings at one agent before it goes back to the head of the queue. */
    ringTimeoutS: z.number().int().min(1).max(600).default(20),
    /** Seconds of wrap-up after each call before the agent is available again (0 = none). */
    wrapUpS: z.number().int().min(0).max(3600).default(10),
    /**
     * Which eligible available agent gets the next call (default `longest-idle`):
     * `longest-idle`; `skills-best-match` (highest summed level in requiredSkills — or in
     * primarySkill when requiredSkills is empty — then longest idle); `round-robin` (a pointer
     * rotating over the agents in configured order).
     */
    strategy: z.enum(queueStrategies).optional(),
    /** Skill → minimum level: only agents having every one of these skills at that level or above are offered calls. */
    requiredSkills: boundedKeys(z.record(skillName, z.number().int().min(0).max(100)), ACD_LIMITS.skills, 'required skills').optional(),
    /** skills-best-match without requiredSkills ranks agents by this skill (default: the queue's name). */
    primarySkill: skillName.optional(),
    /**
     * Seconds a call may wait in this queue (counted from when it entered this queue) before
     * `overflow` applies. Needs overflow. A call ringing at an agent is not moved; one that comes
     * back after RONA past its time overflows at once.
     */
    maxWaitS: z.number().int().min(1).max(86_400).optional(),
    /** Where a call that waited maxWaitS goes: `{ queue }` (keeps its queuedAt) or `{ callback: true }` (the gateway offers a callback). */
    overflow: overflowTargetSchema.optional(),
    /** Most calls waiting (not counting ringing) a new call may join; unset = unlimited. */
    maxSize: z.number().int().min(1).max(100_000).optional(),
    /** A new call finding the queue full: `busy` (default; the gateway answers 486 / busy tone) or `{ overflowQueue }`. */
    whenFull: z.union([z.literal('busy'), z.object({ overflowQueue: name }).strict()]).optional(),
    /** Priority points a waiting call gains per minute waited (default 0), so low priorities are not starved. */
    agingPerMinute: z.number().min(0).max(10_000).optional(),
  })
  .strict()
  .superRefine((q, ctx) => {
    if (q.maxWaitS !== undefined && q.overflow === undefined) ctx.addIssue({ code: 'custom', path: ['overflow'], message: 'maxWaitS needs an overflow target ({ queue } or { callback: true })' });
    if (q.overflow !== undefined && q.maxWaitS === undefined) ctx.addIssue({ code: 'custom', path: ['maxWaitS'], message: 'overflow needs maxWaitS' });
    if (q.whenFull !== undefined && q.maxSize === undefined) ctx.addIssue({ code: 'custom', path: ['maxSize'], message: 'whenFull needs maxSize' });
    if (q.overflow && 'queue' in q.overflow && q.overflow.queue === q.name) ctx.addIssue({ code: 'custom', path: ['overflow', 'queue'], message: `queue "${q.name}" overflows into itself` });
    if (q.whenFull && typeof q.whenFull === 'object' && q.whenFull.overflowQueue === q.name) ctx.addIssue({ code: 'custom', path: ['whenFull', 'overflowQueue'], message: `queue "${q.name}" overflows into itself` });
  });

export const queuesSchema = z.array(queueConfigSchema).max(ACD_LIMITS.queues, `at most ${ACD_LIMITS.queues} queues`).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((q, i) => {
    if (seen.has(q.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate queue name "${q.name}"` });
    seen.add(q.name);
  });
  for (const issue of queueGraphIssues(list)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
});

/** The queues a queue can send calls to: its max-wait overflow queue and its whenFull queue. */
export function overflowEdges(q: Pick<QueueConfig, 'overflow' | 'whenFull'>): Array<{ to: string; path: Array<string | number> }> {
  const edges: Array<{ to: string; path: Array<string | number> }> = [];
  if (q.overflow && 'queue' in q.overflow) edges.push({ to: q.overflow.queue, path: ['overflow', 'queue'] });
  if (q.whenFull && typeof q.whenFull === 'object') edges.push({ to: q.whenFull.overflowQueue, path: ['whenFull', 'overflowQueue'] });
  return edges;
}

/**
 * Overflow references between queues: unknown queues and cycles (A → B → A, through either
 * overflow.queue or whenFull.overflowQueue). Paths are relative to the queue list.
 */
export function queueGraphIssues(list: readonly QueueConfig[]): Array<{ path: Array<string | number>; message: string }> {
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const index = new Map<string, number>();
  list.forEach((q, i) => {
    if (!index.has(q.name)) index.set(q.name, i);
  });
  list.forEach((q, i) => {
    for (const e of overflowEdges(q)) {
      if (e.to !== q.name && !index.has(e.to)) issues.push({ path: [i, ...e.path], message: `queue "${q.name}" overflows into unknown queue "${e.to}"` });
    }
  });
  // Cycle detection (self-loops are reported by the queue's own check).
  const state = new Map<string, 'visiting' | 'done'>();
  const reported = new Set<string>();
  const visit = (qName: string, trail: string[]): void => {
    state.set(qName, 'visiting');
    const i = index.get(qName) as number;
    for (const e of overflowEdges(list[i])) {
      if (e.to === qName || !index.has(e.to)) continue;
      const st = state.get(e.to);
      if (st === 'visiting') {
        const cycle = [...trail.slice(trail.indexOf(e.to)), qName, e.to];
        const key = [...new Set(cycle)].sort().join(',');
        if (!reported.has(key)) {
          reported.add(key);
          issues.push({ path: [i, ...e.path], message: `overflow cycle: ${cycle.join(' → ')}` });
        }
      } else if (st === undefined) {
        visit(e.to, [...trail, qName]);
      }
    }
    state.set(qName, 'done');
  };
  for (const q of list) if (!state.has(q.name) && index.get(q.name) !== undefined) visit(q.name, []);
  return issues;
}

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type QueueConfig = z.infer<typeof queueConfigSchema>;

/** Problems that need both lists; paths are relative to the config root (`agents`, `queues`). */
export function acdConfigIssues(agents: readonly AgentConfig[], queues: readonly QueueConfig[]): Array<{ path: Array<string | number>; message: string }> {
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const known = new Set(queues.map((q) => q.name));
  agents.forEach((a, i) => {
    a.queues?.forEach((q, j) => {
      if (!known.has(q)) issues.push({ path: ['agents', i, 'queues', j], message: `agent "${a.name}" names unknown queue "${q}"` });
    });
  });
  return issues;
}
