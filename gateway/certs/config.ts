import { isIP } from 'node:net';
import { z } from 'zod';

/** A DNS name or an address literal that may appear in the server certificate's SANs. */
export const sanNameSchema = z
  .string()
  .min(1)
  .max(253)
  .refine((s) => isIP(s) !== 0 || /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(s), {
    message: 'must be a DNS name (e.g. edge-01.store.example) or an IP address literal',
  });

/**
 * The site certificate store, shared by SIP over TLS and the HTTPS listener (gateway/certs).
 * Without certFile/keyFile a site CA and a server certificate are made at first start under
 * `<dataDir>/keys/` and the server certificate is renewed when its names or expiry call for it.
 */
export const certificatesConfigSchema = z
  .object({
    /**
     * Extra names for the generated server certificate, besides the hostname, the site's
     * non-loopback addresses, webrtc.interfaces and the SIP/HTTP listen addresses (the names the
     * PBX's or the browsers' configuration uses for this box).
     */
    names: z.array(sanNameSchema).max(100, 'at most 100 names').default([]),
    /** The installer's own certificate (PEM); with keyFile it replaces the generated one. */
    certFile: z.string().min(1).optional(),
    /** Its private key (PEM, unencrypted); should be mode 0600. */
    keyFile: z.string().min(1).optional(),
    /** Intermediate certificates sent after certFile (PEM), if certFile does not contain them. */
    chainFile: z.string().min(1).optional(),
    /** Lifetime of a generated server certificate (825 days is what browsers accept for a private CA's leaf). */
    serverValidityDays: z.number().int().min(2).max(825).default(825),
    /** A generated server certificate closer than this to expiry is renewed at start. */
    renewBeforeDays: z.number().int().min(1).max(365).default(30),
    /**
     * Fewer days than this left on the server certificate raises a health alarm and a
     * `certificate.expiry` cloud event (checked at start and daily); a generated one is re-issued first.
     */
    expiryAlarmDays: z.number().int().min(1).max(365).default(30),
    /** How often certificate and key files are checked for changes (a replaced file is used without restart). */
    reloadCheckS: z.number().int().min(1).max(86_400).default(60),
  })
  .strict()
  .refine((c) => (c.certFile === undefined) === (c.keyFile === undefined), { message: 'certFile and keyFile go together' });

export type CertificatesConfig = z.infer<typeof certificatesConfigSchema>;
