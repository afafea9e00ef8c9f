import Sentiment from 'sentiment';
import type { Speaker, TranscriptSink, TranscriptUtterance } from '../../media';
import type { CloudEventData } from '../../sync/events';
import type { TranscriptAggregate } from './config';
import type { KeywordMatcher } from './keywords';

/** One utterance as stored and shown: the contract's fields, always with a sentiment score. */
export type StoredUtterance = Omit<TranscriptUtterance, 'callId' | 'sentiment'> & { sentiment: number };

/** The JSON that goes encrypted into the vault (and is what the compliance read returns). */
export interface TranscriptDocument {
  format: 'ccedge-transcript/1';
  callId: string;
  startedAt: string;
  endedAt: string;
  /** Engines/endpoints that fed it, and what their text is worth (e.g. keyword-grade). */
  sources: string[];
  quality: string | null;
  utterances: StoredUtterance[];
  /** Utterances beyond speech.transcripts.maxUtterances (not kept). */
  dropped: number;
  keywords: Array<{ keyword: string; speaker: Speaker; atMs: number }>;
  aggregates: TranscriptAggregates;
}

/** Numbers only: what the `transcript.stored` event may carry (policy permitting). */
export interface TranscriptAggregates {
  utterances: number;
  /** Sum of the utterances' AFINN scores. */
  sentimentScore: number;
  /** Mean AFINN score per utterance of the caller, and of the agent (null: said nothing). */
  callerSentiment: number | null;
  agentSentiment: number | null;
  /** Share of recognised speech time that was the caller's (0..1; null: nothing recognised). */
  talkRatio: number | null;
}

export interface CallTranscriptHooks {
  /** Live: the agent's desk shows it. */
  onUtterance?(u: StoredUtterance): void;
  /** The first time a configured keyword is heard on this call: the keyword only, never the text. */
  onKeyword?(k: { keyword: string; speaker: Speaker; atMs: number }): void;
}

let analyzer: Sentiment | undefined;

/** AFINN-165 score of one utterance (the `sentiment` package, a lexicon kept on the box). */
export function sentimentOf(text: string): number {
  analyzer ??= new Sentiment();
  return analyzer.analyze(text).score;
}

/**
 * One call's transcript while the call runs: a TranscriptSink the built-in engine and fork
 * endpoints feed. Bounded (utterances and characters), scored per utterance, keyword alerts once
 * per keyword. Nothing here leaves the site; document() is what the vault stores.
 */
export class CallTranscript implements TranscriptSink {
  private readonly kept: StoredUtterance[] = [];
  private dropped = 0;
  private readonly sources = new Set<string>();
  private readonly alerted = new Map<string, { keyword: string; speaker: Speaker; atMs: number }>();
  private readonly startedAt: Date;
  private closed = false;

  constructor(
    readonly callId: string,
    private readonly opts: { keywords: KeywordMatcher; maxUtterances: number; maxUtteranceChars: number; quality: string | null; now?: () => Date },
    private readonly hooks: CallTranscriptHooks = {},
  ) {
    this.startedAt = (opts.now ?? (() => new Date()))();
  }

  /** What the engine's text is worth; the first engine that says wins (fork endpoints add theirs to sources). */
  setQuality(q: string): void {
    this.opts.quality ??= q;
  }

  get quality(): string | null {
    return this.opts.quality;
  }

  get size(): number {
    return this.kept.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  utterance(u: TranscriptUtterance): void {
    if (this.closed || u.callId !== this.callId) return;
    const text = u.text.trim().slice(0, this.opts.maxUtteranceChars);
    if (text.length === 0) return;
    this.sources.add(u.source);
    const stored: StoredUtterance = {
      speaker: u.speaker,
      startMs: Math.max(0, Math.round(u.startMs)),
      endMs: Math.max(0, Math.round(u.endMs)),
      text,
      confidence: Math.min(1, Math.max(0, u.confidence)),
      source: u.source,
      // A fork endpoint may score utterances itself; otherwise the lexicon on the box does.
      sentiment: typeof u.sentiment === 'number' && Number.isFinite(u.sentiment) ? u.sentiment : sentimentOf(text),
    };
    // Keywords are looked for in everything heard, not only in what is kept.
    for (const keyword of this.opts.keywords.match(u.text.length > 4 * this.opts.maxUtteranceChars ? u.text.slice(0, 4 * this.opts.maxUtteranceChars) : u.text)) {
      if (this.alerted.has(keyword)) continue;
      const k = { keyword, speaker: u.speaker, atMs: stored.startMs };
      this.alerted.set(keyword, k);
      this.hooks.onKeyword?.(k);
    }
    if (this.kept.length >= this.opts.maxUtterances) {
      this.dropped++;
      return;
    }
    this.kept.push(stored);
    this.hooks.onUtterance?.(stored);
  }

  aggregates(): TranscriptAggregates {
    let sum = 0;
    const by = { caller: { n: 0, s: 0, ms: 0 }, agent: { n: 0, s: 0, ms: 0 } };
    for (const u of this.kept) {
      sum += u.sentiment;
      const b = by[u.speaker];
      b.n++;
      b.s += u.sentiment;
      b.ms += Math.max(0, u.endMs - u.startMs);
    }
    const talk = by.caller.ms + by.agent.ms;
    const round = (x: number): number => Math.round(x * 1000) / 1000;
    return {
      utterances: this.kept.length,
      sentimentScore: sum,
      callerSentiment: by.caller.n ? round(by.caller.s / by.caller.n) : null,
      agentSentiment: by.agent.n ? round(by.agent.s / by.agent.n) : null,
      talkRatio: talk > 0 ? round(by.caller.ms / talk) : null,
    };
  }

  /** Ends the transcript (later utterances are ignored) and returns what the vault stores. */
  close(now: Date = new Date()): TranscriptDocument {
    this.closed = true;
    return {
      format: 'ccedge-transcript/1',
      callId: this.callId,
      startedAt: this.startedAt.toISOString(),
      endedAt: now.toISOString(),
      sources: [...this.sources].sort(),
      quality: this.opts.quality,
      utterances: [...this.kept].sort((a, b) => a.startMs - b.startMs),
      dropped: this.dropped,
      keywords: [...this.alerted.values()],
      aggregates: this.aggregates(),
    };
  }
}

/** The aggregates a `transcript.stored` event carries: only those `speech.transcripts.aggregates` names. */
/** The aggregates a `transcript.stored` event may carry (names as the event catalogue lists them). */
type EventAggregates = Pick<CloudEventData<'transcript.stored'>, 'sentimentScore' | 'callerSentiment' | 'agentSentiment' | 'talkRatio'>;

export function aggregatesForEvent(a: TranscriptAggregates, allowed: readonly TranscriptAggregate[]): EventAggregates {
  const out: EventAggregates = {};
  if (allowed.includes('sentiment')) {
    out.sentimentScore = a.sentimentScore;
    if (a.callerSentiment !== null) out.callerSentiment = a.callerSentiment;
    if (a.agentSentiment !== null) out.agentSentiment = a.agentSentiment;
  }
  if (allowed.includes('talkRatio') && a.talkRatio !== null) out.talkRatio = a.talkRatio;
  return out;
}
