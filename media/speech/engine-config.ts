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
    /** The pocketsphinx binary (a name looked up on PATH, or an absolute path). */
    binary: z.string().min(1).default('pocketsphinx_continuous'),
    /** The model directory: an acoustic model in `en-us/`, `cmudict-en-us.dict` and `en-us.lm.bin`. */
    modelDir: z.string().min(1).default('/usr/share/pocketsphinx/model/en-us'),
    /** Scheduling priority of recognitions (0..19): calls' media and signalling come first. */
    nice: z.number().int().min(0).max(19).default(10),
    /** Audio one recognition takes (seconds); beyond it audio is dropped and counted. */
    maxAudioS: z.number().int().min(1).max(7200).default(600),
  })
  .strict();

export type SpeechEngineConfig = z.infer<typeof speechEngineConfigSchema>;
