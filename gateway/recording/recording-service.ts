import { Recorder } from '../../media';
import { hasSpace, type Vault } from '../../vault';
import type { DeskCall } from '../calls/contract';
import type { Config } from '../config/schema';
import type { Logger } from '../logging';

/** What the guard tells the rest of the gateway when it stops recordings for lack of disk. */
export interface DiskAlarmSink {
  /** A site-level alarm (raised when recordings stop or are skipped, cleared when space is back). */
  alarm(state: 'raised' | 'cleared', freeBytes: number, minFreeBytes: number): void;
  /** A running recording was stopped (the agent's page is told). */
  stopped(call: DeskCall, agent: string): void;
}

/**
 * Decides whether a bridged call is recorded (per-intent, else per-queue policy: all, none or a
 * percentage) and starts its recorder into the vault. Disk guard: below `recording.minFreeMb`
 * free space no recording starts, and the running ones are stopped (checked every
 * `recording.diskCheckS` while any runs) with an alarm; the calls themselves go on.
 */
export class RecordingService {
  private readonly active = new Map<DeskCall, string>();
  private timer: NodeJS.Timeout | undefined;
  private alarmRaised = false;

  constructor(
    private readonly vault: Vault,
    /** Read per call: a config push changes the policy for the calls that follow. */
    private readonly policy: () => Config['recording'],
    private readonly log: Logger,
    private readonly sink?: DiskAlarmSink,
  ) {}

  /** Stops the disk checks (daemon stop). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.active.clear();
  }

  async maybeRecord(call: DeskCall, queue: string | undefined, agent: string, intent?: string | null): Promise<void> {
    if (!call.attachRecording) return;
    const policy = this.policy();
    const perQueue = (intent ? policy.intents[intent] : undefined) ?? (queue ? policy.queues[queue] : undefined);
    const record = perQueue?.record ?? policy.record;
    if (record === 'none' || (typeof record === 'number' && Math.random() * 100 >= record)) return;
    const space = await hasSpace(this.vault.recordingsDir, policy.minFreeMb * 1024 * 1024);
    if (!space.ok) {
      this.log.error({ code: 'VAULT_DISK_LOW', callId: call.id, freeBytes: space.freeBytes }, 'not recording: the data disk is below the free-space floor');
      call.record('recording.skipped', { reason: 'disk-low', freeBytes: space.freeBytes });
      this.setAlarm(true, space.freeBytes, policy.minFreeMb * 1024 * 1024);
      return;
    }
    this.setAlarm(false, space.freeBytes, policy.minFreeMb * 1024 * 1024);
    const writer = await this.vault.create({
      callId: call.id,
      codec: call.codec,
      retentionDays: perQueue?.retentionDays ?? policy.retentionDays,
      queue,
      agent,
      onWriteFailure: (err) => this.log.error({ err, callId: call.id, code: 'VAULT_WRITE_FAILED' }, 'recording write failed'),
    });
    call.attachRecording(new Recorder({ codec: call.codec, sink: writer, onEvent: writer.onRecorderEvent }), writer);
    if (call.closed || !call.recordingState?.active) return;
    this.active.set(call, agent);
    call.once('closed', () => this.active.delete(call));
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.active.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.checkDisk()
        .catch((err: unknown) => this.log.error({ err }, 'disk check failed'))
        .finally(() => this.schedule());
    }, this.policy().diskCheckS * 1000);
    this.timer.unref();
  }

  private async checkDisk(): Promise<void> {
    for (const call of [...this.active.keys()]) if (call.closed || !call.recordingState?.active) this.active.delete(call);
    if (this.active.size === 0) return;
    const minFreeBytes = this.policy().minFreeMb * 1024 * 1024;
    const space = await hasSpace(this.vault.recordingsDir, minFreeBytes);
    if (space.ok) {
      this.setAlarm(false, space.freeBytes, minFreeBytes);
      return;
    }
    this.log.error({ code: 'VAULT_DISK_LOW', freeBytes: space.freeBytes, recordings: this.active.size }, 'the data disk fell below the free-space floor: stopping recordings, calls go on');
    this.setAlarm(true, space.freeBytes, minFreeBytes);
    for (const [call, agent] of this.active) {
      call.stopRecording?.('disk-low');
      call.record('recording.stopped', { reason: 'disk-low', freeBytes: space.freeBytes });
      this.sink?.stopped(call, agent);
    }
    this.active.clear();
  }

  private setAlarm(raised: boolean, freeBytes: number, minFreeBytes: number): void {
    if (raised === this.alarmRaised) return;
    this.alarmRaised = raised;
    this.sink?.alarm(raised ? 'raised' : 'cleared', freeBytes, minFreeBytes);
  }
}
