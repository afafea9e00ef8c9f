import assert from 'node:assert/strict';
import { ManualClock } from '../../clock';
import { HwError } from '../../errors';
import { Trunk, type TrunkAlarmEvent } from '../../trunks/trunk';
import { zeroCounters, type SpanReport, type TrunkState } from '../../trunks/types';

const report = (state: TrunkState, extra: Partial<SpanReport> = {}): SpanReport => ({ span: 1, state, causes: [], dchannel: state === 'OK' ? 'up' : 'down', counters: zeroCounters(), ...extra });

describe('hw/trunks: alarm hold-off (controlled clock)', () => {
  let clock: ManualClock;
  let trunk: Trunk;
  let alarms: TrunkAlarmEvent[];
  const brief = (): string[] => alarms.map((a) => `${a.alarm}:${a.state}`);

  beforeEach(() => {
    clock = new ManualClock();
    trunk = new Trunk('pbx-a', 1, 'serial', '/dev/ttyE1', clock, { raiseMs: 2500, clearMs: 10_000 });
    alarms = [];
    trunk.on('alarm', (a) => alarms.push(a));
    trunk.onReport(report('OK'));
  });
  afterEach(() => {
    trunk.close();
    assert.equal(clock.pending, 0, 'close() leaves no timer');
  });

  it('a trunk flapping faster than the hold-off gives exactly one alarm, cleared once it stays clean', () => {
    // RED 1 s / OK 1 s for a minute: trouble accumulates to 2.5 s and raises once; never 10 s clean.
    for (let i = 0; i < 30; i++) {
      trunk.onReport(report('RED', { causes: ['LOS'] }));
      clock.advance(1000);
      trunk.onReport(report('OK'));
      clock.advance(1000);
    }
    assert.deepEqual(brief(), ['RED:raised']);
    assert.equal(alarms[0]?.raisedAt, new Date(clock.now() - 60_000 + 4_500).toISOString(), 'raised when 2.5 s of RED had accumulated (t=4.5 s)');
    clock.advance(9_000); // 10 s clean since the last OK
    assert.deepEqual(brief(), ['RED:raised', 'RED:cleared']);
    assert.equal(trunk.snapshot().alarms.length, 0);
  });

  it('a lone glitch shorter than the hold-off raises nothing, and is forgotten after a clean period', () => {
    trunk.onReport(report('RED'));
    clock.advance(2000);
    trunk.onReport(report('OK'));
    clock.advance(10_000);
    trunk.onReport(report('RED'));
    clock.advance(2000);
    trunk.onReport(report('OK'));
    clock.advance(30_000);
    assert.deepEqual(brief(), []);
  });

  it('RECOVERING holds: the alarm does not clear until the line is OK for the clear hold-off', () => {
    trunk.onReport(report('RED'));
    clock.advance(3000);
    assert.deepEqual(brief(), ['RED:raised']);
    trunk.onReport(report('RECOVERING'));
    clock.advance(60_000);
    assert.deepEqual(brief(), ['RED:raised']);
    trunk.onReport(report('OK'));
    clock.advance(9_999);
    assert.deepEqual(brief(), ['RED:raised']);
    clock.advance(1);
    assert.deepEqual(brief(), ['RED:raised', 'RED:cleared']);
    assert.equal(alarms[1]?.durationS, 70.5, "raised at 2.5 s, cleared at 73 s");
  });

  it('a raised alarm that changes kind moves after the hold-off (RED cleared, YELLOW raised)', () => {
    trunk.onReport(report('RED'));
    clock.advance(2500);
    trunk.onReport(report('YELLOW', { causes: ['RAI'] }));
    clock.advance(1000);
    trunk.onReport(report('RED'));
    clock.advance(1000);
    assert.deepEqual(brief(), ['RED:raised'], 'a brief YELLOW does not move it');
    trunk.onReport(report('YELLOW', { causes: ['RAI'] }));
    clock.advance(2500);
    assert.deepEqual(brief(), ['RED:raised', 'RED:cleared', 'YELLOW:raised']);
    assert.equal(alarms[2]?.severity, 'major');
    assert.deepEqual(alarms[2]?.causes, ['RAI']);
  });

  it('D-channel down on a clean line is its own alarm; a device fault is DEVICE and holds the line alarm', () => {
    trunk.onReport(report('OK', { dchannel: 'down' }));
    clock.advance(2500);
    assert.deepEqual(brief(), ['DCHAN_DOWN:raised']);
    trunk.onReport(report('OK', { dchannel: 'up' }));
    clock.advance(10_000);
    assert.deepEqual(brief(), ['DCHAN_DOWN:raised', 'DCHAN_DOWN:cleared']);
    alarms = [];
    trunk.onReport(report('RED'));
    clock.advance(3000);
    trunk.onFault(new HwError('HW_SERIAL_DISCONNECTED', '/dev/ttyE1 closed'));
    assert.equal(trunk.state, 'NOT_OPEN');
    clock.advance(60_000);
    assert.deepEqual(brief(), ['RED:raised', 'DEVICE:raised'], 'blind: RED neither clears nor repeats');
    assert.equal(alarms[1]?.code, 'HW_SERIAL_DISCONNECTED');
    trunk.onRecovered();
    trunk.onReport(report('OK'));
    clock.advance(10_000);
    assert.deepEqual(brief(), ['RED:raised', 'DEVICE:raised', 'DEVICE:cleared', 'RED:cleared']);
  });
});
