import { z } from 'zod';
import { failureGuardSchema, logLimitSchema } from '../net/limits-config';

/** `agentSessions:` in ccedge.yaml: agent logins, sessions and the signalling WebSocket (agent-sessions.ts). */
export const agentSessionsConfigSchema = z
  .object({
    idleTimeoutS: z.number().int().min(60).max(7 * 86_400).default(43_200),
    /** A page that vanished mid-call has this long to come back before the call ends with BYE. */
    reconnectGraceS: z.number().int().min(1).max(300).default(10),
    /** Failed logins per source address; counted before the password is hashed. */
    loginFailuresPerAddress: failureGuardSchema({ maxFailures: 10, windowS: 60, blockS: 60, maxBlockS: 3600 }).prefault({}),
    /** Failed logins per agent name (guessing one agent's password from many addresses). */
    loginFailuresPerAgent: failureGuardSchema({ maxFailures: 20, windowS: 300, blockS: 30, maxBlockS: 900 }).prefault({}),
    passwordHashing: z
      .object({
        /**
         * scrypt runs at once. Each takes 16 MiB and one libuv pool thread (~50 ms); the pool
         * (4 threads) also serves sqlite3, so more than 1 on a 2-core box slows the database.
         */
        concurrency: z.number().int().min(1).max(16).default(1),
        /** Logins waiting for a hash slot; beyond this a login is answered 503 at once. */
        maxQueue: z.number().int().min(0).max(1000).default(8),
        /** Retry-After (seconds) of that 503. */
        busyRetryAfterS: z.number().int().min(1).max(300).default(2),
      })
      .strict()
      .prefault({}),
    ws: z
      .object({
        /** A connection that has not said hello by then is closed (4000). */
        helloTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
        /** Connections from one address that have not said hello yet; more are refused at the upgrade (HTTP 429). */
        maxPendingPerAddress: z.number().int().min(1).max(10_000).default(20),
        /** The same, for all addresses together (HTTP 503 beyond it). */
        maxPending: z.number().int().min(1).max(100_000).default(200),
        /** Frames a connection may send before hello; the next one closes it (1008). Each is answered with an error. */
        maxFramesBeforeHello: z.number().int().min(1).max(1000).default(5),
      })
      .strict()
      .prefault({}),
    /** Rejected logins and frames are logged this much at most (then one summary line per interval). */
    log: logLimitSchema.prefault({}),
  })
  .strict();

export type AgentSessionsConfig = z.infer<typeof agentSessionsConfigSchema>;

const awayReason = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,31}$/, 'letters, digits, space _ . - (1-32), starting with a letter or digit');
/** Reasons the system sets by itself; an agent cannot pick them, and config may not reuse them. */
export const SYSTEM_AWAY_REASONS = ['login', 'no-answer', 'disconnected', 'media-failed', 'no-microphone'] as const;

/** `agentDesk:` in ccedge.yaml: what the agent page offers for a full shift (agent-desk.ts). */
export const agentDeskConfigSchema = z
  .object({
    /** Away reasons the agent picks from (the **Away reason** select); the first is the Away button's default. */
    awayReasons: z
      .array(awayReason)
      .min(1)
      .max(32)
      .default(['break', 'lunch', 'training', 'meeting'])
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((r, i) => {
          if (seen.has(r)) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate away reason "${r}"` });
          if ((SYSTEM_AWAY_REASONS as readonly string[]).includes(r)) ctx.addIssue({ code: 'custom', path: [i], message: `"${r}" is set by the system; pick another name` });
          seen.add(r);
        });
      }),
    /**
     * CRM screen pop: opened by the agent's browser when it answers (nothing leaves the box).
     * Placeholders {caller} {callerName} {called} {queue} {intent} {callId}, URL-encoded. Unset: none.
     */
    screenPopUrl: z
      .string()
      .max(2000)
      .regex(/^https?:\/\/[^\s]+$/, 'an http:// or https:// URL template')
      .optional(),
    /** Seconds one press of **Extend wrap-up** adds. */
    wrapUpExtendS: z.number().int().min(5).max(600).default(30),
    /** Longest wrap-up in all, extensions included (seconds from the call's end). */
    maxWrapUpS: z.number().int().min(10).max(3600).default(300),
    /** Window of "calls from this number" in the caller context (days). */
    recentCallsDays: z.number().int().min(1).max(365).default(30),
    /** How often the page gets its queues' waiting callers and longest wait (seconds). */
    queueFiguresEveryS: z.number().int().min(1).max(60).default(2),
  })
  .strict();

export type AgentDeskConfig = z.infer<typeof agentDeskConfigSchema>;
