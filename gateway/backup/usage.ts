/** The `ccedge backup` lines of `ccedge help` (no imports: cli.ts and the command both read it). */
export const BACKUP_USAGE = `  backup now [--to DIR]               encrypted backup of the database, keys and recordings (by the
                                      running daemon when it answers, else offline); DIR: backup.path
  backup list [--from DIR] [--json]   the backups in DIR, oldest first
  backup verify [--from DIR] [--id ID]
                                      every file against its manifest; with the passphrase also the
                                      manifest's seal and the encrypted database and keys (exit 1: damaged)
  backup restore [--from DIR] [--id ID] [--force]
                                      the newest (or ID) backup into the data dir, which must be empty
                                      unless --force (then the old contents are moved aside)`;
