import assert from 'node:assert/strict';
import type { CallEvent, CallRecord } from '../../gateway/store/call-store';
import { assertSippOk, eventually, runCli, runSipp, startDaemon, type DaemonHandle } from './harness';
import { optionsMessage, udpExchange } from './sip-probe';

const TEST_CONFIG = {
  site: { id: 'e2e', deviceId: 'edge-e2e' },
  sip: { maxCalls: 50, retryAfterS: 7 },
  rtp: {},
  http: {},
  calls: { maxDurationS: 4 },
  trunks: [
    { name: 'pbx', allow: ['127.0.0.1/32'], codecs: ['PCMU', 'PCMA'] },
    { name: 'ringing', allow: ['127.0.0.3'], answerDelayMs: 5000 },
    { name: 'secure', allow: ['127.0.0.4/32'], auth: { realm: 'ccedge-test', username: 'pbx', password: 's3cret' } },
    { name: 'small', allow: ['127.0.0.5/32'], maxCalls: 2 },
  ],
};

async function callsFor(d: DaemonHandle): Promise<CallRecord[]> {
  const r = await d.api<{ calls: CallRecord[] }>('/api/v1/calls?limit=1000');
  assert.equal(r.status, 200);
  return r.body.calls;
}

/** The newest call record that matches, once it has reached a final state. */
async function finalCall(d: DaemonHandle, match: (c: CallRecord) => boolean): Promise<CallRecord> {
  return eventually(async () => (await callsFor(d)).find((c) => match(c) && (c.state === 'ended' || c.state === 'failed')));
}

describe('SIP trunk with sipp as the PBX', function () {
  let daemon: DaemonHandle;
  let target: string;
  before(async () => {
    daemon = await startDaemon({ config: TEST_CONFIG });
    target = `127.0.0.1:${daemon.sipPort}`;
  });
  after(async () => {
    await daemon?.stop();
  });

  it('answers a basic UDP call with PCMU, sends RTP that sipp echoes back, and records it', async () => {
    const before = new Set((await callsFor(daemon)).map((c) => c.id));
    const r = await runSipp({ scenario: 'uac_basic.xml', target, durationMs: 1500, extra: ['-rtp_echo', '-s', 'support'] });
    assertSippOk(r);
    const call = await finalCall(daemon, (c) => !before.has(c.id));
    assert.equal(call.state, 'ended');
    assert.equal(call.endCause, 'caller-hangup');
    assert.equal(call.codec, 'PCMU');
    assert.equal(call.transport, 'UDP');
    assert.equal(call.trunk, 'pbx');
    assert.equal(call.fromUser, '5551234');
    assert.equal(call.toUser, 'support');
    assert.ok(call.answeredAt, 'answered time recorded');
    // ~1.5 s of 20 ms frames is ~75 packets; sipp's echo proves they arrived at the PBX side.
    assert.ok(call.rtpPacketsSent > 30, `sent ${call.rtpPacketsSent}`);
    assert.ok(call.rtpPacketsReceived > 20, `received back ${call.rtpPacketsReceived}`);
  });

  it('answers a call over TCP', async () => {
    const before = new Set((await callsFor(daemon)).map((c) => c.id));
    const r = await runSipp({ scenario: 'uac_basic.xml', target, transport: 't1', durationMs: 300 });
    assertSippOk(r);
    const call = await finalCall(daemon, (c) => !before.has(c.id));
    assert.equal(call.transport, 'TCP');
    assert.equal(call.endCause, 'caller-hangup');
  });

  it('answers OPTIONS keepalives with 200 on UDP and TCP', async () => {
    for (const transport of ['u1', 't1'] as const) {
      const r = await runSipp({ scenario: 'uac_options.xml', target, transport });
      assertSippOk(r);
    }
  });

  it('collects RFC 4733 DTMF digits into the call record', async () => {
    const before = new Set((await callsFor(daemon)).map((c) => c.id));
    const r = await runSipp({ scenario: 'uac_dtmf.xml', target });
    assertSippOk(r);
    const call = await finalCall(daemon, (c) => !before.has(c.id));
    assert.equal(call.dtmf, '19');
  });

  it('CANCEL before answer gets 200 and the INVITE 487', async () => {
    const r = await runSipp({ scenario: 'uac_cancel.xml', target, localIp: '127.0.0.3' });
    assertSippOk(r);
    const call = await finalCall(daemon, (c) => c.trunk === 'ringing');
    assert.equal(call.endCause, 'caller-cancelled');
    assert.equal(call.sipStatus, 487);
    assert.equal(call.answeredAt, null);
  });

  it('ends a call with its own BYE at the maximum duration', async () => {
    const before = new Set((await callsFor(daemon)).map((c) => c.id));
    const r = await runSipp({ scenario: 'uac_wait_bye.xml', target });
    assertSippOk(r);
    const call = await finalCall(daemon, (c) => !before.has(c.id));
    assert.equal(call.endCause, 'max-duration');
  });

  it('re-INVITE with a=sendonly is answered recvonly (hold) and sendrecv resumes', async () => {
    const before = new Set((await callsFor(daemon)).map((c) => c.id));
    const r = await runSipp({ scenario: 'uac_hold.xml', target });
    assertSippOk(r);
    const call = await finalCall(daemon, (c) => !before.has(c.id));
    const { body } = await daemon.api<{ events: CallEvent[] }>(`/api/v1/calls/${call.id}`);
    const types = body.events.map((e) => e.type);
    assert.ok(types.indexOf('call.held') > types.indexOf('call.confirmed'), types.join(','));
    assert.ok(types.indexOf('call.resumed') > types.indexOf('call.held'), types.join(','));
  });

  it('digest auth: challenges with 401, accepts the right password', async () => {
    const r = await runSipp({ scenario: 'uac_auth.xml', target, localIp: '127.0.0.4', extra: ['-au', 'pbx', '-ap', 's3cret'] });
    assertSippOk(r);
    const call = await finalCall(daemon, (c) => c.trunk === 'secure');
    assert.equal(call.endCause, 'caller-hangup');
  });

  it('digest auth: a wrong password is challenged again and no call is set up', async () => {
    const before = (await callsFor(daemon)).filter((c) => c.trunk === 'secure').length;
    const r = await runSipp({ scenario: 'uac_auth_wrong.xml', target, localIp: '127.0.0.4', extra: ['-au', 'pbx', '-ap', 'wrong'] });
    assertSippOk(r);
    assert.equal((await callsFor(daemon)).filter((c) => c.trunk === 'secure').length, before);
    await daemon.waitForLog((l) => l.code === 'SIP_AUTH_FAILED');
  });

  it('drops an address outside every allow-list before parsing: no answer, counted, logged', async () => {
    const port = Number(target.split(':')[1]);
    const lines = await udpExchange(port, optionsMessage({ host: '127.0.0.1', port }, { ip: '127.0.0.2', port: 5999 }, `outsider-${Date.now()}`), { fromIp: '127.0.0.2' });
    assert.deepEqual(lines, [], 'an outsider gets no answer at all');
    await daemon.waitForLog((l) => l.code === 'SIP_PEER_FORBIDDEN' && l.peer === '127.0.0.2');
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    assert.match(metrics, /^ccedge_sip_dropped_total\{transport="udp",reason="forbidden"\} [1-9]/m);
  });

  it('answers 488 when no codec is in common (G.729 only) and records the failure', async () => {
    const before = new Set((await callsFor(daemon)).map((c) => c.id));
    const r = await runSipp({ scenario: 'uac_g729_488.xml', target });
    assertSippOk(r);
    const call = await finalCall(daemon, (c) => !before.has(c.id));
    assert.equal(call.state, 'failed');
    assert.equal(call.sipStatus, 488);
  });

  it('answers 503 with Retry-After when the trunk is at maxCalls', async () => {
    const long = runSipp({ scenario: 'uac_basic.xml', target, localIp: '127.0.0.5', calls: 2, limit: 2, durationMs: 3000 });
    await eventually(async () => (await callsFor(daemon)).filter((c) => c.trunk === 'small' && c.state === 'answered').length === 2);
    const r = await runSipp({ scenario: 'uac_503.xml', target, localIp: '127.0.0.5' });
    assertSippOk(r);
    const first = await long;
    assertSippOk(first);
    const rejected = (await callsFor(daemon)).filter((c) => c.trunk === 'small' && c.sipStatus === 503);
    assert.equal(rejected.length, 1);
  });

  it('serves /healthz and Prometheus /metrics, and guards the admin API with the token', async () => {
    const health = await fetch(`http://127.0.0.1:${daemon.httpPort}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    assert.match(metrics, /^ccedge_sip_requests_total\{method="INVITE"\} \d+/m);
    assert.match(metrics, /^ccedge_calls_total\{outcome="caller-hangup"\} \d+/m);
    const denied = await fetch(`http://127.0.0.1:${daemon.httpPort}/api/v1/calls`);
    assert.equal(denied.status, 401);
    const bad = await daemon.api<{ error: { code: string } }>('/api/v1/calls?limit=abc');
    assert.equal(bad.status, 400);
  });
});

describe('daemon lifecycle', function () {
  it('SIGTERM ends live calls with BYE, exits 0, and the record shows why', async () => {
    const daemon = await startDaemon({ config: { ...TEST_CONFIG, calls: { maxDurationS: 600 } } });
    const sipp = runSipp({ scenario: 'uac_wait_bye.xml', target: `127.0.0.1:${daemon.sipPort}` });
    await eventually(async () => (await callsFor(daemon)).some((c) => c.state === 'answered'));
    await new Promise((r) => setTimeout(r, 300)); // let the ACK land
    assert.equal(await daemon.stop('SIGTERM'), 0);
    const r = await sipp;
    assertSippOk(r);
    const out = await runCli(['calls', '--json'], { CCEDGE_DATA_DIR: daemon.dataDir });
    assert.equal(out.code, 0, out.stderr);
    const calls = JSON.parse(out.stdout) as CallRecord[];
    assert.equal(calls.length, 1);
    assert.equal(calls[0].endCause, 'shutdown');
  });

  it('refuses an invalid config with exit code 2 naming the bad key', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/ccedge-bad-`);
    writeFileSync(`${dir}/bad.yaml`, 'site: {id: x}\nsip: {port: 99999}\nrtp: {}\nhttp: {}\ncalls: {}\ntrunks: [{name: pbx, allow: ["not-an-ip"]}]\n');
    const run = await runCli(['run', '--config', `${dir}/bad.yaml`], { CCEDGE_DATA_DIR: dir });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /CONFIG_INVALID/);
    assert.match(run.stderr, /sip\.port/);
    assert.match(run.stderr, /trunks\.0\.allow\.0/);
    const validate = await runCli(['config', 'validate', `${dir}/bad.yaml`], {});
    assert.equal(validate.code, 2);
    const env = await runCli(['run'], { CCEDGE_DATA_DIR: dir, CCEDGE_SIP_PORT: 'five' });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /CCEDGE_SIP_PORT/);
  });
});
