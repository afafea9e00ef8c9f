import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { SYSTEM_CLOCK } from '../../clock';
import { healthConfigSchema } from '../../config';
import { HealthMonitor } from '../../health/health-monitor';
import { registerHealthMetrics } from '../../health/metrics';
import { Thresholds } from '../../health/thresholds';
import { HwService, type HealthMessage } from '../../index';
import { SILENT_LOG } from '../../log';
import { rmDir, tmpDir, until } from '../helpers';

const meminfo = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]) * 1024;

describe('hw/health', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('health');
  });
  afterEach(() => rmDir(dir));

  it('samples match /proc/meminfo, df and /sys/class/net; temperature is null when there is no sensor', async () => {
    const h = new HealthMonitor({ config: healthConfigSchema.parse({}), dataDir: dir, clock: SYSTEM_CLOCK, log: SILENT_LOG });
    try {
      const first = await h.sampleNow();
      assert.equal(first?.cpu.loadPct, null, 'no CPU % before two readings');
      // /proc/stat counts in 10 ms ticks: two readings in the same tick give no figure yet.
      await new Promise((r) => setTimeout(r, 100));
      const s = await h.sampleNow();
      assert.ok(s);
      assert.equal(s.sample.mode, 'proc');
      assert.deepEqual(s.sample.errors, []);
      assert.ok(typeof s.cpu.loadPct === 'number' && s.cpu.loadPct >= 0 && s.cpu.loadPct <= 100);
      assert.equal(s.memory.totalBytes, meminfo('MemTotal'));
      assert.ok(Math.abs(s.memory.availableBytes - meminfo('MemAvailable')) < Math.max(64 << 20, s.memory.totalBytes * 0.05), 'MemAvailable');
      const [size, avail] = execFileSync('df', ['-B1', '--output=size,avail', dir], { encoding: 'utf8' }).trim().split('\n')[1]?.trim().split(/\s+/).map(Number) ?? [];
      assert.equal(s.disk?.totalBytes, size);
      assert.ok(Math.abs((s.disk?.availableBytes ?? 0) - (avail ?? 0)) < 256 << 20, 'df avail');
      const nics = readdirSync('/sys/class/net').filter((n) => readFileSync(`/sys/class/net/${n}/type`, 'utf8').trim() !== '772').sort();
      assert.deepEqual(s.nics.map((n) => n.iface), nics);
      for (const n of s.nics) {
        const oper = readFileSync(`/sys/class/net/${n.iface}/operstate`, 'utf8').trim();
        assert.equal(n.operstate, oper);
        assert.equal(n.up, oper === 'up' ? true : oper === 'down' ? false : n.up);
      }
      const ls = (d: string): string[] => (existsSync(d) ? readdirSync(d) : []);
      const sensors = ls('/sys/class/hwmon').length > 0 || ls('/sys/class/thermal').some((z) => z.startsWith('thermal_zone'));
      if (!sensors) assert.deepEqual(s.temperature, { cpuC: null, maxC: null });
      else assert.ok(s.temperature.maxC === null || typeof s.temperature.maxC === 'number');
      assert.ok(s.process.rssBytes > 0 && s.process.eventLoopDelayMs.p99 >= 0);
      // Gauges read the snapshot; the temperature series is absent rather than invented.
      const reg = new Registry();
      registerHealthMetrics(reg, h);
      const text = await reg.metrics();
      assert.match(text, new RegExp(`^ccedge_hw_memory_total_bytes ${s.memory.totalBytes}$`, 'm'));
      assert.match(text, new RegExp(`^ccedge_hw_disk_size_bytes\\{path="${dir}"\\} ${size}$`, 'm'));
      if (s.temperature.cpuC === null) assert.doesNotMatch(text, /^ccedge_hw_temperature_celsius /m);
    } finally {
      await h.close();
    }
  });

  it('reads temperatures from hwmon/thermal when present (a fake /sys)', async () => {
    const { ProcSampler } = await import('../../health/proc-sample');
    const sys = path.join(dir, 'sys');
    mkdirSync(path.join(sys, 'class/hwmon/hwmon0'), { recursive: true });
    mkdirSync(path.join(sys, 'class/thermal/thermal_zone0'), { recursive: true });
    mkdirSync(path.join(sys, 'class/net'), { recursive: true });
    const w = (p: string, v: string): void => writeFileSync(path.join(sys, p), v);
    w('class/hwmon/hwmon0/name', 'coretemp\n');
    w('class/hwmon/hwmon0/temp1_input', '51000\n');
    w('class/hwmon/hwmon0/temp1_label', 'Package id 0\n');
    w('class/hwmon/hwmon0/temp2_input', '55500\n');
    w('class/hwmon/hwmon0/temp2_label', 'Core 0\n');
    w('class/thermal/thermal_zone0/type', 'acpitz\n');
    w('class/thermal/thermal_zone0/temp', '27800\n');
    const s = await new ProcSampler({ proc: '/proc', sys }).sample({ dataDir: dir });
    assert.deepEqual(s.temperature, { cpuC: 51, maxC: 55.5 });
  });

  it('thresholds raise after N samples and clear with hysteresis; null values change nothing', () => {
    const t = new Thresholds(healthConfigSchema.parse({ samplesToChange: 2, hysteresisPct: 10, thresholds: { diskFreePct: 10, cpuLoadPct: 90, temperatureC: 80 } }));
    assert.deepEqual(t.evaluate({ diskFreePct: 8, cpuLoadPct: 95 }, 1), []);
    assert.deepEqual(t.evaluate({ diskFreePct: 8, cpuLoadPct: 50, temperatureC: null }, 2), [{ metric: 'diskFreePct', state: 'raised', value: 8, threshold: 10, unit: '%' }]);
    assert.deepEqual(t.evaluate({ diskFreePct: 10.5 }, 3), [], 'inside the hysteresis band');
    assert.deepEqual(t.evaluate({ diskFreePct: 12 }, 4), []);
    assert.deepEqual(t.evaluate({ diskFreePct: null }, 5), []);
    assert.deepEqual(t.evaluate({ diskFreePct: 12 }, 6), []);
    assert.deepEqual(t.evaluate({ diskFreePct: 12 }, 7), [{ metric: 'diskFreePct', state: 'cleared', value: 12, threshold: 10, unit: '%' }]);
    assert.deepEqual(t.active(), []);
  });

  it('HwService: samples on its interval, emits the MQTT health message, sends health.alarm to the sink, closes cleanly', async () => {
    const events: [string, Record<string, unknown>][] = [];
    const hw = new HwService({
      config: { health: { intervalS: 1, samplesToChange: 1, thresholds: { rssMb: 1, cpuLoadPct: null, memUsedPct: null, diskFreePct: null, temperatureC: null, eventLoopDelayMs: null } }, trunks: { dahdiAuto: false } },
      dataDir: dir,
      dahdiDir: path.join(dir, 'none'),
      emit: (type, data) => {
        events.push([type, { ...data }]);
      },
      env: {},
    });
    const msgs: HealthMessage[] = [];
    hw.on('health', (m) => msgs.push(m));
    await hw.start();
    await until(() => msgs.length >= 2, 'two health samples');
    const alarm = events.find(([t]) => t === 'health.alarm');
    assert.ok(alarm);
    assert.equal(alarm[1].metric, 'rssMb');
    assert.equal(alarm[1].state, 'raised');
    assert.equal(alarm[1].threshold, 1);
    assert.ok(msgs[1]?.memUsedPct !== null && msgs[1]?.diskFreePct !== null);
    assert.deepEqual(msgs[1]?.alarms, ['rssMb']);
    const snap = hw.healthSnapshot();
    assert.equal(snap.worstAlarm?.startsWith('rssMb'), true);
    assert.equal(snap.health?.memory.totalBytes, meminfo('MemTotal'));
    const reg = new Registry();
    hw.registerMetrics(reg);
    assert.match(await reg.metrics(), /^ccedge_hw_health_alarm\{metric="rssMb"\} 1$/m);
    await hw.close();
    const n = msgs.length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(msgs.length, n, 'no sample after close()');
  });

  it('the config section is optional and rejects nonsense', () => {
    const { hwConfigSchema } = require('../../config') as typeof import('../../config');
    const c = hwConfigSchema.parse({});
    assert.equal(c.health.intervalS, 15);
    assert.equal(c.trunks.raiseHoldOffMs, 2500);
    assert.equal(c.panel, undefined);
    assert.equal(c.watchdog.systemd, 'auto');
    assert.throws(() => new HwService({ dataDir: dir, config: { trunks: { spans: [{ name: 'a', driver: 'serial', path: '/dev/x', baud: 9600 }, { name: 'a', driver: 'dahdi', span: 1 }] } } }), /HW_CONFIG_INVALID|duplicate trunk name/);
    assert.throws(() => hwConfigSchema.parse({ trunks: { spans: [{ name: 'a', driver: 'e1' }] } }));
  });
});
