import { Readable } from 'node:stream';
import { Vault, VaultError } from '../../vault';
import { CcedgeError } from '../errors';
import type { RecordingsApi } from '../http/http-server';
import type { CallStore } from '../store/call-store';

/** The vault behind /api/v1/recordings: listing, audited playback with byte ranges, refusals. */
export function recordingsApi(vault: Vault, calls?: CallStore): RecordingsApi {
  return {
    list: () => vault.list({ limit: 1000 }),
    async listWithCallers() {
      const list = await vault.list({ limit: 1000 });
      return Promise.all(
        list.map(async (r) => {
          const c = calls ? await calls.get(r.callId) : undefined;
          return { ...r, caller: c ? { number: c.fromUser, name: c.fromName, called: c.toUser, trunk: c.trunk, at: c.createdAt } : null };
        }),
      );
    },
    setHold: async (callId, on, who, reason) => ({ callId, on, recordings: await vault.setLegalHold(callId, on, who, reason) }),
    rotateKey: (who, reason) => vault.rotateSiteKey(who, reason),
    transcripts: () => vault.transcripts.list({ limit: 1000 }),
    async transcript(ref, who, reason) {
      try {
        const { info, transcript } = await vault.transcripts.read(ref, { actor: who, reason });
        return { ...info, transcript };
      } catch (e) {
        if (e instanceof VaultError && e.code === 'VAULT_NOT_FOUND') throw new CcedgeError('HTTP_NOT_FOUND', e.message);
        if (e instanceof VaultError && e.code === 'VAULT_REASON_REQUIRED') throw new CcedgeError('HTTP_BAD_REQUEST', e.message);
        throw e;
      }
    },
    denied: (id, who, role) => vault.recordAudit({ actor: who, action: 'access-denied', recordingId: id, data: { role } }),
    async audio(id, who, reason, range) {
      try {
        const info = await vault.require(id);
        const size = Vault.wavSize(info);
        let start = 0;
        let end = size - 1;
        const m = range ? /^bytes=(\d*)-(\d*)$/.exec(range.trim()) : null;
        if (range && !m) throw new CcedgeError('HTTP_BAD_REQUEST', 'only a single "bytes=a-b" range is supported');
        if (m) {
          if (m[1] === '') start = Math.max(0, size - Number(m[2]));
          else {
            start = Number(m[1]);
            if (m[2] !== '') end = Math.min(Number(m[2]), size - 1);
          }
          if (start > end || start >= size) {
            return { status: 416, headers: { 'content-range': `bytes */${size}` }, stream: emptyStream() };
          }
        }
        const r = await vault.openReader(id, { actor: who, reason, start, end });
        return {
          status: m ? 206 : 200,
          headers: {
            'content-type': 'audio/wav',
            'content-length': String(end - start + 1),
            'accept-ranges': 'bytes',
            'cache-control': 'no-store',
            ...(m ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
          },
          stream: r.stream,
        };
      } catch (e) {
        if (e instanceof VaultError && e.code === 'VAULT_NOT_FOUND') throw new CcedgeError('HTTP_NOT_FOUND', e.message);
        if (e instanceof VaultError && e.code === 'VAULT_REASON_REQUIRED') throw new CcedgeError('HTTP_BAD_REQUEST', e.message);
        throw e;
      }
    },
  };
}

function emptyStream(): NodeJS.ReadableStream {
  return Readable.from([]);
}
