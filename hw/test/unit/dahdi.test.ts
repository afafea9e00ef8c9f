import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { SYSTEM_CLOCK } from '../../clock';
import { trunksConfigSchema } from '../../config';
import { SILENT_LOG } from '../../log';
import { parseDahdiSpan } from '../../trunks/dahdi-parser';
import type { TrunkAlarmEvent } from '../../trunks/trunk';
import { TrunkMonitor } from '../../trunks/trunk-monitor';
import { FIXTURES, rmDir, tmpDir, until } from '../helpers';

const fixture = (name: string): string => readFileSync(path.join(FIXTURES, 'dahdi', name), 'latin1');

describe('hw/trunks: DAHDI /proc/dahdi span status', () => {
  it('parses an OK span: line config, sync master, clock source, channels in use, no counters', () => {
    const r = parseDahdiSpan(fixture('ok/1'), 1);
    assert.equal(r.state, 'OK');
    assert.equal(r.framing, 'HDB3/CCS/CRC4');
    assert.equal(r.description, 'T4XXP (PCI) Card 0 Span 1');
    assert.equal(r.syncMaster, true);
    assert.equal(r.clockSource, true);
    assert.deepEqual(r.channels, { total: 31, inUse: 4 }); // 3 B-channels + the D-channel
    assert.deepEqual(r.counters, { bpv: 0, crc4: 0, ebit: 0, fas: 0, slips: 0 });
    assert.equal(r.dchannel, null, '/proc does not show Q.921 state');
  });

  it('parses RED with counters (IRQ misses ignored), and every alarm word', () => {
    const red = parseDahdiSpan(fixture('red/1'));
    assert.equal(red.state, 'RED');
    assert.deepEqual(red.counters, { bpv: 1532, crc4: 87, ebit: 3, fas: 41, slips: 2 });
    assert.equal(red.dchannel, 'down');
    assert.equal(parseDahdiSpan(fixture('recovering/1')).state, 'RECOVERING');
    assert.equal(parseDahdiSpan(fixture('yellow/1')).state, 'YELLOW');
    assert.equal(parseDahdiSpan(fixture('yellow/1')).counters.ebit, 120);
    assert.equal(parseDahdiSpan(fixture('blue/1')).state, 'BLUE');
    assert.equal(parseDahdiSpan(fixture('loop/1')).state, 'LOOPBACK');
    assert.equal(parseDahdiSpan(fixture('notopen/1')).state, 'NOT_OPEN');
    assert.equal(parseDahdiSpan(fixture('two-alarms/2')).state, 'BLUE');
    const unconf = parseDahdiSpan(fixture('unconfigured/3'));
    assert.equal(unconf.state, 'NOT_OPEN');
    assert.equal(unconf.framing, undefined);
  });

  it('rejects text that is not a span status, and a file for another span', () => {
    assert.throws(() => parseDahdiSpan('garbage\n'), /HW_DAHDI_PARSE|not a DAHDI/);
    assert.throws(() => parseDahdiSpan(fixture('ok/2'), 1), /describes span 2/);
    assert.throws(() => parseDahdiSpan('Span 1: X "y" HDB3/CCS PURPLE \n'), /unknown status word/);
  });

  describe('driver through the monitor (a DAHDI dir we rewrite)', () => {
    let dir: string;
    let monitor: TrunkMonitor | undefined;
    beforeEach(() => {
      dir = tmpDir('dahdi');
    });
    afterEach(async () => {
      await monitor?.close();
      monitor = undefined;
      rmDir(dir);
    });

    it('moves a span RED → RECOVERING → OK: one raised and one cleared trunk.alarm with the counters', async () => {
      const dahdi = path.join(dir, 'proc-dahdi');
      mkdirSync(dahdi);
      const cfg = trunksConfigSchema.parse({ pollMs: 100, raiseHoldOffMs: 0, clearHoldOffMs: 0, spans: [{ name: 'pbx-a', driver: 'dahdi', span: 1 }] });
      monitor = new TrunkMonitor({ config: cfg, dahdiDir: dahdi, dahdiPresent: true, clock: SYSTEM_CLOCK, log: SILENT_LOG });
      const alarms: TrunkAlarmEvent[] = [];
      monitor.on('alarm', (a) => alarms.push(a));
      copyFileSync(path.join(FIXTURES, 'dahdi/ok/1'), path.join(dahdi, '1'));
      monitor.start();
      const t = monitor.get('pbx-a');
      assert.ok(t);
      await until(() => t.state === 'OK', 'OK');
      const swap = (name: string): void => {
        copyFileSync(path.join(FIXTURES, 'dahdi', name), path.join(dahdi, '.tmp'));
        renameSync(path.join(dahdi, '.tmp'), path.join(dahdi, '1'));
      };
      swap('red/1');
      await until(() => alarms.length === 1, 'RED raised');
      assert.equal(alarms[0]?.alarm, 'RED');
      assert.equal(alarms[0]?.state, 'raised');
      assert.equal(alarms[0]?.severity, 'critical');
      assert.equal(alarms[0]?.driver, 'dahdi');
      assert.deepEqual(alarms[0]?.counters, { bpv: 1532, crc4: 87, ebit: 3, fas: 41, slips: 2 });
      swap('recovering/1');
      await until(() => t.state === 'RECOVERING', 'RECOVERING');
      assert.equal(alarms.length, 1, 'RECOVERING neither clears nor raises');
      assert.equal(t.snapshot().alarms[0]?.alarm, 'RED');
      swap('ok/1');
      await until(() => alarms.length === 2, 'RED cleared');
      assert.equal(alarms[1]?.alarm, 'RED');
      assert.equal(alarms[1]?.state, 'cleared');
      assert.equal(typeof alarms[1]?.durationS, 'number');
      assert.equal(t.snapshot().alarms.length, 0);
      assert.equal(t.snapshot().channels?.inUse, 4);
    });

    it('auto-discovers spans, and reports a missing span file and a missing DAHDI dir as faults', async () => {
      const dahdi = path.join(dir, 'proc-dahdi');
      const cfg = trunksConfigSchema.parse({ pollMs: 100, raiseHoldOffMs: 0, clearHoldOffMs: 0, backoffMinMs: 50, backoffMaxMs: 100, spans: [{ name: 'e1-1', driver: 'dahdi', span: 1 }, { name: 'e1-2', driver: 'dahdi', span: 2 }] });
      monitor = new TrunkMonitor({ config: cfg, dahdiDir: dahdi, dahdiPresent: false, clock: SYSTEM_CLOCK, log: SILENT_LOG });
      const alarms: TrunkAlarmEvent[] = [];
      monitor.on('alarm', (a) => alarms.push(a));
      monitor.start();
      // No dir (modules not loaded): both spans NOT_OPEN with a DEVICE alarm.
      await until(() => alarms.length === 2, 'DEVICE alarms');
      assert.deepEqual(alarms.map((a) => [a.trunk, a.alarm, a.code]), [['e1-1', 'DEVICE', 'HW_DAHDI_UNAVAILABLE'], ['e1-2', 'DEVICE', 'HW_DAHDI_UNAVAILABLE']]);
      assert.equal(monitor.get('e1-1')?.state, 'NOT_OPEN');
      // The modules load: span 1 reads, span 2's file is still missing.
      mkdirSync(dahdi);
      copyFileSync(path.join(FIXTURES, 'dahdi/ok/1'), path.join(dahdi, '1'));
      await until(() => monitor?.get('e1-1')?.state === 'OK', 'span 1 OK');
      assert.equal(monitor.get('e1-2')?.snapshot().fault?.code, 'HW_DAHDI_SPAN_MISSING');
      assert.ok(alarms.some((a) => a.trunk === 'e1-1' && a.alarm === 'DEVICE' && a.state === 'cleared'));
      assert.ok(!alarms.some((a) => a.trunk === 'e1-2' && a.state === 'cleared'));
      await monitor.close();
      // Auto mode: no dahdi trunk listed, every span file is monitored.
      copyFileSync(path.join(FIXTURES, 'dahdi/two-alarms/2'), path.join(dahdi, '2'));
      monitor = new TrunkMonitor({ config: trunksConfigSchema.parse({ pollMs: 100, raiseHoldOffMs: 0 }), dahdiDir: dahdi, dahdiPresent: true, clock: SYSTEM_CLOCK, log: SILENT_LOG });
      monitor.start();
      await until(() => monitor?.snapshot().length === 2, 'two spans found');
      assert.deepEqual(monitor.snapshot().map((s) => [s.name, s.state]), [['span1', 'OK'], ['span2', 'BLUE']]);
    });
  });
});
