import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/**
 * `speech.fork:` in ccedge.yaml — streaming a call's audio to an on-prem AudioHook endpoint.
 * Absent: no fork. Endpoints must be literal addresses inside `allow` (private ranges the installer
 * names): a host name is refused because a resolver could send the audio off site, and an address
 * outside `allow` is refused here, at config load, not when the first call is bridged.
 */

export const FORK_LIMITS = { endpoints: 16, allow: 64, policies: 500, apiKeyChars: 512 } as const;

const tlsSchema = z
  .object({
    /** PEM bundle that signed the endpoint's certificate (default: the system's). */
    caFile: z.string().min(1).optional(),
    /** mTLS: this box's client certificate and key. */
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    /** Name checked against the endpoint's certificate (its URL is a literal address). */
    servername: z.string().min(1).max(253).optional(),
  })
  .strict()
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), { message: 'certFile and keyFile go together' });

const endpointSchema = z
  .object({
    /** ws://127.0.0.1:9100/audiohook or wss://10.0.4.7/audiohook. */
    url: z.string().regex(/^wss?:\/\//, 'must start with ws:// or wss://'),
    /** Sent as X-API-KEY (AudioHook's key header). */
    apiKey: z.string().min(1).max(FORK_LIMITS.apiKeyChars).optional(),
    tls: tlsSchema.optional(),
    /** AudioHook's organizationId in `open` (a UUID the endpoint may expect; default all zeros). */
    organizationId: z.uuid().default('00000000-0000-0000-0000-000000000000'),
    /** Above this many bytes queued on the socket, audio is dropped (and counted) instead of queued. */
    maxBufferedKb: z.number().int().min(4).max(4096).default(64),
    /** The endpoint must answer `open` within this long, or the fork ends (the call does not notice). */
    openTimeoutMs: z.number().int().min(200).max(60_000).default(5000),
    /** Client pings at this interval; three unanswered intervals end the fork. */
    pingS: z.number().min(0.5).max(300).default(5),
  })
  .strict()
  .refine((e) => e.apiKey !== undefined || e.tls?.certFile !== undefined, { message: 'needs apiKey or a client certificate (tls.certFile/keyFile)' });

/** Which endpoint a call forks to: an endpoint name, or `none` to opt a queue/intent out of `default`. */
const target = z.string().min(1).max(64);

export const forkConfigSchema = z
  .object({
    /** CIDR ranges an endpoint's address must be in, e.g. ['10.20.0.0/16']. */
    allow: z
      .array(z.string().refine((c) => ipaddr.isValidCIDR(c), { message: 'not a CIDR range (e.g. 10.0.0.0/8, fd00::/8)' }))
      .min(1, 'name the on-site ranges fork endpoints may be in')
      .max(FORK_LIMITS.allow),
    endpoints: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, - and _ (at most 64)'), endpointSchema),
    /** Endpoint for bridged calls no queue/intent entry names; unset: only those listed fork. */
    default: target.optional(),
    /** Per queue name: endpoint or `none`. An intent's entry wins over its queue's. */
    queues: z.record(z.string(), target).default({}),
    intents: z.record(z.string(), target).default({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const names = Object.keys(cfg.endpoints);
    if (names.length > FORK_LIMITS.endpoints) ctx.addIssue({ code: 'custom', path: ['endpoints'], message: `at most ${FORK_LIMITS.endpoints} endpoints` });
    for (const [name, e] of Object.entries(cfg.endpoints)) {
      const problem = endpointAddressProblem(e.url, cfg.allow);
      if (problem) ctx.addIssue({ code: 'custom', path: ['endpoints', name, 'url'], message: problem });
    }
    const check = (where: 'queues' | 'intents' | 'default', key: string | null, value: string): void => {
      if (value !== 'none' && !names.includes(value)) {
        ctx.addIssue({ code: 'custom', path: key === null ? [where] : [where, key], message: `no endpoint named "${value}" in speech.fork.endpoints` });
      }
    };
    if (cfg.default !== undefined) check('default', null, cfg.default);
    for (const [k, v] of Object.entries(cfg.queues)) check('queues', k, v);
    for (const [k, v] of Object.entries(cfg.intents)) check('intents', k, v);
    if (Object.keys(cfg.queues).length + Object.keys(cfg.intents).length > FORK_LIMITS.policies) {
      ctx.addIssue({ code: 'custom', path: ['queues'], message: `at most ${FORK_LIMITS.policies} queue and intent entries` });
    }
  });

export type ForkConfig = z.infer<typeof forkConfigSchema>;
export type ForkEndpointConfig = ForkConfig['endpoints'][string];

/** The literal address a fork URL connects to (`localhost` is 127.0.0.1), or null for a host name. */
export function endpointAddress(url: string): string | null {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return null;
  }
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === 'localhost') return '127.0.0.1';
  return isIP(host) === 0 ? null : host;
}

/** True when `address` (a literal IPv4/IPv6, IPv4-mapped forms included) is inside one of `allow`. */
export function addressAllowed(address: string, allow: readonly string[]): boolean {
  if (!ipaddr.isValid(address)) return false;
  const addr = ipaddr.process(address);
  return allow.some((cidr) => {
    if (!ipaddr.isValidCIDR(cidr)) return false;
    const [range, bits] = ipaddr.parseCIDR(cidr);
    return addr.kind() === range.kind() && addr.match(range, bits);
  });
}

/** Why a fork URL may not be used (null: fine). ws:// (clear text) only to this box's loopback. */
function endpointAddressProblem(url: string, allow: readonly string[]): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (parsed.username || parsed.password) return 'credentials go in apiKey or tls, not in the URL';
  const address = endpointAddress(url);
  if (address === null) return `host "${parsed.hostname}" is a name: use a literal on-site address (names could resolve off site)`;
  if (!addressAllowed(address, allow)) return `address ${address} is outside speech.fork.allow (${allow.join(', ')}): audio never leaves the site`;
  if (parsed.protocol === 'ws:' && !ipaddr.process(address).range().startsWith('loopback')) {
    return 'ws:// sends audio in clear text: use wss:// for an endpoint that is not on this box';
  }
  return null;
}
