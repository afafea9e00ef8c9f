import { z } from 'zod';

/** Aggregates of a stored transcript that the sync policy may let leave (numbers only, never text). */
export const TRANSCRIPT_AGGREGATES = ['sentiment', 'talkRatio'] as const;
export type TranscriptAggregate = (typeof TRANSCRIPT_AGGREGATES)[number];

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a queue or intent name');
/** Lower-case words a recogniser can produce: what a keyword is matched against. */
const keyword = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z']+( [a-z']+){0,4}$/, 'a keyword is 1-5 words of letters (and apostrophes), e.g. "cancel" or "speak to a manager"')
  .max(60);

/** `speech.transcripts:` in ccedge.yaml — which calls get transcripts, keyword alerts, what may leave. */
export const transcriptsConfigSchema = z
  .object({
    /** Bridged calls of these queues get built-in live transcripts (the on-site engine, dictation mode). */
    queues: z.array(name).max(256).default([]),
    /** … and calls routed with these intents. */
    intents: z.array(name).max(256).default([]),
    /** Whose audio the built-in engine transcribes: each side is one recognition (speech.engine.maxConcurrent counts them). */
    speakers: z.array(z.enum(['caller', 'agent'])).min(1).max(2).default(['caller', 'agent']),
    /**
     * A built-in recognition is ended and a new one started after this much audio, at the next
     * utterance boundary (the engine stops at speech.engine's per-recognition audio limit).
     */
    segmentS: z.number().int().min(10).max(3600).default(50),
    /** Phrases that raise `transcript.keyword` (the keyword only, never the text), once per call and keyword. */
    keywords: z.array(keyword).max(100).default([]),
    /**
     * Numeric aggregates put on the `transcript.stored` event. They leave the site only if the sync
     * policy also lists them (sync.policy.events: {transcript.stored: {sentimentScore: plain}}).
     */
    aggregates: z.array(z.enum(TRANSCRIPT_AGGREGATES)).max(TRANSCRIPT_AGGREGATES.length).default([]),
    /** Utterances kept per call (a call that talks longer keeps its first ones, and counts the rest). */
    maxUtterances: z.number().int().min(10).max(20_000).default(2000),
    /** Characters kept per utterance. */
    maxUtteranceChars: z.number().int().min(20).max(10_000).default(2000),
  })
  .strict();

export type TranscriptsConfig = z.infer<typeof transcriptsConfigSchema>;
