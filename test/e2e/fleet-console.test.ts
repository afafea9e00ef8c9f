import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FleetConsole, type FleetEvent, type Gap } from '../../scripts/fleet-console/fleet-console';
import { waitFor } from '../../sync/test/helpers/cloud';
import { freePort, Mosquitto } from '../../sync/test/helpers/mosquitto';
import { assertSippOk, ROOT, runSipp, startDaemon, type DaemonHandle } from './harness';

const CLI = path.join(ROOT, 'dist', 'scripts', 'fleet-console', 'main.js');

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

describe('fleet console: the cloud side against a real mosquitto and a real daemon', function () {
  const site = 'e2e-fc';
  const device = 'edge-fc';
  let broker: Mosquitto;
  let daemon: DaemonHandle;
  let fc: FleetConsole;
  const events: FleetEvent[] = [];
  const gaps: Gap[] = [];

  before(async () => {
    broker = await Mosquitto.start(mkdtempSync(path.join(tmpdir(), 'ccedge-mosq-fc-')));
    const url = `mqtt://127.0.0.1:${broker.port}`;
    fc = await FleetConsole.connect({ url, site });
    // Follow from before the daemon starts, so every event it ever publishes is seen.
    await fc.followEvents(
      (e) => events.push(e),
      (g) => gaps.push(g),
    );
    daemon = await startDaemon({ env: { CCEDGE_MQTT_URL: url, CCEDGE_SITE_ID: site, CCEDGE_DEVICE_ID: device } });
  });
  after(async () => {
    await daemon?.stop();
    await fc?.close();
    await broker?.stop();
  });

  it('devices: lists the device online with version, bootId, startedAt', async () => {
    let d: Awaited<ReturnType<FleetConsole['devices']>> = [];
    await waitFor(async () => {
      d = await fc.devices(500);
      return d.some((x) => x.device === device && x.online);
    }, 20_000, 'device online');
    const me = d.find((x) => x.device === device);
    assert.ok(me);
    assert.equal(me.site, site);
    assert.equal(typeof me.version, 'string');
    assert.equal(typeof me.bootId, 'string');
    assert.ok(me.startedAt && !Number.isNaN(Date.parse(me.startedAt)), `startedAt ${String(me.startedAt)}`);
  });

  it('followEvents: 2 sipp calls → call events, each seq once, no gaps', async () => {
    const r = await runSipp({ scenario: 'uac_basic.xml', target: `127.0.0.1:${daemon.sipPort}`, calls: 2, rate: 10, durationMs: 300 });
    assertSippOk(r);
    await waitFor(() => events.filter((e) => e.type === 'call.ended').length === 2, 20_000, 'two call.ended events');
    assert.equal(events.filter((e) => e.type === 'call.offered').length, 2);
    assert.deepEqual(gaps, []);
    const seqs = events.map((e) => e.seq);
    assert.equal(new Set(seqs).size, seqs.length, 'each seq once');
    const sorted = [...seqs].sort((a, b) => a - b);
    assert.deepEqual(sorted, Array.from({ length: sorted.length }, (_, i) => sorted[0] + i), 'contiguous seqs');
    assert.ok(events.every((e) => e.device === device && e.site === site));
  });

  it('command diagnostics → ok with a version; recording.hold needs a reason; unknown command → ok:false CMD_UNKNOWN', async () => {
    const d = await fc.command(device, 'diagnostics');
    assert.equal(d.ok, true, JSON.stringify(d));
    assert.equal(typeof (d.result as { version?: unknown }).version, 'string');
    const hold = await fc.command(device, 'recording.hold', { callId: 'call-under-dispute', reason: 'litigation 7' });
    assert.equal(hold.ok, true, JSON.stringify(hold));
    const noReason = await fc.command(device, 'recording.hold', { callId: 'x' });
    assert.equal(noReason.ok, false, 'a legal hold needs a reason');
    const bad = await fc.command(device, 'no.such-command_xyz');
    assert.equal(bad.ok, false);
    assert.equal(bad.code, 'CMD_UNKNOWN');
  });

  it('CLI: devices prints the device online; command exit codes; clear errors for bad URL and dead broker', async () => {
    const url = `mqtt://127.0.0.1:${broker.port}`;
    const dev = await cli(['--url', url, '--site', site, 'devices']);
    assert.equal(dev.code, 0, dev.stderr);
    assert.match(dev.stdout, new RegExp(`${site}/${device}\\s+online\\s+version=`));

    const ok = await cli(['--url', url, '--site', site, 'command', device, 'diagnostics']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { ok: boolean }).ok, true);
    const unknown = await cli(['--url', url, '--site', site, 'command', device, 'bogus']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout, /CMD_UNKNOWN/);

    const q = await cli(['--url', url, '--site', site, 'queues']);
    assert.equal(q.code, 0, q.stderr);
    // All-sites events session (the per-site one is held by this test's FleetConsole).
    const ev = await cli(['--url', url, 'events', '--for', '0.5']);
    assert.equal(ev.code, 0, ev.stderr);

    const badUrl = await cli(['--url', 'not a url', 'devices']);
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /not a URL/);
    assert.doesNotMatch(badUrl.stderr, /\n\s+at /, 'no stack trace');

    const dead = await cli(['--url', `mqtt://127.0.0.1:${await freePort()}`, 'devices']);
    assert.equal(dead.code, 2);
    assert.match(dead.stderr, /cannot connect to broker/);
    assert.doesNotMatch(dead.stderr, /\n\s+at /, 'no stack trace');
  });
});
