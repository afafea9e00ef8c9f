/** Encrypted backups of the data dir: schedule, CLI, restore (one job per file; this is the facade). */
export { backupConfigSchema, type BackupConfig } from './config';
export { BackupService, type BackupStatus, type BackupServiceDeps } from './backup-service';
export { runBackup, backupId, type BackupJob, type BackupResult } from './run-backup';
export { restoreBackup, restoredSeq, type RestoreResult } from './restore';
export { listBackups, readManifest, verifyFiles, checkManifest, type Manifest, type ManifestFile } from './manifest';
export { backupsToDelete } from './retention';
export { deriveKeys, decryptFrom, encryptTo } from './crypto';
export { resolvePassphrase } from './passphrase';
