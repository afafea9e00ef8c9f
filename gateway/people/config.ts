import { z } from 'zod';

/** `people:` — how live changes of agents and queues (admin API, CLI, cloud) treat calls. */
export const peopleConfigSchema = z
  .object({
    /**
     * Where the waiting callers of a removed queue go when the queue has no overflow or whenFull
     * queue of its own (used only while it names a configured queue); without one they are ended
     * (cause `queue-removed`).
     */
    fallbackQueue: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64)').optional(),
  })
  .strict();

export type PeopleConfig = z.infer<typeof peopleConfigSchema>;
