import { z } from 'zod';

/**
 * Genesys AudioHook protocol v2, the client side: the messages this box sends (open, ping, paused,
 * resumed, discarded, update, close, error) and zod schemas for what an endpoint may send (opened,
 * pong, pause, resume, updated, event, disconnect, reconnect, closed). Text frames are JSON; audio
 * goes in binary frames. Everything an endpoint sends is parsed strictly before it is believed.
 */

export const AUDIOHOOK_VERSION = '2';

/** ISO 8601 duration in seconds ("PT1.24S"), what AudioHook uses for positions and offsets. */
export function isoDuration(samples: number, rate = 8000): string {
  // Millisecond resolution: enough for 8 kHz frames, and no float noise like PT0.30000000000000004S.
  return `PT${(Math.round((samples / rate) * 1000) / 1000).toString()}S`;
}

const DURATION_RE = /^PT(\d{1,9}(?:\.\d{1,9})?)S$/;

/** Milliseconds of an AudioHook duration, or null when it is not one. */
export function durationMs(d: string): number | null {
  const m = DURATION_RE.exec(d);
  return m === null ? null : Math.round(Number(m[1]) * 1000);
}

const duration = z.string().regex(DURATION_RE, 'ISO 8601 duration in seconds (PT1.5S)');
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const channel = z.enum(['external', 'internal']);
export type MediaChannel = z.infer<typeof channel>;

const mediaParameter = z.object({
  type: z.literal('audio'),
  format: z.enum(['PCMU', 'L16']),
  channels: z.array(channel).min(1).max(2),
  rate: z.literal(8000),
});
export type MediaParameter = z.infer<typeof mediaParameter>;

/** What every server message carries. */
const serverBase = {
  version: z.literal(AUDIOHOOK_VERSION),
  id: z.string().min(1).max(128),
  seq,
  clientseq: seq,
};

const transcriptEntity = z.object({
  type: z.literal('transcript'),
  data: z.object({
    id: z.string().max(128).optional(),
    channel,
    isFinal: z.boolean(),
    offset: duration.optional(),
    duration: duration.optional(),
    alternatives: z
      .array(
        z.object({
          confidence: z.number().min(0).max(1),
          languages: z.array(z.string().max(35)).max(8).optional(),
          interpretations: z
            .array(z.object({ type: z.string().max(32), transcript: z.string().max(4000), tokens: z.array(z.unknown()).max(2000).optional() }))
            .min(1)
            .max(8),
        }),
      )
      .min(1)
      .max(8),
    /**
     * Not in Genesys' spec: a sentiment score an on-prem endpoint computed for this utterance
     * (AFINN-style, e.g. -5..5), passed on as TranscriptUtterance.sentiment.
     */
    sentiment: z.number().min(-1000).max(1000).optional(),
  }),
});
export type TranscriptEntity = z.infer<typeof transcriptEntity>;

/** Entities we do not use (agentassist, ...) are accepted and counted, not parsed. */
const otherEntity = z.object({ type: z.string().min(1).max(64).refine((t) => t !== 'transcript', 'a transcript entity that does not parse'), data: z.unknown() });

export const serverMessageSchema = z.discriminatedUnion('type', [
  z.object({
    ...serverBase,
    type: z.literal('opened'),
    parameters: z.object({
      media: z.array(mediaParameter).max(4),
      discardTo: duration.optional(),
      startPaused: z.boolean().optional(),
    }),
  }),
  z.object({ ...serverBase, type: z.literal('pong'), parameters: z.object({}) }),
  z.object({ ...serverBase, type: z.literal('pause'), parameters: z.object({}) }),
  z.object({ ...serverBase, type: z.literal('resume'), parameters: z.object({}) }),
  z.object({ ...serverBase, type: z.literal('updated'), parameters: z.object({}) }),
  z.object({ ...serverBase, type: z.literal('closed'), parameters: z.object({}) }),
  z.object({
    ...serverBase,
    type: z.literal('disconnect'),
    parameters: z.object({ reason: z.enum(['completed', 'unauthorized', 'error']), info: z.string().max(1000).optional() }),
  }),
  z.object({ ...serverBase, type: z.literal('reconnect'), parameters: z.object({ info: z.string().max(1000).optional() }) }),
  z.object({
    ...serverBase,
    type: z.literal('event'),
    parameters: z.object({ entities: z.array(z.union([transcriptEntity, otherEntity])).max(64) }),
  }),
]);
export type ServerMessage = z.infer<typeof serverMessageSchema>;

export type CloseReason = 'end' | 'error' | 'disconnect' | 'reconnect';

export interface Participant {
  id: string;
  ani: string;
  aniName: string;
  dnis: string;
}

/** Client messages by type: their parameters. */
export interface ClientParameters {
  open: {
    organizationId: string;
    conversationId: string;
    participant: Participant;
    media: MediaParameter[];
    language?: string;
  };
  ping: { rtt?: string };
  paused: Record<string, never>;
  resumed: { start: string; discarded: string };
  discarded: { start: string; discarded: string };
  update: { language: string };
  close: { reason: CloseReason };
  error: { code: 400 | 405 | 408 | 409 | 413 | 415 | 429 | 500 | 503; message: string };
}

export type ClientMessageType = keyof ClientParameters;

export interface ClientMessage<T extends ClientMessageType = ClientMessageType> {
  version: typeof AUDIOHOOK_VERSION;
  type: T;
  id: string;
  seq: number;
  serverseq: number;
  position: string;
  parameters: ClientParameters[T];
}

/** What this box offers: PCMU 8 kHz, stereo, the customer (external) left, the agent side (internal) right. */
export const OFFERED_MEDIA: MediaParameter[] = [{ type: 'audio', format: 'PCMU', channels: ['external', 'internal'], rate: 8000 }];

/** Parses one text frame from an endpoint; null (with the reason) when it is not a valid v2 server message. */
export function parseServerMessage(text: string): { ok: true; message: ServerMessage } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const r = serverMessageSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return { ok: false, reason: `${i.path.join('.') || 'message'}: ${i.message}`.slice(0, 200) };
  }
  return { ok: true, message: r.data };
}
