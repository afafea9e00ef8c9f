// Public surface of the recording vault and recorder for the gateway (composition root).
export { Recorder, type RecorderOptions, type RecorderStats, type RecorderEvent, type RecordingSink } from '../media/recorder/recorder';
export { g711WavHeader, parseG711Wav, WAV_HEADER_SIZE, WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW } from '../media/recorder/wav';
export { AuditLog, canonicalJson, type AuditAction, type AuditEntry, type AuditInput, type VerifyProblem } from './audit-log';
export { VaultError, type VaultErrorCode } from './errors';
export { VAULT_MIGRATION_SQL, TRANSCRIPTS_MIGRATION_SQL, type VaultDb, type VaultLogger, type VaultSqlParam } from './schema';
export {
  Vault, RecordingWriter, hasSpace, verifyExportManifest, recordingMetadataForSync, DEFAULT_CHUNK_SIZE,
  type VaultOptions, type CreateRecordingOptions, type RecordingInfo, type RecordingState, type ExportManifest,
} from './vault';
export { TranscriptVault, MAX_TRANSCRIPT_BYTES, type TranscriptInfo, type TranscriptState, type StoreTranscriptOptions } from './transcript-vault';
