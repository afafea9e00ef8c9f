import { isIP } from 'node:net';
import { z } from 'zod';
import { failureGuardSchema, logLimitSchema } from '../net/limits-config';

const host = z.string().refine((s) => isIP(s) !== 0, { message: 'must be an IPv4 or IPv6 address literal' });

export const HTTP_LIMITS = { tokens: 100 } as const;

/** `http:` in ccedge.yaml: the HTTP listener, admin API identities and its limits (http-server.ts). */
export const httpConfigSchema = z
  .object({
    host: host.default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(8080),
    adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
    /** More API identities: supervisor and compliance (only compliance may play recordings). */
    tokens: z
      .array(z.object({ name: z.string().min(1).max(64), token: z.string().min(16, 'must be at least 16 characters'), role: z.enum(['admin', 'supervisor', 'compliance']) }).strict())
      .max(HTTP_LIMITS.tokens, `at most ${HTTP_LIMITS.tokens} tokens`)
      .default([]),
    /**
     * Largest request body accepted (bytes). Checked against Content-Length before reading and
     * again while reading: past it the request gets 413 and its connection is closed unread.
     */
    maxBodyBytes: z.number().int().min(256).max(16 * 1024 * 1024).default(16_384),
    /** Wrong bearer tokens per source address before it is refused (429) for a while. */
    tokenFailures: failureGuardSchema({ maxFailures: 10, windowS: 60, blockS: 30, maxBlockS: 900 }).prefault({}),
    /** Refused tokens and oversized bodies are logged this much at most (then one summary per interval). */
    log: logLimitSchema.prefault({}),
  })
  .strict();

export type HttpConfig = z.infer<typeof httpConfigSchema>;
