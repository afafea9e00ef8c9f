import { Recorder } from '../../media/recorder/recorder';
import { hasSpace, type Vault } from '../../media/vault/vault';
import type { DeskCall } from '../agents/desk-call';
import type { Config } from '../config/schema';
import type { Logger } from '../logging';

/**
 * Decides whether a bridged call is recorded (per-intent, else per-queue policy: all, none or a
 * percentage) and starts its recorder into the vault; below the free-space floor it records nothing and says so.
 */
export class RecordingService {
  constructor(
    private readonly vault: Vault,
    /** Read per call: a config push changes the policy for the calls that follow. */
    private readonly policy: () => Config['recording'],
    private readonly log: Logger,
  ) {}

  async maybeRecord(call: DeskCall, queue: string | undefined, agent: string, intent?: string | null): Promise<void> {
    if (!call.attachRecording) return;
    const policy = this.policy();
    const perQueue = (intent ? policy.intents[intent] : undefined) ?? (queue ? policy.queues[queue] : undefined);
    const record = perQueue?.record ?? policy.record;
    if (record === 'none' || (typeof record === 'number' && Math.random() * 100 >= record)) return;
    const space = await hasSpace(this.vault.recordingsDir, policy.minFreeMb * 1024 * 1024);
    if (!space.ok) {
      this.log.error({ code: 'VAULT_DISK_LOW', callId: call.id, freeBytes: space.freeBytes }, 'not recording: the data disk is below the free-space floor');
      call.record('recording.skipped', { reason: 'disk-low' });
      return;
    }
    const writer = await this.vault.create({
      callId: call.id,
      codec: call.codec,
      retentionDays: perQueue?.retentionDays ?? policy.retentionDays,
      queue,
      agent,
      onWriteFailure: (err) => this.log.error({ err, callId: call.id, code: 'VAULT_WRITE_FAILED' }, 'recording write failed'),
    });
    call.attachRecording(new Recorder({ codec: call.codec, sink: writer, onEvent: writer.onRecorderEvent }), writer);
  }
}
