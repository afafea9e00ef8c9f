import { isIP } from 'node:net';
import { z } from 'zod';
import { sanNameSchema } from '../certs/config';

/**
 * `https:` in ccedge.yaml: the HTTPS/WSS listener (http-server.ts) with the site certificate
 * (gateway/certs, the same store SIP over TLS uses). Browsers give a page the microphone only in a
 * secure context, so agents on other PCs need this; plain HTTP then keeps /healthz, /metrics,
 * /ca.crt and /trust and sends other clients that are not on loopback here (301/308).
 */
export const httpsConfigSchema = z
  .object({
    /** Off: no HTTPS listener and no redirects (agents on other PCs then have no microphone). */
    enabled: z.boolean().default(true),
    /** Listen address (CCEDGE_HTTPS_HOST); default: the same as http.host. */
    host: z
      .string()
      .refine((s) => isIP(s) !== 0, { message: 'must be an IPv4 or IPv6 address literal' })
      .optional(),
    /** Listen port (CCEDGE_HTTPS_PORT). */
    port: z.number().int().min(0).max(65535).default(8443),
    /**
     * Names agents type in the browser (e.g. edge-01.store.example): added to the generated
     * server certificate like `certificates.names` (one store; either key works, both are merged).
     */
    names: z.array(sanNameSchema).max(100, 'at most 100 names').default([]),
  })
  .strict();

export type HttpsConfig = z.infer<typeof httpsConfigSchema>;
