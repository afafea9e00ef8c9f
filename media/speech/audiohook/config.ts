import { z } from 'zod';

/**
 * `speech.fork:` in ccedge.yaml — streaming a call's audio to an on-prem AudioHook endpoint.
 * Absent: no fork.
 */
export const forkConfigSchema = z.object({}).strict();

export type ForkConfig = z.infer<typeof forkConfigSchema>;
