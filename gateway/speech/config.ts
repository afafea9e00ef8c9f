import { z } from 'zod';
import { speechEngineConfigSchema } from '../../media';
import { forkConfigSchema } from '../../media';
import { transcriptsConfigSchema } from '../transcripts/config';

/**
 * `speech:` in ccedge.yaml: on-site recognition (engine), the AudioHook media fork and transcripts.
 * Each part's schema lives with the module that reads it. Audio and text never leave the site.
 */
export const speechConfigSchema = z
  .object({
    engine: speechEngineConfigSchema.prefault({}),
    fork: forkConfigSchema.optional(),
    transcripts: transcriptsConfigSchema.prefault({}),
  })
  .strict();

export type SpeechConfig = z.infer<typeof speechConfigSchema>;
