import { z } from 'zod';

const threshold = z.number().nullable();

/** `hw.health`: sampling and alarm thresholds (null disables a threshold). */
export const healthConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Seconds between samples. */
    intervalS: z.number().min(1).max(3600).default(15),
    /**
     * Where figures come from. `auto` (default): `proc` on Linux, else `systeminformation`.
     * `proc`: async reads of /proc and /sys, no child process. `systeminformation`: the npm package
     * in a worker thread; on Linux it execSyncs shells (~80 per NIC scan), and each fork of the
     * daemon stalls its event loop (measured: up to ~80-120 ms) — so not the default there.
     * `systeminformation-inline`: on the main thread (measured: 300-800 ms blocked per sample).
     */
    source: z.enum(['auto', 'proc', 'systeminformation', 'systeminformation-inline']).default('auto'),
    /** NICs to report (names); default: all non-loopback. */
    nics: z.array(z.string().min(1)).optional(),
    /** A sample value must cross a threshold this many consecutive samples to raise (and to clear). */
    samplesToChange: z.number().int().min(1).max(20).default(2),
    /** Clearing needs the value back past the threshold by this fraction of it (hysteresis). */
    hysteresisPct: z.number().min(0).max(50).default(5),
    thresholds: z
      .object({
        cpuLoadPct: threshold.default(90),
        memUsedPct: threshold.default(90),
        /** Alarm when free space on the data dir falls BELOW this percent. */
        diskFreePct: threshold.default(10),
        temperatureC: threshold.default(80),
        eventLoopDelayMs: threshold.default(200),
        rssMb: threshold.default(1536),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const trunkName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/, 'letters, digits, _ . - (max 32)');

export const dahdiTrunkSchema = z
  .object({
    name: trunkName,
    driver: z.literal('dahdi'),
    /** DAHDI span number: the file <dahdiDir>/<span>. */
    span: z.number().int().min(1).max(255),
  })
  .strict();

export const serialTrunkSchema = z
  .object({
    name: trunkName,
    driver: z.literal('serial'),
    /** Serial device path; prefer a stable udev name (/dev/serial/by-id/...). */
    path: z.string().min(1),
    baud: z.number().int().positive().default(9600),
    /** Span number on that device (a quad gateway reports spans 1-4 on one port). */
    span: z.number().int().min(1).max(255).default(1),
  })
  .strict();

export const trunkEntrySchema = z.discriminatedUnion('driver', [dahdiTrunkSchema, serialTrunkSchema]);

export const trunksConfigSchema = z
  .object({
    /** Monitor every span found in the DAHDI dir when no dahdi trunk is listed (names `span<N>`). */
    dahdiAuto: z.boolean().default(true),
    /** DAHDI status poll and serial STATUS request interval. */
    pollMs: z.number().int().min(100).max(60_000).default(1000),
    /** A line alarm must persist this long before it is raised (ITU-T G.775-ish: 2.5 s). */
    raiseHoldOffMs: z.number().int().min(0).max(600_000).default(2500),
    /** And the line must be clean this long before the alarm clears (10 s). */
    clearHoldOffMs: z.number().int().min(0).max(600_000).default(10_000),
    /** Serial device: silence longer than this (no valid line) is a fault. */
    silenceMs: z.number().int().min(500).max(600_000).default(5000),
    /** Serial device: this many consecutive unparseable lines is a fault. */
    garbageLines: z.number().int().min(1).max(1000).default(3),
    /** Reopen backoff for serial devices and a missing DAHDI dir. */
    backoffMinMs: z.number().int().min(10).default(500),
    backoffMaxMs: z.number().int().min(10).default(30_000),
    spans: z.array(trunkEntrySchema).default([]),
  })
  .strict()
  .superRefine((t, ctx) => {
    const names = new Set<string>();
    const bauds = new Map<string, number>();
    const spansAt = new Set<string>();
    t.spans.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['spans', i, 'name'], message: `duplicate trunk name ${s.name}` });
      names.add(s.name);
      const where = s.driver === 'serial' ? `serial:${s.path}:${s.span}` : `dahdi:${s.span}`;
      if (spansAt.has(where)) ctx.addIssue({ code: 'custom', path: ['spans', i, 'span'], message: `span listed twice (${where})` });
      spansAt.add(where);
      if (s.driver === 'serial') {
        const b = bauds.get(s.path);
        if (b !== undefined && b !== s.baud) ctx.addIssue({ code: 'custom', path: ['spans', i, 'baud'], message: `${s.path} listed with two baud rates` });
        bauds.set(s.path, s.baud);
      }
    });
    if (t.backoffMaxMs < t.backoffMinMs) ctx.addIssue({ code: 'custom', path: ['backoffMaxMs'], message: 'must be >= backoffMinMs' });
  });

export const panelConfigSchema = z
  .object({
    path: z.string().min(1),
    baud: z.number().int().positive().default(19200),
    /** Command set; `matrix-orbital` also fits the Adafruit USB/serial LCD backpack. */
    driver: z.enum(['matrix-orbital']).default('matrix-orbital'),
    size: z.enum(['16x2', '20x4']).default('16x2'),
    /** Redraw interval (only changed rows are sent). */
    refreshMs: z.number().int().min(100).max(60_000).default(1000),
    /** Auto-advance pages every N seconds (0: only on a key press). */
    rotateS: z.number().int().min(0).max(3600).default(0),
    backoffMinMs: z.number().int().min(10).default(1000),
    backoffMaxMs: z.number().int().min(10).default(30_000),
  })
  .strict();

export const watchdogConfigSchema = z
  .object({
    /** Kernel watchdog device to feed (e.g. /dev/watchdog); unset: none. */
    device: z.string().min(1).optional(),
    /** Keepalive interval for the device; keep it well under the driver's timeout (often 60 s). */
    deviceIntervalMs: z.number().int().min(100).max(600_000).default(10_000),
    /** systemd WATCHDOG=1: `auto` when NOTIFY_SOCKET and WATCHDOG_USEC are set; `off` never. */
    systemd: z.enum(['auto', 'off']).default('auto'),
    /** Command that delivers sd_notify messages (Node has no AF_UNIX datagram sockets). */
    notifyCommand: z.string().min(1).default('systemd-notify'),
    /** A health check slower than this counts as failed. */
    checkTimeoutMs: z.number().int().min(10).max(60_000).default(2000),
    /** Event-loop lag (timer lateness) above this stops feeding. */
    maxEventLoopLagMs: z.number().int().min(10).max(600_000).default(5000),
  })
  .strict();

/** `hw:` section of ccedge.yaml; an absent section works (`hwConfigSchema.parse({})`). */
export const hwConfigSchema = z
  .object({
    health: healthConfigSchema.prefault({}),
    trunks: trunksConfigSchema.prefault({}),
    panel: panelConfigSchema.optional(),
    watchdog: watchdogConfigSchema.prefault({}),
  })
  .strict();

export type HwConfig = z.infer<typeof hwConfigSchema>;
export type HwConfigInput = z.input<typeof hwConfigSchema>;
export type HealthConfig = z.infer<typeof healthConfigSchema>;
export type TrunksConfig = z.infer<typeof trunksConfigSchema>;
export type TrunkEntry = z.infer<typeof trunkEntrySchema>;
export type PanelConfig = z.infer<typeof panelConfigSchema>;
export type WatchdogConfig = z.infer<typeof watchdogConfigSchema>;
