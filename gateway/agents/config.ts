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
