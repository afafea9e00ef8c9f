import type { RawData } from 'ws';
import type { ZodType } from 'zod';

/** Why a frame from a page was refused; both page protocols (agent/supervisor, wallboard) use these codes. */
export type WsMessageRefusal = { code: 'WS_BAD_MESSAGE' | 'WS_UNSUPPORTED_VERSION'; message: string; ref?: string };

export type WsMessageResult<T> = { ok: true; msg: T; ref?: string } | ({ ok: false } & WsMessageRefusal);

/**
 * One JSON message of a page protocol, from one WebSocket frame: text only, JSON, the protocol's
 * version `v`, then the protocol's zod schema. The first problem found is the answer, in words a
 * page developer can act on. `ref` (the page's correlation id, at most 64 characters) is taken as
 * soon as the JSON parses, so even a refused message can be matched by the page.
 */
export function parseWsMessage<T>(data: RawData, isBinary: boolean, version: number, schema: ZodType<T>, protocolName: string): WsMessageResult<T> {
  if (isBinary) return { ok: false, code: 'WS_BAD_MESSAGE', message: 'binary frames are not part of the protocol' };
  let json: unknown;
  try {
    json = JSON.parse(rawText(data));
  } catch {
    return { ok: false, code: 'WS_BAD_MESSAGE', message: 'not JSON' };
  }
  const ref = typeof (json as { ref?: unknown })?.ref === 'string' ? (json as { ref: string }).ref.slice(0, 64) : undefined;
  if ((json as { v?: unknown })?.v !== version) return { ok: false, code: 'WS_UNSUPPORTED_VERSION', message: `this server speaks ${protocolName} version ${version}`, ref };
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, code: 'WS_BAD_MESSAGE', message: `${issue.path.join('.') || 'message'}: ${issue.message}`, ref };
  }
  return { ok: true, msg: parsed.data, ref };
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
