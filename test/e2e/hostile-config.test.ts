import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FleetConsole } from '../../scripts/fleet-console/fleet-console';
import { waitFor } from '../../sync/test/helpers/cloud';
import { Mosquitto } from '../../sync/test/helpers/mosquitto';
import { sleep, startDaemon, type DaemonHandle } from './harness';
import { TestUac } from './test-uac';

interface CallRecord {
  id: string;
  toUser?: string;
}
interface CallEvent {
  type: string;
  data: Record<string, unknown>;
}

/**
 * The PBX side's keep-alive: SIP OPTIONS from the trunk's address every 50 ms, each answer's delay
 * recorded. A probe still unanswered when the prober stops counts with its full age: a frozen
 * event loop shows up as a huge p99, not as missing samples.
 */
class OptionsProber {
  private readonly sent = new Map<string, number>();
  private readonly delays: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private constructor(private readonly sock: Socket, private readonly target: number) {
    sock.on('message', (msg) => {
      const id = /^Call-ID:\s*(\S+)/im.exec(msg.toString('latin1'))?.[1];
      const at = id === undefined ? undefined : this.sent.get(id);
      if (id === undefined || at === undefined || !msg.toString('latin1').startsWith('SIP/2.0 200')) return;
      this.sent.delete(id);
      this.delays.push(Date.now() - at);
    });
  }

  static async start(sipPort: number): Promise<OptionsProber> {
    const sock = createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    const p = new OptionsProber(sock, sipPort);
    p.timer = setInterval(() => p.probe(), 50);
    return p;
  }

  private probe(): void {
    const port = this.sock.address().port;
    const id = `${randomBytes(8).toString('hex')}@prober`;
    const msg = [
      `OPTIONS sip:ping@127.0.0.1:${this.target} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70',
      `From: <sip:pbx@127.0.0.1:${port}>;tag=${randomBytes(4).toString('hex')}`,
      `To: <sip:ping@127.0.0.1:${this.target}>`,
      `Call-ID: ${id}`,
      'CSeq: 1 OPTIONS',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    this.sent.set(id, Date.now());
    this.sock.send(msg, this.target, '127.0.0.1');
  }

  /** Stops probing (after a last 1 s for answers in flight) and returns count and p99 in ms. */
  async stop(): Promise<{ probes: number; answered: number; p99: number; max: number }> {
    clearInterval(this.timer);
    await sleep(1000);
    const now = Date.now();
    const all = [...this.delays, ...[...this.sent.values()].map((at) => now - at)].sort((a, b) => a - b);
    this.sock.close();
    return { probes: all.length, answered: this.delays.length, p99: all[Math.min(all.length - 1, Math.floor(all.length * 0.99))] ?? 0, max: all[all.length - 1] ?? 0 };
  }
}

function vmRssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

describe('hostile config: pushed config is data, not code (issue 13)', function () {
  const site = 'e2e-hostile';
  const device = 'edge-hostile';
  const config = {
    trunks: [{ name: 'pbx', allow: ['127.0.0.1/32'] }],
    queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }],
    calls: { queue: 'support' },
    agents: [{ name: 'alice', password: 'alice-password-1' }],
  };
  let broker: Mosquitto;
  let daemon: DaemonHandle;
  let fc: FleetConsole;
  const uacs: TestUac[] = [];

  before(async () => {
    broker = await Mosquitto.start(mkdtempSync(path.join(tmpdir(), 'ccedge-mosq-hostile-')));
    fc = await FleetConsole.connect({ url: `mqtt://127.0.0.1:${broker.port}`, site });
    daemon = await startDaemon({
      config,
      env: { CCEDGE_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`, CCEDGE_SITE_ID: site, CCEDGE_DEVICE_ID: device, CCEDGE_WEBRTC_INTERFACES: '127.0.0.1' },
    });
    await waitFor(async () => (await fc.devices(300)).some((d) => d.device === device && d.online), 20_000, 'device online');
  });
  after(async () => {
    for (const u of uacs) u.close();
    await daemon?.stop();
    await fc?.close();
    await broker?.stop();
  });

  const queuedIntent = async (toUser: string): Promise<unknown> => {
    let rec: CallRecord | undefined;
    await waitFor(async () => {
      rec = (await daemon.api<{ calls: CallRecord[] }>('/api/v1/calls')).body.calls.find((c) => c.toUser === toUser);
      return rec !== undefined;
    }, 10_000, `call record to ${toUser}`);
    let intent: unknown;
    await waitFor(async () => {
      const { body } = await daemon.api<{ events: CallEvent[] }>(`/api/v1/calls/${rec?.id}`);
      intent = body.events.find((e) => e.type === 'call.queued')?.data.intent;
      return intent !== undefined;
    }, 10_000, 'call.queued');
    return intent;
  };

  it('the catastrophic rule /^(a+)+$/ is applied and runs in linear time: OPTIONS keep being answered, the call is routed', async () => {
    const reported = await fc.pushConfig(device, 2, {
      queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }, { name: 'vip' }],
      intents: [
        { name: 'general', queue: 'support' },
        { name: 'aaa', queue: 'vip' },
      ],
      routing: { dnis: [{ match: '/^(a+)+$/', intent: 'aaa' }], defaultIntent: 'general' },
    });
    assert.equal(reported.error, undefined, JSON.stringify(reported));
    const prober = await OptionsProber.start(daemon.sipPort);
    await sleep(500);
    const hostileTo = `${'a'.repeat(40)}!`; // 2^40 backtracking steps in V8's RegExp
    const uac = await TestUac.create();
    uacs.push(uac);
    assert.equal(await uac.call(`127.0.0.1:${daemon.sipPort}`, { to: hostileTo }), 200);
    assert.equal(await queuedIntent(hostileTo), 'general', 'no match: the default intent');
    const matching = await TestUac.create();
    uacs.push(matching);
    assert.equal(await matching.call(`127.0.0.1:${daemon.sipPort}`, { to: 'aaaaaaaa' }), 200);
    assert.equal(await queuedIntent('aaaaaaaa'), 'aaa', 'the rule still matches what it should');
    await sleep(500);
    const stats = await prober.stop();
    console.log(`      OPTIONS during the catastrophic-regex call: ${stats.answered}/${stats.probes} answered, p99 ${stats.p99} ms, max ${stats.max} ms`);
    assert.equal(stats.answered, stats.probes);
    assert.ok(stats.p99 < 1000, `OPTIONS p99 ${stats.p99} ms`);
    await uac.hangup();
    await matching.hangup();
  });

  it('a backreference pattern is refused with the key named', async () => {
    const r = await fc.pushConfig(device, 3, {
      queues: [{ name: 'support' }, { name: 'vip' }],
      intents: [{ name: 'general', queue: 'support' }],
      routing: { dnis: [{ match: '/^(a+)\\1$/', intent: 'general' }], defaultIntent: 'general' },
    });
    assert.equal(r.code, 'CONFIG_INVALID');
    assert.match(String(r.error), /routing\.dnis\.0\.match: bad regular expression: backreferences/);
  });

  it('100,000 queues are refused (payload bound), 600 by the queue limit; OPTIONS stay answered and RSS stays put', async () => {
    const rssBefore = vmRssKb(daemon.pid);
    const prober = await OptionsProber.start(daemon.sipPort);
    await sleep(300);
    const huge = await fc.pushConfig(device, 4, { queues: Array.from({ length: 100_000 }, (_, i) => ({ name: `q${i}` })) }, 30_000);
    assert.equal(huge.code, 'CONFIG_TOO_LARGE', JSON.stringify(huge));
    assert.match(String(huge.error), /more than the 1048576 allowed \(sync\.maxConfigBytes\)/);
    const many = await fc.pushConfig(device, 5, { queues: Array.from({ length: 600 }, (_, i) => ({ name: `q${i}` })) }, 30_000);
    assert.equal(many.code, 'CONFIG_INVALID', JSON.stringify(many));
    assert.match(String(many.error), /^queues: at most 500 queues/);
    await sleep(500);
    const stats = await prober.stop();
    const rssAfter = vmRssKb(daemon.pid);
    console.log(`      OPTIONS during the 100,000-queue push: ${stats.answered}/${stats.probes} answered, p99 ${stats.p99} ms, max ${stats.max} ms; VmRSS ${Math.round(rssBefore / 1024)} MB -> ${Math.round(rssAfter / 1024)} MB`);
    assert.equal(stats.answered, stats.probes);
    assert.ok(stats.p99 < 1000, `OPTIONS p99 ${stats.p99} ms`);
    assert.ok(rssAfter - rssBefore < 100 * 1024, `RSS grew ${rssAfter - rssBefore} kB`);
    const refused = await daemon.waitForLog((l) => l.code === 'CONFIG_TOO_LARGE');
    assert.equal(refused.version, 4);
    assert.equal(daemon.logs.filter((l) => l.code === 'CONFIG_TOO_LARGE').length, 1, 'logged once');
    assert.deepEqual((await fc.queues(1000)).filter((q) => q.device === device).map((q) => q.queue).sort(), ['support', 'vip'], 'the running config is untouched');
  });

  it('a push that removes a queue clears its retained snapshot on the broker', async () => {
    await waitFor(async () => (await fc.queues(500)).some((q) => q.device === device && q.queue === 'vip'), 20_000, 'retained queues/vip');
    const r = await fc.pushConfig(device, 6, { queues: [{ name: 'support', ringTimeoutS: 20, wrapUpS: 0 }] });
    assert.equal(r.error, undefined, JSON.stringify(r));
    await daemon.waitForLog((l) => l.msg === 'retained messages of removed subjects cleared on the broker');
    // A fresh subscriber (fc.queues subscribes anew) gets only the queues that exist.
    await sleep(1500);
    assert.deepEqual((await fc.queues(1000)).filter((q) => q.device === device).map((q) => q.queue), ['support']);
  });
});
