import { z } from 'zod';

/**
 * `backup:` in ccedge.yaml. Durations are whole seconds with an `S` suffix like the rest of the
 * config (recording.anchorEveryS); `everyS: 14400` is every 4 h.
 */
export const backupConfigSchema = z
  .object({
    /** The daemon's own schedule; `ccedge backup now` works without it. */
    enabled: z.boolean().default(false),
    /** Local directory or mounted share (NFS, SMB) the backups go to; `--to`/`--from` override it. */
    path: z.string().min(1).optional(),
    everyS: z.number().int().min(60).max(7 * 86_400).default(4 * 3600),
    /** The schedule as the issue and installers write it: `30m`, `4h`, `1d` (wins over everyS). */
    every: z
      .string()
      .regex(/^[1-9][0-9]{0,4}[smhd]$/, 'a duration like 30m, 4h or 1d')
      .optional(),
    keep: z
      .object({
        /** Newest backups always kept, whatever their age. */
        count: z.number().int().min(1).max(10_000).default(12),
        /** Backups older than this are deleted once more than `count` exist (0: age never deletes). */
        days: z.number().int().min(0).max(36_500).default(7),
      })
      .strict()
      .prefault({}),
    /**
     * File holding the backup passphrase (0600, outside the data dir, e.g. /etc/ccedge/backup.pass);
     * CCEDGE_BACKUP_PASSPHRASE wins over it. The database and the keys are encrypted with it;
     * without it a backup cannot be restored.
     */
    passphraseFile: z.string().min(1).optional(),
    /** sqlite pages copied per online-backup step (4 KiB each); the event loop runs between steps. */
    pagesPerStep: z.number().int().min(1).max(100_000).default(256),
  })
  .strict()
  .transform((c, ctx) => {
    if (c.every === undefined) return c;
    const n = Number(c.every.slice(0, -1));
    const everyS = n * { s: 1, m: 60, h: 3600, d: 86_400 }[c.every.slice(-1) as 's' | 'm' | 'h' | 'd'];
    if (everyS < 60 || everyS > 7 * 86_400) {
      ctx.addIssue({ code: 'custom', path: ['every'], message: 'between 1m and 7d' });
      return z.NEVER;
    }
    return { ...c, everyS };
  });
export type BackupConfig = z.infer<typeof backupConfigSchema>;
