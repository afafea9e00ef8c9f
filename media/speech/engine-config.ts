import { z } from 'zod';

/**
 * `speech.engine:` in ccedge.yaml — the built-in on-site recognizer. Owned by media/speech (the
 * engine reads it); gateway/speech/config.ts puts it in the `speech:` section.
 */
export const speechEngineConfigSchema = z
  .object({
    /** The built-in engine; a site's own engine plugs in through the SpeechEngine contract. */
    kind: z.enum(['pocketsphinx']).default('pocketsphinx'),
    /** Recognitions at once on this box (each is one process); more are refused with SPEECH_BUSY. */
    maxConcurrent: z.number().int().min(1).max(64).default(2),
  })
  .strict();

export type SpeechEngineConfig = z.infer<typeof speechEngineConfigSchema>;
