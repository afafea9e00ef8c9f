/**
 * Bencode (the encoding of rtpengine's ng control protocol): integers, byte strings, lists and
 * dictionaries. Byte strings decode to JS strings (UTF-8); ng only carries text (SDP, tags, flags).
 * Lengths are in bytes, so encoding measures Buffers, never string lengths.
 */

export type BValue = number | string | BValue[] | { [key: string]: BValue };

export class BencodeError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`bencode: ${message} at byte ${offset}`);
  }
}

export function bencode(v: BValue): Buffer {
  const parts: Buffer[] = [];
  const put = (x: BValue): void => {
    if (typeof x === 'number') {
      if (!Number.isInteger(x)) throw new TypeError(`bencode: ${x} is not an integer`);
      parts.push(Buffer.from(`i${x}e`, 'latin1'));
    } else if (typeof x === 'string') {
      const b = Buffer.from(x, 'utf8');
      parts.push(Buffer.from(`${b.length}:`, 'latin1'), b);
    } else if (Array.isArray(x)) {
      parts.push(Buffer.from('l', 'latin1'));
      for (const e of x) put(e);
      parts.push(Buffer.from('e', 'latin1'));
    } else {
      parts.push(Buffer.from('d', 'latin1'));
      // Keys sorted by their bytes, as the format requires.
      const keys = Object.keys(x).sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
      for (const k of keys) {
        put(k);
        put(x[k]);
      }
      parts.push(Buffer.from('e', 'latin1'));
    }
  };
  put(v);
  return Buffer.concat(parts);
}

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** Decodes one value from buf[start..]; a value must end exactly at buf's end. */
export function bdecode(buf: Buffer, start = 0): BValue {
  let i = start;
  const need = (n: number): void => {
    if (i + n > buf.length) throw new BencodeError('truncated', i);
  };
  const readUntil = (ch: string): string => {
    const end = buf.indexOf(ch, i, 'latin1');
    if (end < 0) throw new BencodeError(`no '${ch}'`, i);
    const s = buf.toString('latin1', i, end);
    i = end + 1;
    return s;
  };
  const value = (depth: number): BValue => {
    if (depth > 64) throw new BencodeError('nested too deep', i);
    need(1);
    const c = buf[i];
    if (c === 0x69 /* i */) {
      i++;
      const s = readUntil('e');
      if (!/^-?\d+$/.test(s)) throw new BencodeError(`bad integer "${s}"`, i);
      return Number(s);
    }
    if (c >= DIGIT_0 && c <= DIGIT_9) {
      const s = readUntil(':');
      if (!/^\d+$/.test(s)) throw new BencodeError(`bad length "${s}"`, i);
      const n = Number(s);
      need(n);
      const str = buf.toString('utf8', i, i + n);
      i += n;
      return str;
    }
    if (c === 0x6c /* l */) {
      i++;
      const out: BValue[] = [];
      for (;;) {
        need(1);
        if (buf[i] === 0x65 /* e */) {
          i++;
          return out;
        }
        out.push(value(depth + 1));
      }
    }
    if (c === 0x64 /* d */) {
      i++;
      const out: { [key: string]: BValue } = {};
      for (;;) {
        need(1);
        if (buf[i] === 0x65) {
          i++;
          return out;
        }
        const k = value(depth + 1);
        if (typeof k !== 'string') throw new BencodeError('dictionary key is not a string', i);
        out[k] = value(depth + 1);
      }
    }
    throw new BencodeError(`unexpected byte 0x${c.toString(16)}`, i);
  };
  const v = value(0);
  if (i !== buf.length) throw new BencodeError('trailing bytes', i);
  return v;
}
