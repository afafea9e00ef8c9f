import { isIP } from 'node:net';
import { z } from 'zod';
import { hwConfigSchema } from '../../hw/config';
import { ACD_LIMITS, acdConfigIssues, agentsSchema, queuesSchema } from '../acd/config';
import { ivrIntentIssues, ivrSchema, ivrSpeechIssues } from '../ivr/config';
import { ROUTING_LIMITS, routingConfigIssues, routingConfigShape } from '../routing/config';
import { kpiConfigSchema } from '../kpi/config';
import { agentDeskConfigSchema, agentSessionsConfigSchema } from '../agents/config';
import { supervisorConfigSchema } from '../supervisor/config';
import { httpConfigSchema } from '../http/config';
import { logLimitSchema } from '../net/limits-config';
import { mqttConfigSchema, Policy, syncConfigSchema } from '../../sync';
import { certificatesConfigSchema } from '../certs/config';
import { httpsConfigSchema } from '../http/https-config';
import { backupConfigSchema } from '../backup/config';
import { setupConfigSchema } from '../setup/config';
import { peopleConfigSchema } from '../people/config';
import { speechConfigSchema } from '../speech/config';
import { mediaConfigSchema } from '../../media';

const port = z.number().int().min(1).max(65535);
const host = z.string().refine((s) => isIP(s) !== 0, { message: 'must be an IPv4 or IPv6 address literal' });

export const cidr = z.string().refine(
  (s) => {
    const [addr, bits, extra] = s.split('/');
    if (extra !== undefined || isIP(addr) === 0) return false;
    if (bits === undefined) return true;
    const max = isIP(addr) === 4 ? 32 : 128;
    return /^\d+$/.test(bits) && Number(bits) <= max;
  },
  { message: 'must be an address or CIDR such as 10.0.0.0/8' },
);

const portRange = z.string().refine(
  (s) => {
    const m = /^(\d+)-(\d+)$/.exec(s);
    if (!m) return false;
    const min = Number(m[1]);
    const max = Number(m[2]);
    return min >= 1024 && max <= 65535 && min < max;
  },
  { message: 'must be MIN-MAX within 1024-65535, e.g. 20000-29999' },
);

/**
 * What one source can make the SIP listener do before it is a known peer, and how long a stream
 * may hold resources. Sources outside every trunk's allow-list never reach the parser at all.
 */
export const sipLimitsSchema = z
  .object({
    /** Largest UDP datagram, or message on a TCP connection (headers + body); larger ones are dropped. */
    maxMessageBytes: z.number().int().min(1024).max(65_535).default(32_768),
    /** SIP TCP connections at once (inbound and outbound). */
    maxConnections: z.number().int().min(1).max(100_000).default(1024),
    /** Inbound SIP TCP connections from one address. */
    maxConnectionsPerSource: z.number().int().min(1).max(100_000).default(64),
    /** A message begun on a TCP connection (or a new connection's first) must be complete within this. */
    messageTimeoutS: z.number().min(0.5).max(300).default(10),
    /** A TCP connection with no traffic for this long is closed, unless a call still uses it. */
    idleTimeoutS: z.number().int().min(5).max(86_400).default(600),
    /** Rejections and drops are logged this much per kind at most, then one summary per interval (metrics count all). */
    log: logLimitSchema.prefault({}),
  })
  .strict();

export const codecName = z.enum(['PCMU', 'PCMA']);

/**
 * Size limits of the sections this module owns (queues, agents, routing and IVR limits live in
 * their modules: ACD_LIMITS, ROUTING_LIMITS, IVR_LIMITS). A config push is parsed whole before the
 * "cannot change while running" check, so cold sections are bounded too.
 */
export const CONFIG_LIMITS = {
  trunks: 64,
  /** CIDRs in one trunk's allow-list. */
  trunkAllow: 1_000,
} as const;

/** A record with at most `max` keys. */
function boundedRecord<T extends z.ZodType>(record: T, max: number, what: string) {
  return record.refine((r) => typeof r !== 'object' || r === null || Object.keys(r).length <= max, { message: `at most ${max} ${what}` });
}

export const trunkSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64)'),
    /** Source addresses allowed to send requests on this trunk (CIDR). */
    allow: z.array(cidr).min(1).max(CONFIG_LIMITS.trunkAllow, `at most ${CONFIG_LIMITS.trunkAllow} entries`),
    /** Optional digest authentication of the PBX. */
    auth: z
      .object({
        realm: z.string().min(1),
        username: z.string().min(1),
        password: z.string().min(1),
        nonceTtlS: z.number().int().min(5).max(3600).default(300),
        /**
         * Wrong digest responses one source address may send within `failureWindowS` before it is
         * blocked (403) for `blockS`; each further block of that address doubles, up to `maxBlockS`.
         */
        maxFailures: z.number().int().min(1).max(1000).default(10),
        failureWindowS: z.number().int().min(1).max(86_400).default(60),
        blockS: z.number().int().min(1).max(86_400).default(60),
        maxBlockS: z.number().int().min(1).max(7 * 86_400).default(3600),
      })
      .strict()
      .optional(),
    codecs: z.array(codecName).min(1).default(['PCMU', 'PCMA']),
    /**
     * Media from the PBX is accepted only from the SDP's address and port. true: a call may latch
     * once to another source (NAT, a PBX sending from another port or address) if that source's
     * address is in `allow`; the SDP's own address and port always stay accepted.
     */
    symmetricRtp: z.boolean().default(false),
    /** Per-trunk cap; the global sip.maxCalls still applies. */
    maxCalls: z.number().int().min(1).optional(),
    /**
     * The PBX's P-Asserted-Identity (else Remote-Party-ID) names the caller for routing, VIP,
     * callbacks and records. Only for a PBX that sets it itself: anyone else could claim any number.
     */
    trustIdentity: z.boolean().default(false),
    /** REFER from the PBX: false → 603 Decline; true → the Refer-To number is dialled via `outbound` (RFC 3515). */
    acceptRefer: z.boolean().default(false),
    /**
     * How an agent's transfer to an extension or number leaves through this trunk. bridge: ccedge
     * dials the target itself (outbound INVITE, needs `outbound`) and joins it to the call, staying in
     * the media path (recording, monitoring and KPIs keep working). refer: ccedge sends REFER on the
     * caller's dialog and the PBX connects the caller itself (RFC 3515); ccedge leaves the call once the
     * PBX's NOTIFY reports success, so the rest of the conversation is neither recorded nor monitored.
     */
    transferMode: z.enum(['refer', 'bridge']).default('bridge'),
    /** Ring time before the call is answered (180 Ringing is sent meanwhile). */
    answerDelayMs: z.number().int().min(0).max(60_000).default(0),
    /**
     * SDES-SRTP (RFC 4568, AES_CM_128_HMAC_SHA1_80) with this PBX. off: plain RTP only (an offer
     * with only RTP/SAVP gets 488); optional: either, as the PBX offers; required: an offer
     * without a usable a=crypto gets 488. Keys travel in SDP: use it with SIP over TLS.
     */
    srtp: z.enum(['off', 'optional', 'required']).default('off'),
    /** SIP over TLS from this trunk's addresses (sip.tls). */
    tls: z
      .object({
        /** The PBX must present a client certificate that caFile (default: the site CA) verifies. */
        requireClientCert: z.boolean().default(false),
        /** PEM bundle of the CAs that may sign the PBX's client certificate. */
        caFile: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** Where outbound calls (queued callbacks) are sent: the PBX's SIP address. */
    outbound: z
      .object({ host: host, port: port.default(5060), transport: z.enum(['udp', 'tcp']).default('udp') })
      .strict()
      .optional(),
  })
  .strict();

const recordingPolicySchema = z
  .object({ record: z.union([z.enum(['all', 'none']), z.number().min(0).max(100)]), retentionDays: z.number().int().min(1).max(36_500).optional() })
  .strict();

export const configSchema = z
  .object({
    site: z
      .object({
        id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ - (1-64)').default('site-1'),
        deviceId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (1-64)'),
      })
      .strict(),
    dataDir: z.string().min(1).default('./var'),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().default({ level: 'info' }),
    sip: z
      .object({
        host: host.default('0.0.0.0'),
        port: port.default(5060),
        /** Address put in Via/Contact/SDP when host is a wildcard; auto-detected if unset. */
        publicAddress: host.optional(),
        udp: z.boolean().default(true),
        tcp: z.boolean().default(true),
        maxCalls: z.number().int().min(1).max(100_000).default(500),
        /** Seconds a 503 asks the PBX to wait. */
        retryAfterS: z.number().int().min(1).max(3600).default(5),
        userAgent: z.string().min(1).max(128).default('ccedge'),
        /**
         * RFC 4028 session timers: the smallest Session-Expires accepted (422 with Min-SE below it).
         * 90 is the RFC's minimum; lower values are for tests only.
         */
        minSessionExpiresS: z.number().int().min(1).max(86_400).default(90),
        /** The interval we ask for when a PBX supports session timers but names none. */
        sessionExpiresS: z.number().int().min(1).max(86_400).default(1800),
        limits: sipLimitsSchema.prefault({}),
        /**
         * SIP over TLS on its own port (same host), with the site certificate (`certificates`).
         * On whenever a certificate exists (one is generated at first start); enabled: false turns it off.
         */
        tls: z
          .object({
            enabled: z.boolean().default(true),
            port: port.default(5061),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** The site certificate store: SIP over TLS and HTTPS (gateway/certs/config.ts). */
    certificates: certificatesConfigSchema.prefault({}),
    rtp: z
      .object({
        host: host.default('0.0.0.0'),
        ports: portRange.default('20000-29999'),
        publicAddress: host.optional(),
        /** Old name of calls.rtpTimeoutS, still honoured when that is unset (setting both differently is an error). */
        inactivityTimeoutS: z.number().int().min(0).max(3600).optional(),
      })
      .strict()
      .prefault({}),
    /** HTTP listener, API identities and request limits (gateway/http/config.ts). */
    http: httpConfigSchema.prefault({}),
    /** HTTPS/WSS with the site certificate; plain HTTP redirects other PCs there (gateway/http/https-config.ts). */
    https: httpsConfigSchema.prefault({}),
    /** The first-run /setup page's attempt limits (gateway/setup/config.ts). */
    setup: setupConfigSchema.prefault({}),
    /** Live changes of agents and queues (admin API, CLI, cloud): see gateway/people/. */
    people: peopleConfigSchema.prefault({}),
    mqtt: mqttConfigSchema.prefault({}),
    sync: syncConfigSchema.prefault({}),
    /** Media worker threads (media/workers/config.ts). */
    media: mediaConfigSchema.prefault({}),
    webrtc: z
      .object({
        /** Addresses ICE gathers host candidates on; default: every non-internal IPv4 (loopback if none). */
        interfaces: z.array(host).min(1).optional(),
        /** UDP ports for ICE/DTLS-SRTP of agent legs. */
        ports: portRange.default('40000-49999'),
      })
      .strict()
      .prefault({}),
    /** Box health, E1 trunks, front panel, watchdog (hw/config.ts); dahdiDir is CCEDGE_DAHDI_DIR. */
    hw: hwConfigSchema.extend({ dahdiDir: z.string().min(1).default('/proc/dahdi') }).prefault({}),
    demo: z.object({ password: z.string().min(1).default('demo') }).strict().default({ password: 'demo' }),
    trunks: z.array(trunkSchema).min(1).max(CONFIG_LIMITS.trunks, `at most ${CONFIG_LIMITS.trunks} trunks`),
    queues: queuesSchema.default([]),
    ...routingConfigShape,
    kpi: kpiConfigSchema.prefault({}),
    recording: z
      .object({
        /** Default for every queue: record all calls, none, or a percentage (0-100). */
        record: z.union([z.enum(['all', 'none']), z.number().min(0).max(100)]).default('all'),
        retentionDays: z.number().int().min(1).max(36_500).default(90),
        /** Below this free space on the data disk, calls are not recorded and running recordings stop (alarm event). */
        minFreeMb: z.number().int().min(0).default(200),
        /** How often free space is checked while recordings run. */
        diskCheckS: z.number().int().min(1).max(3600).default(5),
        /** How often the audit log's head (seq, hash) is sent to the cloud as an anchor, when it changed. */
        anchorEveryS: z.number().int().min(10).max(86_400).default(900),
        /** Per-queue policy overriding the default. */
        queues: boundedRecord(z.record(z.string(), recordingPolicySchema), ACD_LIMITS.queues, 'queue policies').default({}),
        /** Per-intent policy: wins over the queue's (a "payments" intent is never recorded, say). */
        intents: boundedRecord(z.record(z.string(), recordingPolicySchema), ROUTING_LIMITS.intents, 'intent policies').default({}),
      })
      .strict()
      .prefault({}),
    callbacks: z
      .object({
        /** Trunk the callback is dialled through (default: the first trunk with `outbound`). */
        trunk: z.string().optional(),
        /** DTMF key a queued caller presses to be called back (keeps the place in the queue). */
        key: z.string().regex(/^[0-9*#]$/, 'one DTMF key: 0-9, * or #').default('9'),
        maxAttempts: z.number().int().min(1).max(10).default(3),
        retryAfterS: z.number().int().min(1).max(86_400).default(60),
        /** The calling number ccedge presents on callbacks. */
        fromUser: z.string().regex(/^[A-Za-z0-9+._-]{1,32}$/).default('ccedge'),
      })
      .strict()
      .prefault({}),
    agents: agentsSchema.default([]),
    /** Encrypted backups of the database, keys and recordings (gateway/backup/config.ts). */
    backup: backupConfigSchema.prefault({}),
    /** Menus that decide an intent before an answered call is queued; absent: no IVR. */
    ivr: ivrSchema.optional(),
    /** On-site speech: recognition, the AudioHook fork, transcripts (gateway/speech/config.ts). */
    speech: speechConfigSchema.prefault({}),
    /** Agent logins, sessions and the signalling WebSocket (gateway/agents/config.ts). */
    agentSessions: agentSessionsConfigSchema.prefault({}),
    agentDesk: agentDeskConfigSchema.prefault({}),
    supervisor: supervisorConfigSchema.prefault({}),
    calls: z
      .object({
        /** Until agents answer calls, an answered call hears this and ends after maxDurationS. */
        holdTone: z.enum(['hold', 'ringback']).default('hold'),
        maxDurationS: z.number().int().min(1).max(86_400).default(3600),
        codecs: z.array(codecName).min(1).default(['PCMU', 'PCMA']),
        /** Queue every answered call joins (routing by intent comes later); unset: no queue, hold tone only. */
        queue: z.string().min(1).optional(),
        /**
         * No RTP from the PBX for this long while it has not put the call on hold → BYE with Reason,
         * end cause rtp-timeout. Default 60 (when rtp.inactivityTimeoutS is unset too); 0 = off.
         */
        rtpTimeoutS: z.number().int().min(0).max(86_400).optional(),
        /** Parties on one call (caller, agents, outbound legs); monitoring supervisors are not counted. */
        maxParties: z.number().int().min(2).max(16).default(6),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (cfg.sip.tls.enabled && cfg.sip.tls.port === cfg.sip.port && cfg.sip.tcp) {
      ctx.addIssue({ code: 'custom', path: ['sip', 'tls', 'port'], message: 'must differ from sip.port (SIP over TCP listens there)' });
    }
    const names = new Set<string>();
    cfg.trunks.forEach((t, i) => {
      if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: ['trunks', i, 'name'], message: `duplicate trunk name "${t.name}"` });
      names.add(t.name);
    });
    try {
      new Policy(cfg.sync.policy, { hmacKey: 'validation-only-secret!' });
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['sync', 'policy'], message: (e as Error).message });
    }
    for (const i of acdConfigIssues(cfg.agents, cfg.queues)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
    for (const i of routingConfigIssues(cfg, cfg.queues)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
    if (cfg.ivr) {
      for (const i of ivrIntentIssues(cfg.ivr, cfg.intents.map((x) => x.name))) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
      for (const i of ivrSpeechIssues(cfg.ivr, cfg.intents)) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
    }
    cfg.queues.forEach((q, i) => {
      if (q.overflow && 'callback' in q.overflow && !cfg.trunks.some((t) => t.outbound)) {
        ctx.addIssue({ code: 'custom', path: ['queues', i, 'overflow'], message: 'overflow to callback needs a trunk with an outbound address' });
      }
    });
    if (cfg.calls.rtpTimeoutS !== undefined && cfg.rtp.inactivityTimeoutS !== undefined && cfg.calls.rtpTimeoutS !== cfg.rtp.inactivityTimeoutS) {
      ctx.addIssue({ code: 'custom', path: ['rtp', 'inactivityTimeoutS'], message: 'is the old name of calls.rtpTimeoutS; set only calls.rtpTimeoutS' });
    }
    if (cfg.sip.sessionExpiresS < cfg.sip.minSessionExpiresS) {
      ctx.addIssue({ code: 'custom', path: ['sip', 'sessionExpiresS'], message: `must be at least sip.minSessionExpiresS (${cfg.sip.minSessionExpiresS})` });
    }
    cfg.trunks.forEach((t, i) => {
      if (t.acceptRefer && !t.outbound) ctx.addIssue({ code: 'custom', path: ['trunks', i, 'acceptRefer'], message: `trunk "${t.name}" needs an outbound address to dial REFER targets` });
    });
    if (cfg.callbacks.trunk !== undefined) {
      const t = cfg.trunks.find((x) => x.name === cfg.callbacks.trunk);
      if (!t) ctx.addIssue({ code: 'custom', path: ['callbacks', 'trunk'], message: `no trunk named "${cfg.callbacks.trunk}"` });
      else if (!t.outbound) ctx.addIssue({ code: 'custom', path: ['callbacks', 'trunk'], message: `trunk "${t.name}" has no outbound address for callbacks` });
    }
    cfg.routing.forward.forEach((r, i) => {
      const t = cfg.trunks.find((x) => x.name === r.trunk);
      if (!t) ctx.addIssue({ code: 'custom', path: ['routing', 'forward', i, 'trunk'], message: `no trunk named "${r.trunk}"` });
      else if (!t.outbound) ctx.addIssue({ code: 'custom', path: ['routing', 'forward', i, 'trunk'], message: `trunk "${t.name}" has no outbound address to forward calls to` });
    });
    for (const q of Object.keys(cfg.recording.queues)) {
      if (!cfg.queues.some((x) => x.name === q)) ctx.addIssue({ code: 'custom', path: ['recording', 'queues', q], message: `no queue named "${q}"` });
    }
    for (const i of Object.keys(cfg.recording.intents)) {
      if (!cfg.intents.some((x) => x.name === i)) ctx.addIssue({ code: 'custom', path: ['recording', 'intents', i], message: `no intent named "${i}"` });
    }
    if (cfg.calls.queue !== undefined && !cfg.queues.some((q) => q.name === cfg.calls.queue)) {
      ctx.addIssue({ code: 'custom', path: ['calls', 'queue'], message: `no queue named "${cfg.calls.queue}" in queues` });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type TrunkConfig = z.infer<typeof trunkSchema>;
export type CodecName = z.infer<typeof codecName>;

/** A trunk's allow-list compiled once (lib/allow-list.ts). */
export { compileAllowList } from '../../lib/allow-list';
