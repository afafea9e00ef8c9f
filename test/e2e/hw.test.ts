import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { E1Sim, FIXTURES, killAll, PtyPair } from '../../hw/test/helpers';
import { Cloud } from '../../sync/test/helpers/cloud';
import { Mosquitto } from '../../sync/test/helpers/mosquitto';
import { eventually, freePort, runCli, runSipp, startDaemon, type DaemonHandle } from './harness';
import { optionsMessage, udpExchange } from './sip-probe';

interface TrunkView {
  name: string;
  state: string;
  driver: string;
  counters: Record<string, number>;
}

describe('hardware in the running daemon: E1 trunks (serial simulator + DAHDI files), panel, health, over the real broker', function () {
  this.timeout(120_000);
  const site = 'e2e-hw';
  const device = 'edge-hw';
  const prefix = `ccedge/v1/${site}/${device}/`;
  let dir: string;
  let broker: Mosquitto;
  let cloud: Cloud;
  let daemon: DaemonHandle;
  let e1: PtyPair;
  let panel: PtyPair;
  let sim: E1Sim;
  let panelBytes = Buffer.alloc(0);
  let panelReader: ReturnType<typeof import('node:fs').createReadStream> | undefined;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ccedge-hw-e2e-'));
    const dahdi = path.join(dir, 'dahdi');
    mkdirSync(dahdi);
    copyFileSync(path.join(FIXTURES, 'dahdi', 'yellow', '1'), path.join(dahdi, '1'));
    e1 = await PtyPair.start(path.join(dir, 'ttyE1'), path.join(dir, 'sim'));
    sim = await E1Sim.start(e1.b, ['--spans', '1']);
    panel = await PtyPair.start(path.join(dir, 'ttyLCD'), path.join(dir, 'lcd'));
    const { createReadStream } = await import('node:fs');
    panelReader = createReadStream(panel.b);
    panelReader.on('data', (c) => (panelBytes = Buffer.concat([panelBytes, c as Buffer])));
    panelReader.on('error', () => undefined);
    broker = await Mosquitto.start(mkdtempSync(path.join(tmpdir(), 'ccedge-mosq-hw-')));
    cloud = await Cloud.connect(broker.port, [`${prefix}#`]);
    daemon = await startDaemon({
      config: {
        trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
        hw: {
          health: { intervalS: 1 },
          trunks: { pollMs: 200, raiseHoldOffMs: 500, clearHoldOffMs: 500, spans: [{ name: 'e1-serial', driver: 'serial', path: e1.a }] },
          panel: { path: panel.a, refreshMs: 200 },
        },
      },
      env: { CCEDGE_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`, CCEDGE_SITE_ID: site, CCEDGE_DEVICE_ID: device, CCEDGE_DAHDI_DIR: dahdi },
    });
  });
  after(async () => {
    await daemon?.stop();
    panelReader?.destroy();
    await sim?.stop();
    await e1?.stop();
    await panel?.stop();
    await cloud?.close();
    await broker?.stop();
    await killAll();
  });

  const events = (type: string): Array<Record<string, unknown>> =>
    cloud.received
      .filter((r) => r.topic === `${prefix}events`)
      .map((r) => JSON.parse(r.payload.toString()) as Record<string, unknown>)
      .filter((e) => e.type === type);
  const trunks = async (): Promise<TrunkView[]> => (await daemon.api<{ trunks: TrunkView[] }>('/api/v1/trunks')).body.trunks;

  it('GET /api/v1/trunks shows the serial span and the DAHDI span (YELLOW from /proc/dahdi format) with its alarm sent to the cloud', async () => {
    const list = await eventually(async () => {
      const t = await trunks();
      return t.length === 2 && t.every((x) => x.state !== 'NOT_OPEN') && t;
    }, 20_000);
    const dahdi = list.find((t) => t.driver === 'dahdi');
    assert.equal(dahdi?.state, 'YELLOW');
    await eventually(async () => events('trunk.alarm').some((e) => e.driver === 'dahdi' && e.alarm === 'YELLOW' && e.state === 'raised'), 20_000);
  });

  it('the simulator drives the serial span RED → RECOVERING → OK: alarm raised then cleared with counters, in the cloud', async () => {
    await sim.cmd('count 1 bpv=1200 crc4=40 fas=17');
    await sim.cmd('state 1 RED LOS,LOF');
    const raised = await eventually(async () => events('trunk.alarm').find((e) => e.trunk === 'e1-serial' && e.alarm === 'RED' && e.state === 'raised'), 20_000);
    assert.equal(raised.bpv, 1200);
    assert.equal(raised.crc4, 40);
    assert.equal(raised.fas, 17);
    assert.deepEqual(raised.causes, ['LOS', 'LOF']);
    assert.equal((await trunks()).find((t) => t.name === 'e1-serial')?.state, 'RED');
    await sim.cmd('state 1 RECOVERING');
    await eventually(async () => (await trunks()).find((t) => t.name === 'e1-serial')?.state === 'RECOVERING', 10_000);
    await sim.cmd('state 1 OK');
    await eventually(async () => events('trunk.alarm').some((e) => e.trunk === 'e1-serial' && e.alarm === 'RED' && e.state === 'cleared'), 20_000);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    assert.match(metrics, /ccedge_hw_trunk/);
  });

  it('health: GET /api/v1/health agrees with /proc/meminfo; samples are published on `health`; the panel shows the site', async () => {
    const h = (await daemon.api<{ health: { memory: { totalBytes: number } } | null }>('/api/v1/health')).body;
    const memTotalKb = Number(/MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
    assert.ok(h.health, JSON.stringify(h));
    assert.equal(JSON.stringify(h).includes(String(memTotalKb * 1024)), true, `MemTotal ${memTotalKb} kB not in ${JSON.stringify(h).slice(0, 400)}`);
    await cloud.until(() => cloud.received.some((r) => r.topic === `${prefix}health`), 20_000, 'a health sample');
    await eventually(async () => panelBytes.includes(Buffer.from(site)), 20_000);
  });

  it('ccedge status and queues read the running daemon; with none running they say so (exit 3)', async () => {
    const env = { CCEDGE_DATA_DIR: daemon.dataDir, CCEDGE_HTTP_HOST: '127.0.0.1', CCEDGE_HTTP_PORT: String(daemon.httpPort), CCEDGE_ADMIN_TOKEN: daemon.adminToken };
    const status = await runCli(['status'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`site ${site}\\s+device ${device}`));
    assert.match(status.stdout, /calls: 0 active/);
    assert.match(status.stdout, /cloud: connected/);
    assert.match(status.stdout, /trunk e1-serial: OK/);
    const queues = await runCli(['queues', '--json'], env);
    assert.equal(queues.code, 0, queues.stderr);
    assert.ok(Array.isArray(JSON.parse(queues.stdout)));
    const none = await runCli(['status'], { ...env, CCEDGE_HTTP_PORT: String(await freePort()) });
    assert.equal(none.code, 3);
    assert.match(none.stderr, /no daemon answers/);
  });
});

describe('watchdog in the running daemon: fed while its SIP self-check and the db answer, even when loopback is no trunk peer', function () {
  this.timeout(60_000);
  let daemon: DaemonHandle | undefined;
  after(async () => {
    await daemon?.stop();
  });

  it('keeps feeding the device; the self-check neither logs a rejection nor counts one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ccedge-wd-e2e-'));
    const device = path.join(dir, 'watchdog');
    writeFileSync(device, '');
    daemon = await startDaemon({
      // The PBX is elsewhere: the box's own loopback is not an allowed peer.
      config: { trunks: [{ name: 'pbx', allow: ['192.0.2.10/32'] }], hw: { watchdog: { device, deviceIntervalMs: 200 } } },
    });
    await eventually(async () => statSync(device).size >= 5, 20_000);
    assert.equal(daemon.logs.some((l) => l.code === 'SIP_PEER_FORBIDDEN' || l.code === 'HW_WATCHDOG_CHECK_FAILED'), false, 'a self-check was refused or failed');
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    assert.doesNotMatch(metrics, /^ccedge_sip_rejections_total\{[^}]*\} [1-9]/m);
    assert.doesNotMatch(metrics, /^ccedge_sip_dropped_total\{[^}]*\} [1-9]/m);
    // A peer that only knows the probe's shape (an OPTIONS from loopback) is still dropped unanswered.
    const port = daemon.sipPort;
    const lines = await udpExchange(port, optionsMessage({ host: '127.0.0.1', port }, { ip: '127.0.0.1', port: 5999 }, `ccedge-selfcheck-guess-${Date.now()}`));
    assert.deepEqual(lines, []);
    const after = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    assert.match(after, /^ccedge_sip_dropped_total\{transport="udp",reason="forbidden"\} 1$/m);
    assert.equal(await daemon.stop(), 0);
    daemon = undefined;
    assert.ok(readFileSync(device, 'latin1').endsWith('V'), 'magic close on a clean stop');
  });
});
