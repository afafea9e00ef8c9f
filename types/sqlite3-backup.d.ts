// sqlite3 6.x ships Database#backup (lib/sqlite3.js, src/backup.cc) without typings.
import 'sqlite3';

declare module 'sqlite3' {
  /** sqlite3_backup_* behind node-sqlite3's queue: each step runs on the libuv pool. */
  interface Backup {
    readonly idle: boolean;
    readonly completed: boolean;
    readonly failed: boolean;
    /** Pages left after the last step (-1 before the first). */
    readonly remaining: number;
    readonly pageCount: number;
    /** sqlite result codes a step may return without failing the backup (default BUSY, LOCKED). */
    retryErrors: number[];
    step(pages: number, callback?: (err: (Error & { errno?: number; code?: string }) | null, done?: boolean) => void): this;
    finish(callback?: (err: Error | null) => void): void;
  }
  interface Database {
    backup(filename: string, callback?: (err: Error | null) => void): Backup;
  }
}
