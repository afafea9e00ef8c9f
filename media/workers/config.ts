import { availableParallelism } from 'node:os';
import { z } from 'zod';

/** `media`: where calls' media runs. */
export const mediaConfigSchema = z
  .object({
    /**
     * Media worker threads for RTP↔RTP forwarded calls (routing.forward): 'auto' = cores − 1 (at
     * least 1); 0 = every call's media on the main thread.
     */
    workers: z.union([z.literal('auto'), z.number().int().min(0).max(64)]).default('auto'),
  })
  .strict();

export type MediaConfig = z.infer<typeof mediaConfigSchema>;

/** The number of worker threads `workers` means on this machine. */
export function mediaWorkerCount(workers: MediaConfig['workers'], cores = availableParallelism()): number {
  return workers === 'auto' ? Math.max(1, cores - 1) : workers;
}
