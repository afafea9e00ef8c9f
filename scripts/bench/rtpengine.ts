/**
 * Debian's rtpengine as the relay bench's reference peer: userspace forwarding only (--table=-1,
 * no kernel module), bound to 127.0.0.1, ng control on a loopback UDP port, its own RTP port range
 * apart from the daemon's (16000-19999) and below the ephemeral ports the generator binds.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort } from '../../test/e2e/harness';
import { NgClient } from './ng-client';

export const RTPENGINE_BIN = '/usr/bin/rtpengine';
export const RTPENGINE_PORTS = { min: 24000, max: 27999 };

export class RtpEnginePeer {
  private stderr = '';

  private constructor(
    private readonly proc: ChildProcess,
    readonly ngPort: number,
  ) {
    proc.stderr?.setEncoding('utf8').on('data', (c: string) => (this.stderr = (this.stderr + c).slice(-4000)));
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  /** rtpengine's version line, for the results (e.g. "10.5.3.5-1+deb12u1"). */
  static version(): string {
    // It prints the version on stderr.
    const r = spawnSync(RTPENGINE_BIN, ['--version'], { encoding: 'utf8', timeout: 5000 });
    return /Version: (\S+)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? 'unknown';
  }

  static available(): boolean {
    return existsSync(RTPENGINE_BIN);
  }

  /** Starts rtpengine and waits until it answers an ng ping (bounded). */
  static async start(): Promise<RtpEnginePeer> {
    if (!RtpEnginePeer.available()) throw new Error(`${RTPENGINE_BIN} is missing: apt-get install -y rtpengine, or run the bench with --no-peer`);
    const ngPort = await freePort();
    const proc = spawn(
      RTPENGINE_BIN,
      [
        // Not /etc/rtpengine/rtpengine.conf: every setting is on this command line.
        '--config-file=none',
        '--foreground',
        '--log-stderr',
        '--log-level=4',
        '--table=-1',
        '--interface=127.0.0.1',
        `--listen-ng=127.0.0.1:${ngPort}`,
        `--port-min=${RTPENGINE_PORTS.min}`,
        `--port-max=${RTPENGINE_PORTS.max}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const peer = new RtpEnginePeer(proc, ngPort);
    const ng = new NgClient('127.0.0.1', ngPort, 200, 1);
    try {
      for (let i = 0; ; i++) {
        if (proc.exitCode !== null) throw new Error(`rtpengine exited (${proc.exitCode}): ${peer.stderr}`);
        try {
          await ng.request({ command: 'ping' });
          return peer;
        } catch {
          if (i >= 50) throw new Error(`rtpengine: no ng pong within 10 s: ${peer.stderr}`);
        }
      }
    } catch (e) {
      await peer.stop();
      throw e;
    } finally {
      ng.close();
    }
  }

  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 5000)))]);
    clearTimeout(timer);
    if (late) {
      p.kill('SIGKILL');
      await exited;
    }
  }

  lastStderr(): string {
    return this.stderr;
  }
}
