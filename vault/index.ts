/*
 * The vault's front door for its host (the gateway): the encrypted recording and transcript
 * store, its audit log, keys and schema. vault/ sits above media/ (it stores what media's
 * Recorder produces through media's RecordingSink) and imports nothing from gateway/.
 */
export { AuditLog, canonicalJson, type AuditAction, type AuditEntry, type AuditInput, type VerifyProblem } from './audit-log';
export { VaultError, type VaultErrorCode } from './errors';
export { VAULT_MIGRATION_SQL, TRANSCRIPTS_MIGRATION_SQL, type VaultDb, type VaultLogger, type VaultSqlParam } from './schema';
export { Vault, type VaultOptions } from './vault';
export { RecordingWriter, type CreateRecordingOptions } from './writer';
export { recordingMetadataForSync, type RecordingInfo, type RecordingState } from './catalogue';
export { DEFAULT_CHUNK_SIZE } from './file-format';
export { verifyExportManifest, type ExportManifest } from './export';
export { hasSpace } from './disk';
export { writeSecretFile } from './keys';
export { TranscriptVault, MAX_TRANSCRIPT_BYTES, type TranscriptInfo, type TranscriptState, type StoreTranscriptOptions } from './transcript-vault';
