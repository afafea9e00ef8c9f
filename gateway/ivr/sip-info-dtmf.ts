import type { DtmfDigit } from '../../media';
/** Event codes 0-15 (RFC 4733 order): some PBXs send `Signal=10` for * and `Signal=11` for #. */
const BY_CODE: readonly DtmfDigit[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'];
/** An INFO body larger than this is not a key press. */
const MAX_BODY = 1024;

/**
 * The digit in a SIP INFO body, or null for anything else (other content types, garbage, empty,
 * oversized). Understood:
 * - `application/dtmf-relay` (Cisco style): `Signal=5\r\nDuration=160`, lines in any order, any
 *   line ending, case-insensitive keys, `Signal=10`/`11` as `*`/`#`;
 * - `application/dtmf`: the body is the digit itself (`5`), or the same `Signal=` form.
 * The media type is matched case-insensitively and its parameters are ignored.
 */
export function parseInfoDtmf(contentType: unknown, body: unknown): DtmfDigit | null {
  if (typeof contentType !== 'string') return null;
  const type = contentType.split(';', 1)[0].trim().toLowerCase();
  if (type !== 'application/dtmf-relay' && type !== 'application/dtmf') return null;
  let text: string;
  if (typeof body === 'string') text = body;
  else if (Buffer.isBuffer(body)) text = body.toString('latin1');
  else return null;
  if (text.length === 0 || text.length > MAX_BODY) return null;

  const signal = signalLine(text);
  if (signal !== undefined) return toDigit(signal);
  if (type === 'application/dtmf') return toDigit(text.trim());
  return null;
}

/** The value of the first `Signal=` line; undefined if there is none. */
function signalLine(text: string): string | undefined {
  for (const line of text.split(/\r\n|\r|\n/)) {
    const m = /^\s*signal\s*[=:]\s*(.*?)\s*$/i.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

function toDigit(value: string): DtmfDigit | null {
  if (/^[0-9*#]$/.test(value)) return value as DtmfDigit;
  if (/^[A-Da-d]$/.test(value)) return value.toUpperCase() as DtmfDigit;
  if (/^1[0-5]$/.test(value)) return BY_CODE[Number(value)];
  return null;
}
