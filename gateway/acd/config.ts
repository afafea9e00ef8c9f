/**
 * Config sections of the ACD, `agents:` and `queues:`, for the gateway's config schema to include.
 * Cross-references (an agent's `queues` naming a configured queue) are checked by acdConfigIssues,
 * which the gateway's superRefine calls because it sees both lists.
 */
import { z } from 'zod';

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64)');

/** `scrypt$N$r$p$saltB64$hashB64`, as written by hashPassword (see password.ts). */
export const SCRYPT_HASH_PATTERN = /^scrypt\$\d{1,8}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;

export const agentConfigSchema = z
  .object({
    name,
    displayName: z.string().min(1).max(128).optional(),
    /** Plain password: hashed when the directory loads and never kept; prefer passwordHash. */
    password: z.string().min(1).max(1024).optional(),
    passwordHash: z.string().regex(SCRYPT_HASH_PATTERN, 'must be scrypt$N$r$p$salt$hash (base64)').optional(),
    /** Skill levels 0-100 by skill name; carried for skills-based routing, not used for routing yet. */
    skills: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), z.number().int().min(0).max(100)).optional(),
    /** Queues this agent serves; absent = every queue. */
    queues: z.array(name).min(1).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if ((a.password === undefined) === (a.passwordHash === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'give exactly one of password or passwordHash' });
    }
  });

export const agentsSchema = z.array(agentConfigSchema).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((a, i) => {
    if (seen.has(a.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate agent name "${a.name}"` });
    seen.add(a.name);
  });
});

export const queueConfigSchema = z
  .object({
    name,
    /** Seconds an offered call rings at one agent before it goes back to the head of the queue. */
    ringTimeoutS: z.number().int().min(1).max(600).default(20),
    /** Seconds of wrap-up after each call before the agent is available again (0 = none). */
    wrapUpS: z.number().int().min(0).max(3600).default(10),
  })
  .strict();

export const queuesSchema = z.array(queueConfigSchema).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((q, i) => {
    if (seen.has(q.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate queue name "${q.name}"` });
    seen.add(q.name);
  });
});

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
