import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { HwService } from '../../index';
import { FIXTURES, rmDir, tmpDir, until } from '../helpers';

describe('hw: HwService facade', function () {
  this.timeout(30_000);

  it('DAHDI trunk alarms reach the event sink; trunks snapshot, worst alarm and gauges follow', async () => {
    const dir = tmpDir('svc');
    const dahdi = path.join(dir, 'dahdi');
    mkdirSync(dahdi);
    copyFileSync(path.join(FIXTURES, 'dahdi/ok/1'), path.join(dahdi, '1'));
    const events: [string, Record<string, unknown>][] = [];
    const hw = new HwService({
      config: { health: { enabled: false }, trunks: { pollMs: 100, raiseHoldOffMs: 0, clearHoldOffMs: 0, spans: [{ name: 'pbx-a', driver: 'dahdi', span: 1 }] } },
      dataDir: dir,
      env: { CCEDGE_DAHDI_DIR: dahdi },
      emit: async (type, data) => {
        events.push([type, { ...data }]);
      },
    });
    const reg = new Registry();
    hw.registerMetrics(reg);
    try {
      await hw.start();
      assert.equal(hw.dahdiDir, dahdi, 'CCEDGE_DAHDI_DIR');
      await until(() => hw.trunksSnapshot().trunks[0]?.state === 'OK', 'OK');
      copyFileSync(path.join(FIXTURES, 'dahdi/red/1'), path.join(dahdi, '.t'));
      renameSync(path.join(dahdi, '.t'), path.join(dahdi, '1'));
      await until(() => events.some(([t]) => t === 'trunk.alarm'), 'trunk.alarm');
      const [, ev] = events.find(([t]) => t === 'trunk.alarm') ?? [];
      // The fields sync/policy.ts lets leave for trunk.alarm are there.
      assert.deepEqual({ trunk: ev?.trunk, span: ev?.span, alarm: ev?.alarm, state: ev?.state, severity: ev?.severity }, { trunk: 'pbx-a', span: 1, alarm: 'RED', state: 'raised', severity: 'critical' });
      assert.equal(hw.worstAlarm(), 'pbx-a RED');
      const snap = hw.trunksSnapshot();
      assert.equal(snap.trunks[0]?.counters.bpv, 1532);
      assert.deepEqual(snap.trunks[0]?.alarms.map((a) => a.alarm), ['RED']);
      const text = await reg.metrics();
      assert.match(text, /^ccedge_hw_trunk_state\{trunk="pbx-a",state="RED"\} 1$/m);
      assert.match(text, /^ccedge_hw_trunk_alarm\{trunk="pbx-a",alarm="RED",severity="critical"\} 1$/m);
      assert.match(text, /^ccedge_hw_trunk_errors\{trunk="pbx-a",counter="crc4"\} 87$/m);
      assert.doesNotMatch(text, /ccedge_hw_trunk_dchannel_up\{trunk="pbx-a"\} 1/);
    } finally {
      await hw.close();
      rmDir(dir);
    }
  });
});
