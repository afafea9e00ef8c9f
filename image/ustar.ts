/**
 * A minimal POSIX ustar writer and a strict reader, for update bundles and the rootfs overlay.
 * Why not the `tar` package: the bundle format is ours and needs regular files only; a reader that
 * accepts nothing else (no links, devices, pax headers, `..` or absolute names) removes the path
 * traversal and link tricks a general extractor must defend against, and adds no dependency to
 * the binary. Archives are standard: GNU tar lists and extracts them (tested).
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';

const BLOCK = 512;

export type EntryType = 'file' | 'dir' | 'symlink';

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function splitName(name: string): { name: string; prefix: string } {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest) return { name: rest, prefix };
  }
  throw new Error(`tar: name too long for ustar: ${name}`);
}

export function header(e: { name: string; type: EntryType; size: number; mode: number; mtime: number; linkname?: string; uid?: number; gid?: number; uname?: string; gname?: string }): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const { name, prefix } = splitName(e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(e.uid ?? 0, 8), 108, 'ascii');
  h.write(octal(e.gid ?? 0, 8), 116, 'ascii');
  h.write(octal(e.type === 'file' ? e.size : 0, 12), 124, 'ascii');
  h.write(octal(Math.floor(e.mtime), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2', 156, 'ascii');
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar\u000000', 257, 'ascii');
  h.write(e.uname ?? 'root', 265, 32, 'utf8');
  h.write(e.gname ?? 'root', 297, 32, 'utf8');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** Writes a tar file synchronously (build time only: bundles and the image are built offline). */
export class TarWriter {
  private readonly fd: number;
  private readonly mtime: number;

  constructor(file: string, opts: { mtime?: number } = {}) {
    this.fd = openSync(file, 'w', 0o644);
    this.mtime = opts.mtime ?? Math.floor(Date.now() / 1000);
  }

  addBuffer(name: string, data: Buffer, mode = 0o644, owner?: { uid: number; gid: number; uname: string; gname: string }): void {
    writeSync(this.fd, header({ name, type: 'file', size: data.length, mode, mtime: this.mtime, ...owner }));
    writeSync(this.fd, data);
    this.pad(data.length);
  }

  addFile(name: string, source: string, mode = 0o644, owner?: { uid: number; gid: number; uname: string; gname: string }): void {
    const src = openSync(source, 'r');
    try {
      const size = fstatSync(src).size;
      writeSync(this.fd, header({ name, type: 'file', size, mode, mtime: this.mtime, ...owner }));
      const buf = Buffer.allocUnsafe(1 << 20);
      let done = 0;
      while (done < size) {
        const n = readSync(src, buf, 0, Math.min(buf.length, size - done), done);
        if (n === 0) throw new Error(`tar: ${source} shrank while being archived`);
        writeSync(this.fd, buf, 0, n);
        done += n;
      }
      this.pad(size);
    } finally {
      closeSync(src);
    }
  }

  addDir(name: string, mode = 0o755, owner?: { uid: number; gid: number; uname: string; gname: string }): void {
    writeSync(this.fd, header({ name, type: 'dir', size: 0, mode, mtime: this.mtime, ...owner }));
  }

  addSymlink(name: string, target: string): void {
    writeSync(this.fd, header({ name, type: 'symlink', size: 0, mode: 0o777, mtime: this.mtime, linkname: target }));
  }

  finish(): void {
    writeSync(this.fd, Buffer.alloc(BLOCK * 2, 0));
    closeSync(this.fd);
  }

  private pad(size: number): void {
    const rest = size % BLOCK;
    if (rest) writeSync(this.fd, Buffer.alloc(BLOCK - rest, 0));
  }
}

export interface TarEntry {
  name: string;
  size: number;
  mode: number;
  /** Byte offset of the content in the archive. */
  offset: number;
}

/** Thrown for anything that is not a plain, well-formed ustar archive of regular files. */
export class TarFormatError extends Error {}

function cstr(buf: Buffer, start: number, len: number): string {
  const slice = buf.subarray(start, start + len);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

function parseOctal(buf: Buffer, start: number, len: number, what: string): number {
  const text = cstr(buf, start, len).trim();
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`tar: bad ${what} field`);
  return parseInt(text, 8);
}

/** Lists the regular files of a ustar archive; refuses anything else. */
export async function listRegularFiles(file: string, maxEntries = 64): Promise<TarEntry[]> {
  const fh = await open(file, 'r');
  try {
    const { size: total } = await fh.stat();
    const entries: TarEntry[] = [];
    const h = Buffer.alloc(BLOCK);
    let pos = 0;
    for (;;) {
      if (pos + BLOCK > total) throw new TarFormatError('tar: archive ends without its end-of-archive blocks');
      const { bytesRead } = await fh.read(h, 0, BLOCK, pos);
      if (bytesRead !== BLOCK) throw new TarFormatError('tar: short read');
      if (h.every((b) => b === 0)) return entries;
      if (cstr(h, 257, 6) !== 'ustar') throw new TarFormatError('tar: not a ustar archive');
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
      if (sum !== parseOctal(h, 148, 8, 'checksum')) throw new TarFormatError('tar: header checksum mismatch');
      const type = String.fromCharCode(h[156]);
      const prefix = cstr(h, 345, 155);
      const name = prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100);
      if (type !== '0' && type !== '\0') throw new TarFormatError(`tar: entry "${name}" is not a regular file (type ${JSON.stringify(type)})`);
      const size = parseOctal(h, 124, 12, 'size');
      const offset = pos + BLOCK;
      if (offset + size > total) throw new TarFormatError(`tar: entry "${name}" runs past the end of the archive`);
      entries.push({ name, size, mode: parseOctal(h, 100, 8, 'mode'), offset });
      if (entries.length > maxEntries) throw new TarFormatError(`tar: more than ${maxEntries} entries`);
      pos = offset + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await fh.close();
  }
}

/** Reads one (small) entry fully. */
export async function readEntry(file: string, e: TarEntry, max: number): Promise<Buffer> {
  if (e.size > max) throw new TarFormatError(`tar: entry "${e.name}" is larger than ${max} bytes`);
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(e.size);
    const { bytesRead } = await fh.read(buf, 0, e.size, e.offset);
    if (bytesRead !== e.size) throw new TarFormatError(`tar: short read of "${e.name}"`);
    return buf;
  } finally {
    await fh.close();
  }
}
