import assert from 'node:assert/strict';
import path from 'node:path';
import { SYSTEM_CLOCK } from '../clock';
import { trunksConfigSchema } from '../config';
import { SILENT_LOG } from '../log';
import { checksum, formatSpanLine, parseDeviceLine } from '../trunks/serial-protocol';
import type { TrunkAlarmEvent, TrunkSnapshot } from '../trunks/trunk';
import { TrunkMonitor } from '../trunks/trunk-monitor';
import { E1Sim, PtyPair, killAll, rmDir, tmpDir, until } from './helpers';

describe('hw/trunks: serial E1 status protocol', () => {
  it('parses and formats SPAN lines, checksums, HELLO/PONG/ERR/comments; rejects garbage', () => {
    const line = formatSpanLine({ span: 2, state: 'RED', causes: ['LOS', 'LOF'], dchannel: 'down', counters: { bpv: 5, crc4: 1, ebit: 0, fas: 3, slips: 0 }, framing: 'HDB3/CCS/CRC4' }, { checksum: true });
    assert.equal(line.split('*')[0], 'SPAN 2 STATE=RED ALARMS=LOS,LOF DCHAN=DOWN BPV=5 CRC4=1 EBIT=0 FAS=3 SLIP=0 FRAMING=HDB3/CCS/CRC4');
    const p = parseDeviceLine(line);
    assert.equal(p.kind, 'span');
    if (p.kind === 'span') {
      assert.deepEqual(p.report.causes, ['LOS', 'LOF']);
      assert.equal(p.report.counters.fas, 3);
    }
    assert.equal(parseDeviceLine('SPAN 1 STATE=OK').kind, 'span', 'only STATE is required');
    assert.equal(parseDeviceLine('PONG').kind, 'pong');
    assert.equal(parseDeviceLine('# comment').kind, 'comment');
    assert.deepEqual(parseDeviceLine('HELLO MODEL=x FW=2'), { kind: 'hello', fields: { MODEL: 'x', FW: '2' } });
    const body = 'SPAN 1 STATE=OK';
    assert.throws(() => parseDeviceLine(`${body}*${checksum(body) === '00' ? '01' : '00'}`), /bad checksum/);
    assert.throws(() => parseDeviceLine('SPAN 1 STATE=GREEN'), /STATE/);
    assert.throws(() => parseDeviceLine('SPAN x STATE=OK'), /span number/);
    assert.throws(() => parseDeviceLine('\u00ff\u0000~~'), /non-ASCII/);
    assert.throws(() => parseDeviceLine('SPAN 1 STATE=OK BPV=-1'), /counter/);
    assert.throws(() => parseDeviceLine('HELLO'.padEnd(300, 'x')), /too long/);
  });

  describe('over a pty pair with the simulator (socat link= symlinks)', function () {
    this.timeout(60_000);
    let dir: string;
    let pty: PtyPair | undefined;
    let sim: E1Sim | undefined;
    let monitor: TrunkMonitor | undefined;
    let alarms: TrunkAlarmEvent[];
    let changes: TrunkSnapshot[];

    const plug = async (args: string[] = []): Promise<void> => {
      pty = await PtyPair.start(path.join(dir, 'ttyE1'), path.join(dir, 'sim'));
      sim = await E1Sim.start(pty.b, ['--spans', '1,2', ...args]);
    };
    const unplug = async (): Promise<void> => {
      await pty?.stop();
      await sim?.stop();
      pty = undefined;
      sim = undefined;
    };
    const startMonitor = (extra: Record<string, unknown> = {}): TrunkMonitor => {
      const config = trunksConfigSchema.parse({
        pollMs: 200,
        raiseHoldOffMs: 0,
        clearHoldOffMs: 0,
        silenceMs: 2000,
        backoffMinMs: 100,
        backoffMaxMs: 400,
        spans: [
          { name: 'gw-1', driver: 'serial', path: path.join(dir, 'ttyE1'), baud: 9600, span: 1 },
          { name: 'gw-2', driver: 'serial', path: path.join(dir, 'ttyE1'), baud: 9600, span: 2 },
        ],
        ...extra,
      });
      const m = new TrunkMonitor({ config, dahdiDir: path.join(dir, 'no-dahdi'), dahdiPresent: false, clock: SYSTEM_CLOCK, log: SILENT_LOG });
      m.on('alarm', (a) => alarms.push(a));
      m.on('change', (s) => changes.push(s));
      m.start();
      return m;
    };
    const brief = (trunk = 'gw-1'): string[] => alarms.filter((a) => a.trunk === trunk).map((a) => `${a.alarm}:${a.state}`);

    beforeEach(() => {
      dir = tmpDir('e1');
      alarms = [];
      changes = [];
    });
    afterEach(async () => {
      await monitor?.close();
      monitor = undefined;
      await unplug();
      await killAll();
      rmDir(dir);
    });

    it('the simulator drives span 1 RED → RECOVERING → OK: events carry the states and counters', async () => {
      await plug(['--checksum']);
      monitor = startMonitor();
      const gw1 = monitor.get('gw-1');
      assert.ok(gw1);
      await until(() => gw1.state === 'OK' && monitor?.get('gw-2')?.state === 'OK', 'both spans OK');
      assert.equal(gw1.snapshot().dchannel, 'up');
      await sim?.cmd('count 1 bpv=1200 crc4=40 fas=17');
      await sim?.cmd('state 1 RED LOS,LOF');
      await until(() => alarms.length >= 1, 'RED raised');
      assert.deepEqual(brief(), ['RED:raised']);
      assert.deepEqual(alarms[0]?.causes, ['LOS', 'LOF']);
      assert.deepEqual(alarms[0]?.counters, { bpv: 1200, crc4: 40, ebit: 0, fas: 17, slips: 0 });
      assert.equal(alarms[0]?.driver, 'serial');
      await sim?.cmd('add 1 crc4=2 slip=1');
      await sim?.cmd('state 1 RECOVERING');
      await until(() => gw1.state === 'RECOVERING', 'RECOVERING');
      assert.deepEqual(gw1.snapshot().counters, { bpv: 1200, crc4: 42, ebit: 0, fas: 17, slips: 1 });
      assert.deepEqual(brief(), ['RED:raised']);
      await sim?.cmd('state 1 OK');
      await until(() => brief().length === 2, 'RED cleared');
      assert.deepEqual(brief(), ['RED:raised', 'RED:cleared']);
      assert.equal(gw1.state, 'OK');
      assert.deepEqual(brief('gw-2'), [], 'span 2 untouched');
      assert.ok(changes.some((c) => c.name === 'gw-1' && c.state === 'RECOVERING'));
      assert.match(sim?.output ?? '', /rx STATUS/, 'the monitor polls with STATUS');
    });

    it('garbage lines are a fault (DEVICE alarm, reopen with backoff) and a valid line clears it; never a crash', async () => {
      await plug();
      monitor = startMonitor();
      const gw1 = monitor.get('gw-1');
      assert.ok(gw1);
      await until(() => gw1.state === 'OK', 'OK');
      await sim?.cmd('raw SPAN 1 STATE=PURPLE');
      await sim?.cmd('garbage 1');
      await until(() => gw1.state === 'OK', 'two bad lines are tolerated');
      await sim?.cmd('garbage 1');
      await until(() => alarms.some((a) => a.alarm === 'DEVICE'), 'DEVICE raised');
      const dev = alarms.find((a) => a.trunk === 'gw-1' && a.alarm === 'DEVICE');
      assert.equal(dev?.code, 'HW_SERIAL_GARBAGE');
      assert.equal(dev?.severity, 'critical');
      // The port is reopened; the simulator answers STATUS again and the fault clears.
      await until(() => alarms.some((a) => a.trunk === 'gw-1' && a.alarm === 'DEVICE' && a.state === 'cleared'), 'DEVICE cleared');
      await until(() => gw1.state === 'OK', 'OK again');
      // One stray unknown line (below garbageLines in a row) is only counted.
      alarms = [];
      await sim?.cmd(`raw ${'Z'.repeat(200)}`);
      await sim?.cmd('send');
      await until(() => gw1.state === 'OK', 'still OK after one stray line');
      assert.deepEqual(alarms, []);
    });

    it('silence is a fault (HW_SERIAL_SILENT), cleared when the device talks again', async () => {
      await plug();
      monitor = startMonitor();
      const gw1 = monitor.get('gw-1');
      assert.ok(gw1);
      await until(() => gw1.state === 'OK', 'OK');
      await sim?.cmd('mute on');
      await until(() => alarms.some((a) => a.alarm === 'DEVICE' && a.code === 'HW_SERIAL_SILENT'), 'silent', 15_000);
      assert.equal(gw1.state, 'NOT_OPEN');
      await sim?.cmd('mute off');
      await until(() => gw1.state === 'OK', 'talks again', 15_000);
      assert.ok(alarms.some((a) => a.alarm === 'DEVICE' && a.state === 'cleared'));
    });

    it('unplug (socat and its links gone) is a fault retried with backoff; replug on the same path recovers', async () => {
      await plug();
      monitor = startMonitor();
      const gw1 = monitor.get('gw-1');
      const gw2 = monitor.get('gw-2');
      assert.ok(gw1 && gw2);
      await until(() => gw1.state === 'OK', 'OK');
      await sim?.cmd('state 2 YELLOW RAI');
      await until(() => brief('gw-2').includes('YELLOW:raised'), 'YELLOW on span 2');
      await unplug();
      await until(() => brief().includes('DEVICE:raised') && brief('gw-2').includes('DEVICE:raised'), 'DEVICE on both spans');
      assert.equal(alarms.find((a) => a.alarm === 'DEVICE')?.code, 'HW_SERIAL_DISCONNECTED');
      assert.equal(gw1.state, 'NOT_OPEN');
      assert.equal(gw1.snapshot().fault?.code !== undefined, true);
      // Reopen attempts fail (ENOENT) while unplugged: the fault stays, nothing crashes.
      await new Promise((r) => setTimeout(r, 1000));
      assert.match(gw1.snapshot().fault?.code ?? '', /HW_SERIAL_(OPEN_FAILED|DISCONNECTED)/);
      assert.equal(brief().filter((b) => b === 'DEVICE:raised').length, 1, 'one DEVICE alarm, however many retries');
      await plug();
      await until(() => gw1.state === 'OK' && gw2.state === 'OK', 'both spans OK after replug', 15_000);
      assert.deepEqual(brief(), ['DEVICE:raised', 'DEVICE:cleared']);
      // Span 2 was YELLOW before the unplug; the new device says OK: YELLOW clears (once).
      assert.deepEqual(brief('gw-2'), ['YELLOW:raised', 'DEVICE:raised', 'DEVICE:cleared', 'YELLOW:cleared']);
    });
  });
});
