import { z } from 'zod';
import { failureGuardSchema, logLimitSchema } from '../net/limits-config';

/**
 * `setup:` in ccedge.yaml: the HTTPS /setup page's guard against claim-code guessing. Every
 * attempt counts (a wrong code, and any request once setup is done) before the code is compared.
 */
export const setupConfigSchema = z
  .object({
    /** Attempts from one address. */
    attemptsPerAddress: failureGuardSchema({ maxFailures: 5, windowS: 600, blockS: 60, maxBlockS: 3600 }).prefault({}),
    /** Attempts from all addresses together (a guesser rotating addresses on the site network). */
    attemptsTotal: failureGuardSchema({ maxFailures: 30, windowS: 600, blockS: 60, maxBlockS: 3600 }).prefault({}),
    log: logLimitSchema.prefault({}),
  })
  .strict();
export type SetupConfig = z.infer<typeof setupConfigSchema>;
