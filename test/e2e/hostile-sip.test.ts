import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import type { CallRecord } from '../../gateway/store/call-store';
import { eventually, sleep, startDaemon, type DaemonHandle } from './harness';
import { assertUnharmed as unharmed, underAttack, WATCHDOG_INTERVAL_MS, WatchdogFifo, type UnderAttack } from './hostile-harness';

const assertUnharmed = (label: string, u: UnderAttack<unknown>): void => unharmed(label, u, figures);
import { optionsMessage, udpExchange } from './sip-probe';
import { TestUac } from './test-uac';

/**
 * Issue 13, SIP rows, as the site would notice them: while an outsider (127.0.0.9, in no trunk's
 * allow-list) and a misbehaving trunk peer (127.0.0.3, allowed) attack the SIP listener, the real
 * PBX (127.0.0.1) keeps its trunk up (OPTIONS answered within 1 s), its calls are set up and
 * recorded, the admin API answers, the watchdog is fed without a gap, and the log stays short.
 */
const PBX = '127.0.0.1';
const ROGUE_PEER = '127.0.0.3';
const OUTSIDER = '127.0.0.9';
const MESSAGE_TIMEOUT_S = 2;

const figures: string[] = [];

/** Sends `count` datagrams from `fromIp` at `perSecond`. */
async function udpFlood(port: number, fromIp: string, payload: Buffer, count: number, perSecond: number): Promise<void> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, fromIp, () => r()));
  const gap = 1000 / perSecond;
  const started = Date.now();
  for (let i = 0; i < count; i++) {
    s.send(payload, port, '127.0.0.1');
    const due = started + (i + 1) * gap;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
  }
  await new Promise<void>((r) => s.close(() => r()));
}

/** Opens a TCP connection from `fromIp`; resolves when it is established or refused. */
function tcpOpen(port: number, fromIp: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: fromIp });
    s.once('connect', () => resolve(s));
    s.once('error', () => resolve(undefined));
  });
}

/** Resolves with how long the server kept the connection open (ms), or -1 if still open at `maxMs`. */
function closedAfter(s: Socket, maxMs: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(-1), maxMs);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
    s.on('error', () => undefined);
  });
}

async function metricValue(d: DaemonHandle, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function calls(d: DaemonHandle): Promise<CallRecord[]> {
  const r = await d.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=1000');
  return r.body.calls;
}

/** One call from the real PBX: INVITE to 200 (ms), a moment of audio, BYE. */
async function pbxCall(d: DaemonHandle): Promise<number> {
  const uac = await TestUac.create({ localIp: PBX });
  try {
    const t0 = performance.now();
    const status = await uac.call(`127.0.0.1:${d.sipPort}`, { to: 'support' });
    const ms = performance.now() - t0;
    assert.equal(status, 200, 'the PBX call was not answered');
    await sleep(300);
    await uac.hangup();
    return ms;
  } finally {
    uac.close();
  }
}

describe('hostile SIP input: drop before parse, linear parsing, connection caps (issue 13)', function () {
  this.timeout(240_000);
  let daemon: DaemonHandle;
  let wd: WatchdogFifo;

  before(async () => {
    wd = new WatchdogFifo();
    wd.start();
    daemon = await startDaemon({
      config: {
        site: { id: 'e2e', deviceId: 'edge-hostile' },
        sip: { maxCalls: 50, limits: { messageTimeoutS: MESSAGE_TIMEOUT_S, maxConnectionsPerSource: 64 } },
        calls: { maxDurationS: 30 },
        trunks: [{ name: 'pbx', allow: [`${PBX}/32`, `${ROGUE_PEER}/32`] }],
        queues: [{ name: 'support' }],
        hw: { watchdog: { device: wd.path, deviceIntervalMs: WATCHDOG_INTERVAL_MS } },
      },
      env: { CCEDGE_LOG_LEVEL: 'info' },
    });
    await eventually(async () => wd.fed >= 3, 20_000);
  });

  after(async () => {
    await daemon?.stop();
    wd?.close();
    if (figures.length) console.log(`      --- figures ---\n      ${figures.join('\n      ')}`);
  });

  it('60 KB datagrams of spaces from an outsider, 20 per second: dropped unparsed, the trunk stays up', async () => {
    const spaces = Buffer.alloc(60_000, 0x20);
    const underCap = Buffer.concat([Buffer.from('OPTIONS sip:x@y SIP/2.0\r\nContact: <'), Buffer.alloc(30_000, 0x20)]);
    const u = await underAttack(daemon, wd, PBX, async () => {
      await Promise.all([udpFlood(daemon.sipPort, OUTSIDER, spaces, 100, 20), udpFlood(daemon.sipPort, OUTSIDER, underCap, 100, 20)]);
    });
    assertUnharmed('UDP 60 KB spaces + 30 KB headers from an outsider', u);
    assert.equal(await metricValue(daemon, 'ccedge_sip_dropped_total', 'transport="udp",reason="too-large"'), 100);
    assert.ok((await metricValue(daemon, 'ccedge_sip_dropped_total', 'transport="udp",reason="forbidden"')) >= 100);
  });

  it('hostile headers from an allowed peer are parsed in linear time and answered', async () => {
    // What sip.js 0.0.6 took seconds over: a '<' and 30 KB of spaces in a name-addr header.
    const nasty = (n: number): Buffer =>
      Buffer.concat([optionsMessage({ host: '127.0.0.1', port: daemon.sipPort }, { ip: ROGUE_PEER, port: 5999 }, `nasty-${n}`).subarray(0, -2), Buffer.from(`Contact: <${' '.repeat(30_000)}\r\n\r\n`)]);
    const u = await underAttack(daemon, wd, PBX, async () => {
      for (let i = 0; i < 40; i++) {
        const lines = await udpExchange(daemon.sipPort, nasty(i), { fromIp: ROGUE_PEER, waitMs: 100 });
        assert.ok(lines.length <= 1);
      }
    });
    assertUnharmed('UDP 30 KB name-addr headers from an allowed peer', u);
  });

  it('TCP: outsiders are closed at accept; an allowed peer trickling a message is cut at the message timeout; Content-Length past the data too', async () => {
    const u = await underAttack(daemon, wd, PBX, async () => {
      const outsiders = (await Promise.all(Array.from({ length: 40 }, () => tcpOpen(daemon.sipPort, OUTSIDER)))).filter((s): s is Socket => s !== undefined);
      const outsiderClosed = await Promise.all(outsiders.map((s) => closedAfter(s, 3000)));
      assert.ok(outsiderClosed.every((ms) => ms >= 0 && ms < 1000), `outsider connections left open: ${outsiderClosed.join(',')}`);

      const trickles = (await Promise.all(Array.from({ length: 40 }, () => tcpOpen(daemon.sipPort, ROGUE_PEER)))).filter((s): s is Socket => s !== undefined);
      assert.equal(trickles.length, 40);
      const timers = trickles.map((s, i) => {
        s.write(`OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nX-Trickle-${i}: `);
        return setInterval(() => s.writable && s.write(' '), 100);
      });
      const short = await tcpOpen(daemon.sipPort, ROGUE_PEER);
      assert.ok(short);
      short.write(
        ['INVITE sip:support@127.0.0.1 SIP/2.0', `Via: SIP/2.0/TCP ${ROGUE_PEER}:5999;branch=z9hG4bK-short`, 'From: <sip:a@b>;tag=1', 'To: <sip:support@127.0.0.1>', 'Call-ID: short-body', 'CSeq: 1 INVITE', 'Content-Length: 20000', '', 'abc'].join('\r\n'),
      );
      const closed = await Promise.all([...trickles, short].map((s) => closedAfter(s, (MESSAGE_TIMEOUT_S + 5) * 1000)));
      timers.forEach(clearInterval);
      assert.ok(closed.every((ms) => ms >= 0), `connections still open after the message timeout: ${closed.filter((ms) => ms < 0).length}`);
    });
    assertUnharmed('TCP: 40 outsider connections, 40 trickling peer connections, a short body', u);
    assert.ok((await metricValue(daemon, 'ccedge_sip_dropped_total', 'transport="tcp",reason="forbidden"')) >= 40);
    assert.ok((await metricValue(daemon, 'ccedge_sip_dropped_total', 'transport="tcp",reason="message-timeout"')) >= 41);
  });

  it('20,000 TCP connections from outsiders and 200 idle ones from a peer: file descriptors hold, the PBX still gets calls through', async () => {
    let refusedByCap = 0;
    const u = await underAttack(daemon, wd, PBX, async () => {
      const setupMs: number[] = [];
      for (let round = 0; round < 20; round++) {
        const batch = await Promise.all(Array.from({ length: 1000 }, () => tcpOpen(daemon.sipPort, OUTSIDER)));
        for (const s of batch) s?.destroy();
        if (round % 5 === 4) setupMs.push(await pbxCall(daemon));
      }
      const idle = (await Promise.all(Array.from({ length: 200 }, () => tcpOpen(daemon.sipPort, ROGUE_PEER)))).filter((s): s is Socket => s !== undefined);
      const states = await Promise.all(idle.map((s) => closedAfter(s, 1500)));
      refusedByCap = states.filter((ms) => ms >= 0).length;
      setupMs.push(await pbxCall(daemon));
      for (const s of idle) s.destroy();
      return setupMs;
    });
    assertUnharmed('TCP: 20,000 outsider connections + 200 idle peer connections', u);
    figures.push(`  INVITE→200 for the PBX during it: ${u.result.map((x) => Math.round(x)).join(', ')} ms`);
    assert.ok(u.result.every((ms) => ms < 1000), `INVITE setup took ${u.result.join(', ')} ms`);
    assert.equal(refusedByCap, 200 - 64, 'the per-source cap keeps 64 connections of one peer');
    // Every call the PBX made during the attack has its record.
    const ended = (await calls(daemon)).filter((c) => c.endCause === 'caller-hangup');
    assert.ok(ended.length >= 5, `only ${ended.length} call records`);
  });

  it('an INVITE flood from an outsider costs a counter, not a log line each', async () => {
    const before = daemon.logs.length;
    const invite = Buffer.from(
      ['INVITE sip:support@127.0.0.1 SIP/2.0', `Via: SIP/2.0/UDP ${OUTSIDER}:5999;branch=z9hG4bK-flood`, 'From: <sip:a@b>;tag=1', 'To: <sip:support@127.0.0.1>', 'Call-ID: flood', 'CSeq: 1 INVITE', 'Content-Length: 0', '', ''].join('\r\n'),
    );
    const u = await underAttack(daemon, wd, PBX, () => udpFlood(daemon.sipPort, OUTSIDER, invite, 2500, 500));
    assertUnharmed('2,500 INVITEs from an outsider at 500/s', u);
    const lines = daemon.logs.slice(before).filter((l) => l.peer === OUTSIDER || l.code === 'SIP_PEER_FORBIDDEN');
    figures.push(`  log lines for the 2,500 INVITEs: ${lines.length}`);
    assert.ok(lines.length <= 20, `${lines.length} log lines for the flood`);
  });

  it('after all of it: nothing crashed, the watchdog was never starved, calls were recorded', async () => {
    assert.equal(daemon.proc.exitCode, null, 'the daemon is running');
    assert.equal(daemon.logs.filter((l) => l.level === 'fatal').length, 0);
    assert.equal(daemon.logs.filter((l) => l.code === 'HW_WATCHDOG_CHECK_FAILED').length, 0, 'a watchdog check failed');
    assert.ok((await calls(daemon)).every((c) => c.state === 'ended' || c.state === 'failed'), 'a call is stuck');
  });
});
