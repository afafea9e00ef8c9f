import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const CHILD = path.join(__dirname, '..', 'fixtures', 'webrtc-call-child.js');

interface Egress {
  /** Every IP destination seen in connect/sendto/sendmsg/sendmmsg, as "addr:port". */
  destinations: Map<string, number>;
  /** Destinations outside loopback, port 53 anywhere, or a resolver socket (nscd, resolved). */
  violations: string[];
  /** Datagrams to loopback (proves the tracer saw the media). */
  loopbackSends: number;
}

/** Reads an `strace -f -e trace=connect,sendto,sendmsg,sendmmsg` log. */
function analyse(trace: string): Egress {
  const destinations = new Map<string, number>();
  const violations: string[] = [];
  let loopbackSends = 0;
  for (const line of trace.split('\n')) {
    const call = /^(?:\d+\s+)?(connect|sendto|sendmsg|sendmmsg)\(/.exec(line)?.[1];
    if (!call) continue;
    const dests: Array<[string, number]> = [];
    for (const m of line.matchAll(/sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([\d.]+)"\)/g)) dests.push([m[2], Number(m[1])]);
    for (const m of line.matchAll(/sa_family=AF_INET6, sin6_port=htons\((\d+)\)[^}]*?inet_pton\(AF_INET6, "([^"]+)"/g)) dests.push([m[2], Number(m[1])]);
    const unix = /sa_family=AF_UNIX, sun_path="([^"]+)"/.exec(line)?.[1];
    if (unix && /nscd|resolve/.test(unix)) violations.push(`resolver socket ${unix}: ${line.slice(0, 160)}`);
    for (const [addr, port] of dests) {
      const key = `${addr}:${port}`;
      destinations.set(key, (destinations.get(key) ?? 0) + 1);
      const loopback = addr.startsWith('127.') || addr === '::1';
      if (!loopback || port === 53) violations.push(`${call} to ${key}`);
      else if (call !== 'connect') loopbackSends++;
    }
  }
  return { destinations, violations, loopbackSends };
}

function straceUsable(): boolean {
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=none', 'true'], { encoding: 'utf8' });
  return r.status === 0;
}

function traceChild(mode: string, dir: string): { egress: Egress; stdout: string } {
  const file = path.join(dir, `${mode}.strace`);
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=connect,sendto,sendmsg,sendmmsg', '-o', file, process.execPath, CHILD, mode], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, DEBUG: '' },
  });
  assert.equal(r.status, 0, `child ${mode} failed: ${r.stderr}`);
  return { egress: analyse(readFileSync(file, 'utf8')), stdout: r.stdout };
}

describe('WebRTC leg sends nothing outside loopback (strace)', function () {
  this.timeout(120_000);
  let dir: string;

  before(function () {
    // .ci/run installs the Debian package `strace`; ptrace must be allowed (it is in CI and here).
    if (!straceUsable()) {
      console.warn('    strace missing or ptrace not permitted: skipping the no-egress proof');
      this.skip();
    }
    dir = mkdtempSync(path.join(tmpdir(), 'ccedge-egress-'));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('positive control: plain werift with iceServers: [] is caught resolving Google STUN', () => {
    const { egress } = traceChild('werift-default', dir);
    assert.ok(egress.violations.length > 0, `the tracer should have seen werift's fallback; saw ${[...egress.destinations.keys()].join(', ')}`);
  });

  it('a full PCMA call (leg ↔ werift peer, 2 s of audio each way): every packet to 127.x/::1, no DNS', () => {
    const { egress, stdout } = traceChild('site', dir);
    const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { legReceived: number; peerReceived: number; state: string };
    assert.equal(result.state, 'connected');
    assert.ok(result.legReceived >= 90 && result.peerReceived >= 90, JSON.stringify(result));
    assert.deepEqual(egress.violations, [], `destinations: ${JSON.stringify([...egress.destinations])}`);
    assert.ok(egress.loopbackSends >= 200, `the trace saw only ${egress.loopbackSends} loopback datagrams`);
  });
});
