import assert from 'node:assert/strict';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { SYSTEM_CLOCK } from '../clock';
import { panelConfigSchema } from '../config';
import type { HwError } from '../errors';
import { SILENT_LOG } from '../log';
import { fitText } from '../panel/display';
import { FrontPanel } from '../panel/front-panel';
import { renderScreens, type PanelInfo } from '../panel/pages';
import { PtyPair, killAll, rmDir, sleep, tmpDir, until } from './helpers';

const INIT = [0xfe, 0x52, 0xfe, 0x44, 0xfe, 0x4b, 0xfe, 0x54, 0xfe, 0x42, 0x00, 0xfe, 0x58];
const row = (r: number, text: string): number[] => [0xfe, 0x47, 1, r + 1, ...Buffer.from(text, 'latin1')];

describe('hw/panel: serial character display', function () {
  this.timeout(60_000);

  it('renders pages to fixed-width ASCII screens (16x2: one pair, 20x4: two pairs)', () => {
    const info: PanelInfo = { site: 'Zürich-branch-long-name', ip: '192.0.2.10', activeCalls: 12, worstAlarm: 'pbx-a RED', trunks: [{ name: 'pbx-a', state: 'RED' }, { name: 'pbx-b', state: 'OK' }] };
    const small = renderScreens(info, 16, 2);
    assert.deepEqual(small[0], ['Zurich-branch-lo', 'Calls 12 ALARM  ']);
    assert.deepEqual(small[1], ['Worst alarm     ', 'pbx-a RED       ']);
    assert.deepEqual(small[2], ['IP address      ', '192.0.2.10      ']);
    assert.deepEqual(small[3], ['pbx-a:RED       ', 'pbx-b:OK        '], 'trunks, one per line when two do not fit');
    assert.equal(small.length, 4);
    const big = renderScreens(info, 20, 4);
    assert.equal(big.length, 2);
    assert.deepEqual(big[0], ['Zurich-branch-long-n', 'Calls 12 ALARM      ', 'Worst alarm         ', 'pbx-a RED           ']);
    assert.deepEqual(big[1], ['IP address          ', '192.0.2.10          ', 'Trunks              ', 'pbx-a:RED pbx-b:OK  ']);
    assert.deepEqual(renderScreens({ site: 's', ip: null, activeCalls: 0 }, 16, 2).length, 3, 'no trunk page without trunks');
    assert.equal(fitText('a\u0007b', 4), 'a?b ');
  });

  describe('over a pty pair', () => {
    let dir: string;
    let pty: PtyPair | undefined;
    let panel: FrontPanel | undefined;
    let peer: SerialPort | undefined;
    let bytes: number[];

    const openPeer = async (p: string): Promise<SerialPort> => {
      const port = new SerialPort({ path: p, baudRate: 19200, autoOpen: false });
      await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
      port.on('data', (c: Buffer) => bytes.push(...c));
      port.on('error', () => undefined);
      return port;
    };
    const closePeer = async (): Promise<void> => {
      const p = peer;
      peer = undefined;
      if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
    };

    beforeEach(() => {
      dir = tmpDir('panel');
      bytes = [];
    });
    afterEach(async () => {
      await panel?.close();
      panel = undefined;
      await closePeer();
      await pty?.stop();
      pty = undefined;
      await killAll();
      rmDir(dir);
    });

    it('writes exactly init + changed rows, a key byte from the panel shows the next page, unplug/replug redraws', async () => {
      pty = await PtyPair.start(path.join(dir, 'lcd'), path.join(dir, 'peer'));
      peer = await openPeer(pty.b);
      const info = { site: 'site-1', ip: '192.0.2.7', activeCalls: 2 };
      const faults: HwError[] = [];
      panel = new FrontPanel({
        config: panelConfigSchema.parse({ path: pty.a, size: '16x2', refreshMs: 100, backoffMinMs: 100, backoffMaxMs: 200 }),
        info: () => ({ ...info, worstAlarm: null }),
        clock: SYSTEM_CLOCK,
        log: SILENT_LOG,
      });
      panel.on('fault', (e) => faults.push(e));
      let recovered = 0;
      panel.on('recovered', () => recovered++);
      panel.start();
      const first = [...INIT, ...row(0, 'site-1          '), ...row(1, 'Calls 2 OK      ')];
      await until(() => bytes.length >= first.length, 'first screen');
      await sleep(300); // several refreshes: nothing changed, nothing more is sent
      assert.deepEqual(bytes, first);

      // Only the changed row is rewritten.
      bytes = [];
      info.activeCalls = 3;
      const upd = row(1, 'Calls 3 OK      ');
      await until(() => bytes.length >= upd.length, 'calls row');
      await sleep(200);
      assert.deepEqual(bytes, upd);

      // A key press (Matrix Orbital keypads send one ASCII byte) → next page.
      bytes = [];
      peer.write(Buffer.from('A'));
      const page2 = [...row(0, 'Worst alarm     '), ...row(1, 'none            ')];
      await until(() => bytes.length >= page2.length, 'page 2');
      await sleep(200);
      assert.deepEqual(bytes, page2);
      assert.deepEqual(panel.page, { index: 1, count: 3 });

      // Unplug: a fault, retried; replug on the same link: init and the full page again.
      await closePeer();
      await pty.stop();
      await until(() => faults.length > 0, 'panel fault');
      assert.match(faults[0]?.code ?? '', /HW_SERIAL_(DISCONNECTED|OPEN_FAILED)/);
      await sleep(400);
      assert.equal(faults.length, 1, 'one fault however many retries');
      bytes = [];
      pty = await PtyPair.start(path.join(dir, 'lcd'), path.join(dir, 'peer'));
      peer = await openPeer(pty.b);
      const again = [...INIT, ...page2];
      await until(() => recovered === 1 && bytes.length >= again.length, 'redrawn after replug', 15_000);
      await sleep(200);
      assert.deepEqual(bytes, again);
    });
  });
});
