import type { MediaBridge } from '../../media/bridge/media-bridge';
import type { Recorder } from '../../media/recorder/recorder';
import { recordingMetadataForSync, type RecordingWriter } from '../../media/vault/vault';
import type { Logger } from '../logging';

export interface CallRecordingHooks {
  /** An event on the call's record (started, paused, resumed). */
  record(type: string, data: Record<string, unknown>): void;
  /** The finalised recording's metadata for the call record; runs even after the call has closed. */
  stored(data: Record<string, unknown>): Promise<void>;
  log: Logger;
}

/**
 * One call's recording: the recorder tapped into the call's bridge and the vault file it fills.
 * Inbound calls and callbacks own one each; stop() (call end, low disk) finalises the file.
 */
export class CallRecording {
  private stopped = false;

  constructor(
    private readonly recorder: Recorder,
    readonly writer: RecordingWriter,
    private readonly bridge: MediaBridge,
    private readonly hooks: CallRecordingHooks,
  ) {
    bridge.setRecordingTap(recorder);
    hooks.record('recording.started', { recordingId: writer.id });
  }

  /** When the call cannot be recorded after all (closed, not bridged): the empty file is finalised. */
  static discard(recorder: Recorder, writer: RecordingWriter): void {
    recorder.stop();
    void writer.finalize().catch(() => undefined);
  }

  get state(): { active: boolean; paused: boolean } {
    return { active: !this.stopped, paused: !this.stopped && this.recorder.isPaused };
  }

  /**
   * The agent's pause (card numbers): nothing is captured until resume, the gap stays silence in
   * both channels, and the recorder reports the pause to the vault's audit log with the actor.
   */
  setPaused(on: boolean, actor: string, reason: string): boolean {
    if (this.stopped) return false;
    if (on === this.recorder.isPaused) return true;
    if (on) this.recorder.pause(reason, actor);
    else this.recorder.resume(actor);
    this.hooks.record(on ? 'recording.paused' : 'recording.resumed', { recordingId: this.writer.id, actor, ...(on ? { reason } : {}) });
    return true;
  }

  /** Ends the recording; the call itself goes on. Idempotent. */
  stop(cause: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bridge.setRecordingTap(null);
    const stats = this.recorder.stop();
    this.writer
      .finalize({ pausedMs: stats.pausedMs })
      .then((info) => this.hooks.stored({ ...recordingMetadataForSync(info), cause }))
      .catch((err: unknown) => this.hooks.log.error({ err, code: 'VAULT_WRITE_FAILED' }, 'recording could not be finalised'));
  }
}
