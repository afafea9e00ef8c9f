import { execFile } from 'node:child_process';
import { HwError } from '../errors';

/**
 * sd_notify(3) from Node. Node's dgram has no AF_UNIX datagram sockets, so the message goes through
 * `systemd-notify` (systemd ≥ 246 waits with sd_notify_barrier() until the manager has processed it,
 * so the message is attributed to the unit even though the helper exits right after). The helper is
 * a child of the daemon, not its main process: the unit needs NotifyAccess=all.
 * No `--pid`: it would send MAINPID= and could move the unit's main PID.
 */
export class SystemdNotifier {
  constructor(
    private readonly command = 'systemd-notify',
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly timeoutMs = 5000,
  ) {}

  /** NOTIFY_SOCKET is set: we run under systemd with Type=notify (or NotifyAccess set). */
  get available(): boolean {
    return !!this.env.NOTIFY_SOCKET;
  }

  /**
   * The keepalive interval systemd asks for (half of WatchdogSec), or null when the unit has no
   * watchdog or it is meant for another PID (WATCHDOG_PID).
   */
  watchdogIntervalMs(pid = process.pid): number | null {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!this.available || !Number.isFinite(usec) || usec <= 0) return null;
    if (this.env.WATCHDOG_PID && Number(this.env.WATCHDOG_PID) !== pid) return null;
    return Math.max(100, Math.floor(usec / 1000 / 2));
  }

  /** Sends `KEY=VALUE` assignments (e.g. WATCHDOG=1, READY=1, STATUS=...). */
  notify(...assignments: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.available) {
        resolve();
        return;
      }
      execFile(this.command, assignments, { env: this.env, timeout: this.timeoutMs }, (err, _stdout, stderr) => {
        if (err) reject(new HwError('HW_NOTIFY_FAILED', `${this.command} ${assignments.join(' ')}: ${String(stderr).trim() || err.message}`));
        else resolve();
      });
    });
  }
}
