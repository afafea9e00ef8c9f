import { Counter, type Registry } from 'prom-client';
import type { RecordingTap } from '../../media';
import type { Speaker, SpeechEngine } from '../../media';
import type { Vault } from '../../vault';
import type { CloudEventData } from '../../sync/events';
import type { Config } from '../config/schema';
import type { Logger } from '../logging';
import { aggregatesForEvent, CallTranscript, type StoredUtterance } from './call-transcript';
import type { TranscriptsConfig } from './config';
import { KeywordMatcher } from './keywords';
import { LiveTranscriber } from './live-transcriber';

/** What the service needs of a call (DeskCall satisfies it). */
export interface TranscribedCall {
  readonly id: string;
  readonly log: Logger;
  readonly closed: boolean;
  readonly codec: 'PCMU' | 'PCMA';
  record<T extends 'transcript.keyword' | 'speech.fork-started' | 'speech.fork-ended'>(type: T, data: CloudEventData<T>): void;
  once(event: 'closed', listener: (cause: string) => void): unknown;
  tapSource?(): { addTap(tap: RecordingTap): void; removeTap(tap: RecordingTap): void } | undefined;
}

/** What AgentDesk's `bridged` listeners get (gateway/calls/contract.ts BridgedCall, structurally). */
export interface BridgedTranscribedCall {
  call: TranscribedCall;
  queue: string | undefined;
  agent: string;
  intent: string | null | undefined;
}

/** Where the service's outputs go (the daemon wires the agent sessions and the call store). */
export interface TranscriptOutputs {
  /** Live push to the agent's desk. */
  push(agent: string, callId: string, u: StoredUtterance & { quality: string | null }): void;
  /** An event on the call's record after the call closed (the transcript is stored at call end). */
  recordAfterClose(callId: string, type: 'transcript.stored', data: CloudEventData<'transcript.stored'>): Promise<void>;
}

interface Live {
  transcript: CallTranscript;
  /** Stops the built-in engine's feed and flushes its last words (built-in transcripts only). */
  stopLive?: () => Promise<void>;
  agent: string | undefined;
  queue: string | null;
  intent: string | null;
}

/**
 * The calls that have a transcript now: opens one per call (built-in transcription per
 * speech.transcripts queues/intents, or a fork endpoint that sends transcripts), pushes each
 * utterance to the agent's desk, raises keyword alerts (the keyword only), and at call end stores
 * the transcript encrypted in the vault beside the recording with the recording policy's retention.
 */
export class TranscriptService {
  private readonly live = new Map<string, Live>();
  private keywords: { list: readonly string[]; matcher: KeywordMatcher } | undefined;
  private readonly pending = new Set<Promise<void>>();
  /** Queue/intent/agent of bridged calls, for a fork endpoint that opens a transcript later. */
  private readonly bridgedCtx = new Map<string, { queue: string | null; intent: string | null; agent: string }>();
  private engineMissingLogged = false;
  private readonly metrics: {
    stored: Counter<'outcome'>;
    utterances: Counter<'speaker'>;
    keywords: Counter<'keyword'>;
    live: Counter<'outcome'>;
    untranscribed: Counter;
  } | undefined;

  constructor(
    private readonly vault: Vault,
    /** Read per call: a config push changes it for the calls that follow. */
    private readonly config: () => TranscriptsConfig,
    private readonly recordingPolicy: () => Config['recording'],
    private readonly out: TranscriptOutputs,
    private readonly log: Logger,
    /** The on-site engine for built-in transcripts (undefined: none configured or it cannot run). */
    private readonly engine?: () => SpeechEngine | undefined,
    registry?: Registry,
  ) {
    const r = registry;
    this.metrics = r
      ? {
          stored: new Counter({ name: 'ccedge_transcripts_total', help: 'Call transcripts at call end: stored, empty (nothing recognised) or failed (not stored)', labelNames: ['outcome'] as const, registers: [r] }),
          utterances: new Counter({ name: 'ccedge_transcript_utterances_total', help: 'Utterances added to call transcripts (built-in engine and fork endpoints)', labelNames: ['speaker'] as const, registers: [r] }),
          keywords: new Counter({ name: 'ccedge_transcript_keywords_total', help: 'Keyword alerts raised (speech.transcripts.keywords), once per call and keyword', labelNames: ['keyword'] as const, registers: [r] }),
          live: new Counter({ name: 'ccedge_transcript_live_total', help: 'Built-in live transcripts: started, or not started (no engine, no media)', labelNames: ['outcome'] as const, registers: [r] }),
          untranscribed: new Counter({ name: 'ccedge_transcript_untranscribed_samples_total', help: '8 kHz samples of bridged calls the built-in engine never got (feed behind, no recognition free)', registers: [r] }),
        }
      : undefined;
  }

  /**
   * An AgentDesk `bridged` listener: remembers who the call is with (a transfer moves the live push
   * to the next agent) and starts the built-in live transcript when the queue/intent asks for it.
   * Register it before the fork's, whose endpoint may feed the same transcript.
   */
  readonly bridged = (b: BridgedTranscribedCall): void => {
    const { call } = b;
    if (call.closed) return;
    if (!this.bridgedCtx.has(call.id)) call.once('closed', () => this.bridgedCtx.delete(call.id));
    this.bridgedCtx.set(call.id, { queue: b.queue ?? null, intent: b.intent ?? null, agent: b.agent });
    const existing = this.live.get(call.id);
    if (existing) {
      existing.agent = b.agent;
      return;
    }
    if (!this.wantsBuiltin(b.queue, b.intent)) return;
    const engine = this.engine?.();
    const source = call.tapSource?.();
    if (!engine || !source) {
      this.metrics?.live.inc({ outcome: engine ? 'no-media' : 'no-engine' });
      if (!engine && !this.engineMissingLogged) {
        this.engineMissingLogged = true;
        this.log.warn({ callId: call.id, code: 'SPEECH_UNAVAILABLE' }, 'speech.transcripts asks for built-in transcripts but no speech engine runs here');
      }
      return;
    }
    const c = this.config();
    const transcript = this.open(call, { queue: b.queue, intent: b.intent, agent: b.agent, quality: engine.quality });
    const live = new LiveTranscriber({ callId: call.id, codec: call.codec, engine, sink: transcript, speakers: c.speakers, segmentS: c.segmentS, log: call.log });
    source.addTap(live);
    this.metrics?.live.inc({ outcome: 'started' });
    const entry = this.live.get(call.id);
    if (entry) {
      entry.stopLive = async () => {
        source.removeTap(live);
        await live.close();
        this.metrics?.untranscribed.inc(live.overwritten + live.untranscribed);
        if (live.overwritten > 0 || live.untranscribed > 0) call.log.warn({ overwritten: live.overwritten, untranscribed: live.untranscribed }, 'live transcript: some audio was not transcribed (feed behind, or no recognition free)');
      };
    }
    call.log.info({ engine: engine.name, speakers: c.speakers }, 'live transcript started');
  };

  /** ForkService's sinkFor: a fork endpoint's transcript events feed the call's transcript. */
  readonly sinkForFork = (call: TranscribedCall): CallTranscript | undefined => {
    if (call.closed) return undefined;
    const ctx = this.bridgedCtx.get(call.id);
    return this.open(call, { queue: ctx?.queue, intent: ctx?.intent, agent: ctx?.agent });
  };

  /** Whether a bridged call of this queue/intent gets the built-in live transcript. */
  wantsBuiltin(queue: string | null | undefined, intent: string | null | undefined): boolean {
    const c = this.config();
    return (queue != null && c.queues.includes(queue)) || (intent != null && c.intents.includes(intent));
  }

  /** The call's transcript, opened if needed (idempotent); the agent is who the desk pushes to. */
  open(call: TranscribedCall, ctx: { queue?: string | null; intent?: string | null; agent?: string; quality?: string | null }): CallTranscript {
    const existing = this.live.get(call.id);
    if (existing) {
      if (ctx.agent) existing.agent = ctx.agent;
      if (ctx.quality) existing.transcript.setQuality(ctx.quality);
      return existing.transcript;
    }
    const c = this.config();
    if (this.keywords?.list !== c.keywords) this.keywords = { list: c.keywords, matcher: new KeywordMatcher(c.keywords) };
    const transcript: CallTranscript = new CallTranscript(
      call.id,
      { keywords: this.keywords.matcher, maxUtterances: c.maxUtterances, maxUtteranceChars: c.maxUtteranceChars, quality: ctx.quality ?? null },
      {
        onUtterance: (u) => {
          this.metrics?.utterances.inc({ speaker: u.speaker });
          // To whoever has the call now (a transfer changes the entry's agent).
          const agent = this.live.get(call.id)?.agent;
          if (agent) this.out.push(agent, call.id, { ...u, quality: transcript.quality });
        },
        onKeyword: (k: { keyword: string; speaker: Speaker; atMs: number }) => {
          this.metrics?.keywords.inc({ keyword: k.keyword });
          call.log.info({ keyword: k.keyword, speaker: k.speaker }, 'transcript keyword heard');
          call.record('transcript.keyword', { keyword: k.keyword, speaker: k.speaker, atMs: k.atMs });
        },
      },
    );
    this.live.set(call.id, { transcript, agent: ctx.agent, queue: ctx.queue ?? null, intent: ctx.intent ?? null });
    call.once('closed', () => this.track(this.finish(call.id)));
    return transcript;
  }

  /** The open transcript of a live call (a fork endpoint's utterances go here), if any. */
  sinkFor(callId: string): CallTranscript | undefined {
    return this.live.get(callId)?.transcript;
  }

  get activeCalls(): number {
    return this.live.size;
  }

  /** Waits for the transcripts being stored (daemon stop, tests). */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private async finish(callId: string): Promise<void> {
    const e = this.live.get(callId);
    if (!e) return;
    // The last words are still in the engine: flush before the transcript is closed.
    await e.stopLive?.().catch((err: unknown) => this.log.warn({ err, callId }, 'live transcript did not stop cleanly'));
    this.live.delete(callId);
    const doc = e.transcript.close();
    if (doc.utterances.length === 0 && doc.dropped === 0) {
      this.log.info({ callId }, 'no speech recognised on the call: no transcript stored');
      this.metrics?.stored.inc({ outcome: 'empty' });
      return;
    }
    try {
      const policy = this.recordingPolicy();
      const perCall = (e.intent ? policy.intents[e.intent] : undefined) ?? (e.queue ? policy.queues[e.queue] : undefined);
      const [recording] = await this.vault.list({ callId, limit: 1 });
      const info = await this.vault.transcripts.store({
        callId,
        recordingId: recording?.id ?? null,
        document: doc,
        utterances: doc.utterances.length,
        source: doc.sources.join(',') || 'unknown',
        quality: doc.quality,
        retentionDays: perCall?.retentionDays ?? policy.retentionDays,
        queue: e.queue,
        intent: e.intent,
        agent: e.agent ?? null,
      });
      this.metrics?.stored.inc({ outcome: 'stored' });
      await this.out.recordAfterClose(callId, 'transcript.stored', {
        transcriptId: info.id,
        recordingId: info.recordingId,
        utterances: info.utterances,
        ...aggregatesForEvent(doc.aggregates, this.config().aggregates),
      });
    } catch (err) {
      this.metrics?.stored.inc({ outcome: 'failed' });
      this.log.error({ err, callId, code: 'VAULT_WRITE_FAILED' }, 'transcript could not be stored (or its event not recorded)');
    }
  }
}
