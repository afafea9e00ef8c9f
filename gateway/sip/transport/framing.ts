/**
 * Message boundaries on a SIP stream (RFC 3261 §18.3), found in linear time: the blank line by
 * indexOf from where the last search stopped, the body length from Content-Length (`l`) by a scan
 * of the header lines. Nothing here parses SIP beyond that; a complete message goes to sip.parse.
 */

export type FrameResult =
  /** `final`: the stream's framing is lost after this one (bad Content-Length); close after answering. */
  | { kind: 'message'; text: string; final?: boolean }
  /** Not a message yet; `started` tells whether a partial message is buffered (for its timeout). */
  | { kind: 'need-more'; started: boolean }
  | { kind: 'keepalive' }
  | { kind: 'error'; reason: 'too-large' };

export interface FramerLimits {
  /** Start line + headers + body of one message. */
  maxMessageBytes: number;
}

const CRLFCRLF = '\r\n\r\n';

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/**
 * Content-Length of a header block (strings in latin1, one char per byte), or undefined when
 * absent, or NaN when malformed. A stream message without Content-Length has no body (§18.3 makes
 * it mandatory on streams; being lenient here only ever shortens a message).
 */
export function contentLengthOf(head: string): number | undefined {
  let pos = 0;
  while (pos < head.length) {
    let end = head.indexOf('\r\n', pos);
    if (end < 0) end = head.length;
    const c = head.charCodeAt(pos) | 0x20;
    // Only lines starting with 'c' (content-length) or 'l' (compact form) are looked at.
    if (c === 0x63 || c === 0x6c) {
      const colon = head.indexOf(':', pos);
      if (colon > 0 && colon < end) {
        const name = head.slice(pos, colon).trim().toLowerCase();
        if (name === 'content-length' || name === 'l') {
          const value = head.slice(colon + 1, end).trim();
          return /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
        }
      }
    }
    pos = end + 2;
  }
  return undefined;
}

export class StreamFramer {
  private buf = '';
  /** Where the next blank-line search starts (earlier bytes are known not to hold one). */
  private scanFrom = 0;
  /** Header block length + 4 once the blank line is found, with the body length. */
  private pending: { headEnd: number; total: number } | undefined;

  constructor(private readonly limits: FramerLimits) {}

  /** Bytes held for an unfinished message. */
  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: string): void {
    this.buf += chunk;
  }

  /** The next complete message, or why there is none. Call until it stops returning messages. */
  next(): FrameResult {
    if (!this.pending) {
      let start = 0;
      while (start < this.buf.length && isSpace(this.buf.charCodeAt(start))) start++;
      if (start > 0) {
        // RFC 5626 keepalives (CRLFCRLF) and stray line ends between messages.
        const wasKeepalive = this.buf.startsWith(CRLFCRLF);
        this.buf = this.buf.slice(start);
        this.scanFrom = 0;
        if (wasKeepalive && this.buf.length === 0) return { kind: 'keepalive' };
      }
      if (this.buf.length === 0) return { kind: 'need-more', started: false };
      const at = this.buf.indexOf(CRLFCRLF, this.scanFrom);
      if (at < 0) {
        if (this.buf.length > this.limits.maxMessageBytes) return { kind: 'error', reason: 'too-large' };
        this.scanFrom = Math.max(0, this.buf.length - 3);
        return { kind: 'need-more', started: true };
      }
      const length = contentLengthOf(this.buf.slice(0, at)) ?? 0;
      if (Number.isNaN(length)) {
        // The headers alone go up, so validation can answer 400; nothing after them can be framed.
        const text = this.buf.slice(0, at + 4);
        this.buf = '';
        this.scanFrom = 0;
        return { kind: 'message', text, final: true };
      }
      const total = at + 4 + length;
      if (total > this.limits.maxMessageBytes) return { kind: 'error', reason: 'too-large' };
      this.pending = { headEnd: at + 4, total };
    }
    const { total } = this.pending;
    if (this.buf.length < total) return { kind: 'need-more', started: true };
    const text = this.buf.slice(0, total);
    this.buf = this.buf.slice(total);
    this.pending = undefined;
    this.scanFrom = 0;
    return { kind: 'message', text };
  }
}

/**
 * Where a datagram's SIP text starts, or -1 when it holds no blank line (not a SIP message).
 * Leading whitespace is skipped (keepalives); the search is one indexOf.
 */
export function datagramStart(buf: Buffer): number {
  let start = 0;
  while (start < buf.length && isSpace(buf[start])) start++;
  if (start === buf.length) return -1;
  return buf.indexOf(CRLFCRLF, start, 'latin1') < 0 ? -1 : start;
}
