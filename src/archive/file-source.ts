/**
 * Reads a local archive file at arbitrary offsets through a 1 MiB read-ahead window, so that
 * reading entries in file order costs one read per MiB instead of several per entry.
 * With `reuse` (the main extraction loop) two window buffers are used in turn: a returned buffer
 * stays valid until the read after next, so callers must use (or copy) it before reading twice
 * more; without it every window is a fresh allocation (for streams whose consumers lag behind).
 * With `sync` (a complete local file) the window is read with readSync on the calling thread: on the
 * threadpool, each read waited behind the small-file write jobs of file-batches.ts (session 6).
 */
import fs from 'node:fs';
import type { ReadHandle } from './input.ts';
import { CorruptArchiveError } from './safe-writer.ts';

/** Reads up to this long go into the reused buffers (with `reuse`); longer ones get their own. */
const MAX_REUSED = 2 << 20;

export class FileSource {
  readonly fh: ReadHandle;
  readonly size: number;
  private readonly window: number;
  private buf: Buffer = Buffer.alloc(0);
  private bufPos = 0;
  private readonly spares: Buffer[] | null;
  private turn = 0;
  private readonly sync: boolean;

  constructor(fh: ReadHandle, size: number, opts: { window?: number; reuse?: boolean; sync?: boolean } = {}) {
    this.fh = fh;
    this.size = size;
    this.window = opts.window ?? 1 << 20;
    this.spares = opts.reuse ? [] : null;
    this.sync = opts.sync === true;
  }

  private target(len: number): Buffer {
    if (!this.spares || len > MAX_REUSED) return Buffer.allocUnsafe(len);
    this.turn ^= 1;
    const spare = this.spares[this.turn];
    // A read longer than the window (an entry up to 1 MiB read whole through a growing file's
    // 128 KiB window) grows the spare instead of allocating a buffer that becomes garbage.
    if (spare === undefined || spare.length < len) this.spares[this.turn] = Buffer.allocUnsafe(Math.max(this.window, len));
    return this.spares[this.turn].subarray(0, len);
  }

  private async readExact(offset: number, len: number): Promise<Buffer> {
    if (offset < 0 || offset + len > this.size) throw new CorruptArchiveError(`archive is truncated or corrupt (needs bytes ${offset}..${offset + len} of ${this.size})`);
    const buf = this.target(len);
    let off = 0;
    while (off < len) {
      const bytesRead = this.sync ? fs.readSync(this.fh.fd, buf, off, len - off, offset + off) : (await this.fh.read(buf, off, len - off, offset + off)).bytesRead;
      if (bytesRead === 0) throw new CorruptArchiveError('archive is truncated (unexpected end of file)');
      off += bytesRead;
    }
    return buf;
  }

  /** Bytes [offset, offset+len). */
  async read(offset: number, len: number): Promise<Buffer> {
    if (offset >= this.bufPos && offset + len <= this.bufPos + this.buf.length) {
      return this.buf.subarray(offset - this.bufPos, offset - this.bufPos + len);
    }
    if (len > this.window) return this.readExact(offset, len);
    const want = Math.max(len, Math.min(this.window, this.size - offset));
    this.buf = await this.readExact(offset, want);
    this.bufPos = offset;
    return this.buf.subarray(0, len);
  }

  /** Bytes [offset, offset+len) as a sequence of chunks of at most one window. */
  async *stream(offset: number, len: number): AsyncGenerator<Buffer> {
    let pos = offset;
    const end = offset + len;
    while (pos < end) {
      const n = Math.min(this.window, end - pos);
      const chunk = await this.read(pos, n);
      pos += n;
      yield chunk;
    }
  }
}
