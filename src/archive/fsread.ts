/**
 * Reading source files without following symlinks.
 */
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

export function openForRead(path: string): Promise<FileHandle> {
  return fs.promises.open(path, fs.constants.O_RDONLY | O_NOFOLLOW);
}

/** Reads a whole small file of (expected) `size` bytes; returns what is there, at most `size` bytes. */
export async function readSmallFile(path: string, size: number): Promise<Buffer> {
  const fh = await openForRead(path);
  try {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/** Reads a large file in `block`-sized pieces, at most `size` bytes. */
export async function* readBlocks(fh: FileHandle, size: number, block: number, take?: () => Buffer): AsyncGenerator<Buffer> {
  let pos = 0;
  while (pos < size) {
    const want = Math.min(block, size - pos);
    const buf = take ? take().subarray(0, want) : Buffer.allocUnsafe(want);
    let off = 0;
    while (off < want) {
      const { bytesRead } = await fh.read(buf, off, want - off, pos + off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    pos += off;
    if (off > 0) yield off === want ? buf : buf.subarray(0, off);
    if (off < want) return;
  }
}

/** Synchronous twin of readSmallFile, for tiny files (see docs/archive.md). */
export function readSmallFileSync(path: string, size: number, scratch?: Buffer): Buffer {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | O_NOFOLLOW);
  try {
    const buf = scratch && scratch.length >= size ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    fs.closeSync(fd);
  }
}
