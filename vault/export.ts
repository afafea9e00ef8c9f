import { createHash, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open as openAsync, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { G711Codec } from '../media';
import { g711WavHeader, WAV_HEADER_SIZE } from '../media';
import { canonicalJson } from './audit-log';
import type { RecordingCatalogue } from './catalogue';
import { VaultError } from './errors';
import { loadSigningKey } from './keys';
import { dataBytes } from './reader';
import { requireReason } from './retention';

/*
 * Signed export: a recording leaves the vault as a plain WAV beside a manifest signed with the
 * site's Ed25519 export key, audited as `exported`. The audio is checked against the indexed
 * SHA-256 while it is written; a tampered recording is not exported and leaves no file behind.
 */

export interface ExportManifest {
  format: 'ccedge-recording-export/1';
  recordingId: string;
  callId: string;
  createdAt: string;
  codec: G711Codec;
  wavFormatTag: number;
  channels: string;
  sampleRate: number;
  durationMs: number;
  audioBytes: number;
  audioSha256: string;
  wavFile: string;
  wavBytes: number;
  wavSha256: string;
  exportedAt: string;
  exportedBy: string;
  reason: string;
  auditSeq: number;
  auditHash: string;
  signature?: { alg: 'Ed25519'; publicKey: string; value: string };
}

/** The site's export signing key (`keys/export-signing.key`), loaded (or created) on first use. */
export class ExportSigner {
  private key: { privateKey: KeyObject; publicKeyPem: string } | undefined;

  constructor(private readonly keysDir: string) {}

  private loaded(): { privateKey: KeyObject; publicKeyPem: string } {
    this.key ??= loadSigningKey(this.keysDir);
    return this.key;
  }

  get publicKeyPem(): string {
    return this.loaded().publicKeyPem;
  }

  sign(body: Buffer): string {
    return edSign(null, body, this.loaded().privateKey).toString('base64');
  }
}

/**
 * Writes the recording as a plain WAV to `outFile` (0600, refuses to overwrite) and
 * `<outFile>.manifest.json`, signed by `signer`.
 */
export async function exportRecording(
  cat: RecordingCatalogue, signer: ExportSigner, id: string, outFile: string, actor: string, reason: string,
): Promise<{ wavFile: string; manifestFile: string; manifest: ExportManifest }> {
  const why = requireReason(reason, 'exporting a recording');
  const r = await cat.finalRow(id);
  const key = cat.dataKeyOf(r);
  const manifestFile = `${outFile}.manifest.json`;
  if (existsSync(outFile) || existsSync(manifestFile)) throw new VaultError('VAULT_BAD_STATE', `${outFile} or its manifest already exists`);
  const tmp = `${outFile}.partial-${process.pid}`;
  const fh = await openAsync(tmp, 'wx', 0o600);
  const audioHash = createHash('sha256');
  const wavHash = createHash('sha256');
  try {
    const header = g711WavHeader(r.codec, r.bytes);
    await fh.write(header);
    wavHash.update(header);
    for await (const part of dataBytes(cat.fileOf(r), r, key, 0, r.bytes)) {
      audioHash.update(part);
      wavHash.update(part);
      await fh.write(part);
    }
    if (r.bytes & 1) {
      const pad = Buffer.alloc(1);
      await fh.write(pad);
      wavHash.update(pad);
    }
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  } finally {
    key.fill(0);
  }
  await fh.close();
  const audioSha256 = audioHash.digest('hex');
  if (audioSha256 !== r.sha256) {
    await rm(tmp, { force: true });
    throw new VaultError('VAULT_TAMPERED', `recording ${id}: decrypted audio does not match its SHA-256; not exported`, { recordingId: id });
  }
  const wavBytes = WAV_HEADER_SIZE + r.bytes + (r.bytes & 1);
  const wavSha256 = wavHash.digest('hex');
  const exportedAt = cat.now().toISOString();
  const entry = await cat.audit.append({ actor, action: 'exported', recordingId: id, reason: why, data: { file: path.basename(outFile), wavSha256 } });
  const body: ExportManifest = {
    format: 'ccedge-recording-export/1', recordingId: r.id, callId: r.call_id, createdAt: r.created_at, codec: r.codec,
    wavFormatTag: r.codec === 'PCMU' ? 7 : 6, channels: 'left=caller,right=agent', sampleRate: r.sample_rate, durationMs: r.duration_ms,
    audioBytes: r.bytes, audioSha256, wavFile: path.basename(outFile), wavBytes, wavSha256, exportedAt, exportedBy: actor, reason: why,
    auditSeq: entry.seq, auditHash: entry.hash,
  };
  const signature = signer.sign(Buffer.from(canonicalJson(body)));
  const manifest: ExportManifest = { ...body, signature: { alg: 'Ed25519', publicKey: signer.publicKeyPem, value: signature } };
  await rename(tmp, outFile);
  const mh = await openAsync(manifestFile, 'wx', 0o600);
  try {
    await mh.write(`${JSON.stringify(manifest, null, 2)}\n`);
    await mh.sync();
  } finally {
    await mh.close();
  }
  return { wavFile: outFile, manifestFile, manifest };
}

/**
 * Checks an export: the manifest's Ed25519 signature (against `trustedPublicKeyPem` if given,
 * else the key in the manifest) and, if `wav` is given, its size and SHA-256.
 */
export function verifyExportManifest(manifest: ExportManifest, wav?: Buffer, trustedPublicKeyPem?: string): string[] {
  const problems: string[] = [];
  const { signature, ...body } = manifest;
  if (!signature || signature.alg !== 'Ed25519') return ['manifest is not signed with Ed25519'];
  if (trustedPublicKeyPem && trustedPublicKeyPem.trim() !== signature.publicKey.trim()) problems.push('manifest is signed by an untrusted key');
  const ok = edVerify(null, Buffer.from(canonicalJson(body)), createPublicKey(signature.publicKey), Buffer.from(signature.value, 'base64'));
  if (!ok) problems.push('manifest signature does not verify');
  if (wav) {
    if (wav.length !== manifest.wavBytes) problems.push(`WAV is ${wav.length} bytes, manifest says ${manifest.wavBytes}`);
    const h = createHash('sha256').update(wav).digest('hex');
    if (h !== manifest.wavSha256) problems.push('WAV SHA-256 does not match the manifest');
  }
  return problems;
}
