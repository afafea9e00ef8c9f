import type { RecordingTap } from '../../media';
import type { Recorder } from '../../media';
import { recordingMetadataForSync, type RecordingWriter } from '../../vault';
import type { CloudEventData } from '../../sync/events';

/** What a recording taps: the call's media joint (left: the customer, right: what the customer hears). */
export interface RecordingSource {
  addTap(tap: RecordingTap): void;
  /** A promise: the tap still gets packets until it settles (a call on a media worker). */
  removeTap(tap: RecordingTap): void | Promise<void>;
}

export interface CallRecordingHooks {
  /** An event on the call's record (started, paused, resumed). */
  record<T extends 'recording.started' | 'recording.paused' | 'recording.resumed'>(type: T, data: CloudEventData<T>): void;
  /** The finalised recording's metadata for the call record; runs even after the call has closed. */
  stored(data: CloudEventData<'recording.stored'>): Promise<void>;
  /** The file could not be finalised (logged by the call, with its callId). */
  failed(err: unknown): void;
}

/**
 * A call's recording: the recorder tapped into the call's media joint and the vault file it fills.
 * Every call owns one and delegates to it; the tap stays on the joint while legs come and go; stop() (call end, low disk)
 * finalises the file and the call goes on.
 */
export class CallRecording {
  private current: { recorder: Recorder; writer: RecordingWriter; source: RecordingSource } | undefined;

  constructor(private readonly hooks: CallRecordingHooks) {}

  /** Starts recording what `source` carries (customer left, the others right); none (closed, nobody joined yet): the file is finalised empty. */
  attach(recorder: Recorder, writer: RecordingWriter, source: RecordingSource | undefined): void {
    if (!source || this.current) {
      recorder.stop();
      void writer.finalize().catch(() => undefined);
      return;
    }
    this.current = { recorder, writer, source };
    source.addTap(recorder);
    this.hooks.record('recording.started', { recordingId: writer.id });
  }

  get state(): { active: boolean; paused: boolean } {
    return { active: this.current !== undefined, paused: this.current?.recorder.isPaused ?? false };
  }

  /**
   * The agent's pause (card numbers): nothing is captured until resume, the gap stays silence in
   * both channels, and the recorder reports the pause to the vault's audit log with the actor.
   */
  setPaused(on: boolean, actor: string, reason: string): boolean {
    const c = this.current;
    if (!c) return false;
    if (on === c.recorder.isPaused) return true;
    if (on) c.recorder.pause(reason, actor);
    else c.recorder.resume(actor);
    this.hooks.record(on ? 'recording.paused' : 'recording.resumed', { recordingId: c.writer.id, actor, ...(on ? { reason } : {}) });
    return true;
  }

  /** Ends the recording (idempotent). */
  stop(cause: string): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    const finish = (): void => {
      const stats = c.recorder.stop();
      c.writer
        .finalize({ pausedMs: stats.pausedMs })
        .then((info) => this.hooks.stored({ ...recordingMetadataForSync(info), cause }))
        .catch((err: unknown) => this.hooks.failed(err));
    };
    const removed = c.source.removeTap(c.recorder);
    if (removed) void removed.then(finish);
    else finish();
  }
}
