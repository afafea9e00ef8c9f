import { z } from 'zod';

/** `supervisor:` in ccedge.yaml: the supervisor page's live board (supervisor-desk.ts). */
export const supervisorConfigSchema = z
  .object({
    /**
     * Changes reach supervisor pages at most this often (coalesced): a busy site's stream of
     * agent and queue events costs each page one message per interval, not one per event.
     */
    updateEveryMs: z.number().int().min(100).max(60_000).default(1000),
    /** Callers listed per queue (the counts are always complete). */
    callersShown: z.number().int().min(0).max(1000).default(50),
  })
  .strict();

export type SupervisorConfig = z.infer<typeof supervisorConfigSchema>;
