import { z } from 'zod';

/** `speech.transcripts:` in ccedge.yaml — which calls get transcripts, keyword alerts, what may leave. */
export const transcriptsConfigSchema = z.object({}).strict();

export type TranscriptsConfig = z.infer<typeof transcriptsConfigSchema>;
