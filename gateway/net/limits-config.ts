import { z } from 'zod';
import type { FailureGuardOptions } from './failure-guard';

/**
 * The YAML shape of one FailureGuard (seconds, as operators think), with per-use defaults. Modules
 * that count failures (agent logins, bearer tokens) put one of these in their own config schema.
 */
export function failureGuardSchema(d: { maxFailures: number; windowS: number; blockS: number; maxBlockS: number }) {
  return z
    .object({
      /** Failures allowed within windowS; the next attempt is refused (429) until the block ends. */
      maxFailures: z.number().int().min(1).max(10_000).default(d.maxFailures),
      /** Window the failures are counted in. */
      windowS: z.number().int().min(1).max(86_400).default(d.windowS),
      /** First block; each further block of the same key doubles, up to maxBlockS. */
      blockS: z.number().min(0.1).max(86_400).default(d.blockS),
      maxBlockS: z.number().min(0.1).max(7 * 86_400).default(d.maxBlockS),
      /** Keys (addresses, names) tracked at once; the least recently seen is dropped beyond this. */
      maxKeys: z.number().int().min(10).max(1_000_000).default(10_000),
    })
    .strict();
}

export type FailureGuardConfig = z.infer<ReturnType<typeof failureGuardSchema>>;

export function failureGuardOptions(c: FailureGuardConfig): FailureGuardOptions {
  return { maxFailures: c.maxFailures, windowMs: c.windowS * 1000, blockMs: c.blockS * 1000, maxBlockMs: Math.max(c.blockS, c.maxBlockS) * 1000, maxKeys: c.maxKeys };
}

/** LogLimiter settings in YAML. */
export const logLimitSchema = z
  .object({
    /** Lines of one kind logged in full per interval; the rest are counted into one summary line. */
    burst: z.number().int().min(1).max(10_000).default(5),
    intervalS: z.number().int().min(1).max(3600).default(60),
  })
  .strict();
