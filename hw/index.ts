import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { SYSTEM_CLOCK, type Clock } from './clock';
import { hwConfigSchema, type HwConfig, type HwConfigInput } from './config';
import { HwError } from './errors';
import { safeEmit, type HwEventArgs, type HwEventSink } from './events';
import { HealthMonitor, type HealthSnapshot } from './health/health-monitor';
import { registerHealthMetrics } from './health/metrics';
import { SILENT_LOG, type HwLog } from './log';
import { FrontPanel } from './panel/front-panel';
import type { PanelInfo } from './panel/pages';
import { registerTrunkMetrics } from './trunks/metrics';
import type { TrunkSnapshot } from './trunks/trunk';
import { TrunkMonitor } from './trunks/trunk-monitor';
import { Watchdog, type HealthCheck } from './watchdog/watchdog';

export { hwConfigSchema, type HwConfig, type HwConfigInput } from './config';
export { HwError, type HwErrorCode } from './errors';
export type { HwEventArgs, HwEventMap, HwEventSink, HwEventType, HwFaultEvent, AlarmState } from './events';
export type { HwLog } from './log';
export { SYSTEM_CLOCK, ManualClock, type Clock } from './clock';
export { HealthMonitor, type HealthSnapshot, type HealthAlarmEvent } from './health/health-monitor';
export { TrunkMonitor } from './trunks/trunk-monitor';
export type { TrunkSnapshot, TrunkAlarmEvent } from './trunks/trunk';
export { TRUNK_STATES, type TrunkState, type SpanReport } from './trunks/types';
export { parseDahdiSpan } from './trunks/dahdi-parser';
export { FrontPanel } from './panel/front-panel';
export type { PanelInfo } from './panel/pages';
export { Watchdog, type HealthCheck } from './watchdog/watchdog';

/** What the gateway's panel callback gives; HwService adds trunk states and the worst alarm. */
export type PanelBaseInfo = Pick<PanelInfo, 'site' | 'ip' | 'activeCalls' | 'extra'>;

/** Payload for the MQTT `health` topic (QoS 0, not retained): small, aggregates only. */
export interface HealthMessage {
  ts: string;
  cpuLoadPct: number | null;
  load1: number | null;
  memUsedPct: number | null;
  diskFreePct: number | null;
  temperatureC: number | null;
  eventLoopDelayP99Ms: number | null;
  nics: { iface: string; up: boolean | null }[];
  trunks: { name: string; state: string; dchannel: string | null; alarms: string[] }[];
  alarms: string[];
}

export interface HwServiceEvents {
  /** A new health sample: publish it on MQTT `health`. */
  health: [HealthMessage, HealthSnapshot];
  /** A trunk's state, D-channel, counters or fault changed. */
  trunk: [TrunkSnapshot];
}

export interface HwServiceOptions {
  /** The `hw:` section of the config (absent: defaults). */
  config?: HwConfigInput | HwConfig;
  /** CCEDGE_DATA_DIR: disk free is measured on its filesystem. */
  dataDir: string;
  /** DAHDI status dir; default CCEDGE_DAHDI_DIR, else /proc/dahdi. */
  dahdiDir?: string;
  log?: HwLog;
  /** Where health.alarm, trunk.alarm and hw.fault events go (the outbox). */
  emit?: HwEventSink;
  /** Site, IP and active calls for the front panel. */
  panelInfo?: () => PanelBaseInfo | Promise<PanelBaseInfo>;
  /** Watchdog gating checks (the event loop is always checked). */
  checks?: Record<string, HealthCheck>;
  clock?: Clock;
  /** Environment (NOTIFY_SOCKET, WATCHDOG_USEC, CCEDGE_DAHDI_DIR); default process.env. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Box health, E1 trunks, front panel and watchdog, assembled. hw/ imports nothing from gateway/:
 * the gateway passes a logger, an event sink, callbacks, and a Registry to registerMetrics().
 */
export class HwService extends EventEmitter<HwServiceEvents> {
  readonly config: HwConfig;
  readonly health: HealthMonitor | undefined;
  readonly trunks: TrunkMonitor;
  readonly panel: FrontPanel | undefined;
  readonly watchdog: Watchdog;
  readonly dahdiDir: string;
  private readonly log: HwLog;
  private readonly clock: Clock;
  private closing: Promise<void> | undefined;
  private started = false;

  constructor(private readonly opts: HwServiceOptions) {
    super();
    const parsed = hwConfigSchema.safeParse(opts.config ?? {});
    if (!parsed.success) throw new HwError('HW_CONFIG_INVALID', `hw config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    this.config = parsed.data;
    this.log = opts.log ?? SILENT_LOG;
    this.clock = opts.clock ?? SYSTEM_CLOCK;
    const env = opts.env ?? process.env;
    this.dahdiDir = opts.dahdiDir ?? env.CCEDGE_DAHDI_DIR ?? '/proc/dahdi';
    const sink = (...event: HwEventArgs): void => safeEmit(opts.emit, this.log, ...event);

    if (this.config.health.enabled) {
      this.health = new HealthMonitor({ config: this.config.health, dataDir: opts.dataDir, clock: this.clock, log: this.log });
      this.health.on('alarm', (a) => sink('health.alarm', { ...a }));
      this.health.on('sample', (s) => this.emit('health', this.healthMessage(s), s));
    }

    this.trunks = new TrunkMonitor({ config: this.config.trunks, dahdiDir: this.dahdiDir, dahdiPresent: existsSync(this.dahdiDir), clock: this.clock, log: this.log });
    this.trunks.on('alarm', (a) => {
      sink('trunk.alarm', { ...a });
      if (a.state === 'raised') this.panel?.home();
    });
    this.trunks.on('change', (s) => this.emit('trunk', s));

    if (this.config.panel) {
      const panelCfg = this.config.panel;
      this.panel = new FrontPanel({
        config: panelCfg,
        clock: this.clock,
        log: this.log,
        info: async () => {
          const base = opts.panelInfo ? await opts.panelInfo() : { site: 'ccedge', ip: null, activeCalls: 0 };
          return { ...base, worstAlarm: this.worstAlarm(), trunks: this.trunks.list().map((t) => ({ name: t.name, state: t.state })) };
        },
      });
      this.panel.on('fault', (err) => sink('hw.fault', { component: 'panel', device: panelCfg.path, state: 'raised', code: err.code, message: err.message }));
      this.panel.on('recovered', () => sink('hw.fault', { component: 'panel', device: panelCfg.path, state: 'cleared' }));
    }

    this.watchdog = new Watchdog({ config: this.config.watchdog, checks: opts.checks, clock: this.clock, log: this.log, env });
    this.watchdog.on('starving', ({ failed }) =>
      sink('hw.fault', { component: 'watchdog', device: this.config.watchdog.device ?? 'systemd', state: 'raised', code: 'HW_WATCHDOG_CHECK_FAILED', message: failed.map((f) => `${f.check}: ${f.reason}`).join('; ') }),
    );
    this.watchdog.on('fed', () => sink('hw.fault', { component: 'watchdog', device: this.config.watchdog.device ?? 'systemd', state: 'cleared' }));
    this.watchdog.on('fault', (err) => sink('hw.fault', { component: 'watchdog', device: this.config.watchdog.device ?? 'systemd', state: 'raised', code: err.code, message: err.message }));
  }

  /** Starts sampling, trunk polling, the panel and the watchdog. Never throws for absent hardware. */
  async start(): Promise<void> {
    if (this.started || this.closing) return;
    this.started = true;
    this.health?.start();
    this.trunks.start();
    this.panel?.start();
    await this.watchdog.start();
    this.log.info(
      {
        health: this.health ? this.health.mode : 'off',
        trunks: this.trunks.list().map((t) => `${t.name}:${t.driver}`),
        dahdiDir: this.dahdiDir,
        panel: this.config.panel?.path ?? null,
        watchdog: { device: this.config.watchdog.device ?? null, systemdMs: this.watchdog.systemdIntervalMs },
      },
      'hardware monitor started',
    );
  }

  /** GET /api/v1/health body. */
  healthSnapshot(): { health: HealthSnapshot | null; trunks: { name: string; state: string }[]; worstAlarm: string | null } {
    return { health: this.health?.snapshot() ?? null, trunks: this.trunks.list().map((t) => ({ name: t.name, state: t.state })), worstAlarm: this.worstAlarm() };
  }

  /** GET /api/v1/trunks body. */
  trunksSnapshot(): { dahdiDir: string; trunks: TrunkSnapshot[] } {
    return { dahdiDir: this.dahdiDir, trunks: this.trunks.snapshot() };
  }

  /** Registers every hw gauge on the gateway's Registry (names ccedge_hw_*). */
  registerMetrics(registry: Registry): void {
    if (this.health) registerHealthMetrics(registry, this.health);
    registerTrunkMetrics(registry, this.trunks);
  }

  /** Short text of the worst thing wrong (panel, wallboard), null when all is well. */
  worstAlarm(): string | null {
    const rank = { critical: 0, major: 1, minor: 2 };
    let best: { r: number; text: string } | undefined;
    for (const t of this.trunks.list()) {
      for (const a of t.alarms()) {
        const r = rank[a.severity];
        if (!best || r < best.r) best = { r, text: `${t.name} ${a.alarm}` };
      }
    }
    if (this.panel?.fault && (!best || best.r > 1)) best = { r: 1, text: 'panel fault' };
    for (const a of this.health?.snapshot()?.alarms ?? []) {
      if (!best || best.r > 1) best = { r: 1, text: `${a.metric} ${a.value}${a.unit}` };
    }
    return best?.text ?? null;
  }

  /** Tells systemd the daemon is ready (Type=notify); no-op outside systemd. */
  ready(status?: string): Promise<void> {
    return this.watchdog.ready(status);
  }

  /** Stops everything: timers, serial ports, the health sampler; disarms the watchdog (magic close). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([this.watchdog.close(), this.panel?.close(), this.trunks.close(), this.health?.close()]);
      this.removeAllListeners();
    })();
    return this.closing;
  }

  private healthMessage(s: HealthSnapshot): HealthMessage {
    return {
      ts: s.sampledAt,
      cpuLoadPct: s.cpu.loadPct,
      load1: s.cpu.load1,
      memUsedPct: s.memory.totalBytes ? s.memory.usedPct : null,
      diskFreePct: s.disk?.freePct ?? null,
      temperatureC: s.temperature.cpuC,
      eventLoopDelayP99Ms: s.process.eventLoopDelayMs.p99,
      nics: s.nics.map((n) => ({ iface: n.iface, up: n.up })),
      trunks: this.trunks.list().map((t) => {
        const snap = t.snapshot();
        return { name: t.name, state: snap.state, dchannel: snap.dchannel, alarms: snap.alarms.map((a) => a.alarm) };
      }),
      alarms: s.alarms.map((a) => a.metric),
    };
  }
}
