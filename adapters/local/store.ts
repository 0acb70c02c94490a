/**
 * The embedded backend's files. Each object is one file named by the SHA-256 of its object name
 * (so no object name can address a path outside the data directory, and `a` and `a/b` can both
 * exist), holding a small header with its metadata followed by the bytes:
 *
 *   "CGB1" | uint32 BE header length | header JSON | data
 *
 * Writes go to a temporary file in the same directory and are renamed into place, so a reader sees
 * the old object or the new one, never a part. A PUT past its size cap stops reading, removes the
 * temporary file and stores nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteRange, GetResult, ListOptions, ListPage, ListedObject, ObjectInfo, PutInput } from '../../src/adapter.ts';
import { CacheGateError, tooLarge } from '../../src/errors.ts';

const MAGIC = Buffer.from('CGB1');
const PREFIX = 8;

interface Header {
  objectName: string;
  metadata: Record<string, string>;
  contentType?: string;
}

/**
 * Read size of object bodies. 256 KiB rather than 1 MiB: with 200 downloads in flight, glibc keeps the
 * freed 1 MiB read buffers after the peak (its mmap threshold rises), and bench/load measured RSS
 * after the run at 1.09-1.10x its post-warm-up value; with 256 KiB, 1.04-1.05x and a peak of 393
 * instead of 443-464 MiB, the same requests per second (docs/performance.md, Load).
 */
const READ_CHUNK = 256 * 1024;

export class FileStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'objects');
  }

  private pathOf(objectName: string): { dir: string; file: string } {
    const h = createHash('sha256').update(objectName, 'utf8').digest('hex');
    const dir = join(this.root, h.slice(0, 2));
    return { dir, file: join(dir, h) };
  }

  async ready(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  async head(objectName: string): Promise<(ObjectInfo & { dataOffset: number }) | null> {
    const opened = await this.openObject(objectName);
    if (!opened) return null;
    await opened.fh.close();
    return opened.info;
  }

  /**
   * Opens the object's file and reads its header. The caller owns the handle: the body must be read
   * through the same handle, because a concurrent PUT may rename another file into place at any
   * moment, and a second open() would read the new file's bytes with the old file's size.
   */
  private async openObject(objectName: string): Promise<{ fh: FileHandle; info: ObjectInfo & { dataOffset: number } } | null> {
    const { file } = this.pathOf(objectName);
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      const st = await fh.stat();
      const pre = Buffer.alloc(PREFIX);
      await fh.read(pre, 0, PREFIX, 0);
      if (!pre.subarray(0, 4).equals(MAGIC)) {
        await fh.close();
        return null;
      }
      const hlen = pre.readUInt32BE(4);
      const hbuf = Buffer.alloc(hlen);
      await fh.read(hbuf, 0, hlen, PREFIX);
      const header = JSON.parse(hbuf.toString('utf8')) as Header;
      if (header.objectName !== objectName) {
        await fh.close(); // hash collision: practically impossible, but never serve another object
        return null;
      }
      const dataOffset = PREFIX + hlen;
      const info = {
        size: st.size - dataOffset,
        lastModified: st.mtime,
        etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`,
        contentType: header.contentType,
        metadata: header.metadata,
        dataOffset,
      };
      return { fh, info };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async get(objectName: string, range?: ByteRange): Promise<GetResult | null> {
    const opened = await this.openObject(objectName);
    if (!opened) return null;
    const { fh } = opened;
    const { dataOffset, ...info } = opened.info;
    if (!range) {
      return { info, body: fh.createReadStream({ start: dataOffset, highWaterMark: READ_CHUNK }) };
    }
    const end = Math.min(range.end ?? info.size - 1, info.size - 1);
    if (range.start >= info.size || end < range.start) {
      await fh.close();
      throw new CacheGateError('range_not_satisfiable', 416, `range ${range.start}-${range.end ?? ''} is outside the object (size ${info.size})`, {
        headers: { 'Content-Range': `bytes */${info.size}` },
      });
    }
    return {
      info,
      body: fh.createReadStream({ start: dataOffset + range.start, end: dataOffset + end, highWaterMark: READ_CHUNK }),
      range: { start: range.start, end },
    };
  }

  async put(objectName: string, input: PutInput): Promise<ObjectInfo> {
    if (input.maxSize > 0 && input.contentLength !== undefined && input.contentLength > input.maxSize) {
      throw tooLarge(input.contentLength, input.maxSize);
    }
    const { dir, file } = this.pathOf(objectName);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    const header: Header = { objectName, metadata: input.metadata, ...(input.contentType ? { contentType: input.contentType } : {}) };
    const hjson = Buffer.from(JSON.stringify(header), 'utf8');
    const pre = Buffer.alloc(PREFIX);
    MAGIC.copy(pre);
    pre.writeUInt32BE(hjson.length, 4);
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600, highWaterMark: 1 << 20 });
    out.write(Buffer.concat([pre, hjson]));
    const counter = new ByteCounter(input.maxSize);
    try {
      await pipeline(input.body, counter, out);
      if (input.contentLength !== undefined && counter.bytes !== input.contentLength) {
        throw new CacheGateError('length_mismatch', 400, `received ${counter.bytes} bytes, Content-Length said ${input.contentLength}`);
      }
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const st = await stat(file);
    return { size: counter.bytes, lastModified: st.mtime, metadata: input.metadata, contentType: input.contentType };
  }

  /** Removes one object; false when there was none. */
  async delete(objectName: string): Promise<boolean> {
    const opened = await this.openObject(objectName); // only the file whose header names this object
    if (!opened) return false;
    await opened.fh.close();
    await rm(this.pathOf(objectName).file, { force: true });
    return true;
  }

  /**
   * Objects whose names start with `prefix`, in name order. Files are named by hash, so this reads
   * every object's header: O(objects) per call, fine for the one-machine embedded backend (the S3
   * front door lists rarely); memory holds the names under the prefix.
   */
  async list(prefix: string, opts: ListOptions): Promise<ListPage> {
    const found: ListedObject[] = [];
    let dirs: string[];
    try {
      dirs = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { objects: [], truncated: false };
      throw err;
    }
    for (const d of dirs) {
      if (!/^[0-9a-f]{2}$/.test(d)) continue;
      for (const f of await readdir(join(this.root, d))) {
        if (!/^[0-9a-f]{64}$/.test(f)) continue;
        const name = await this.nameOf(join(this.root, d, f));
        if (name === undefined || !name.startsWith(prefix) || (opts.startAfter !== undefined && name <= opts.startAfter)) continue;
        const info = await this.head(name);
        if (info) found.push({ name, size: info.size, lastModified: info.lastModified, ...(info.etag ? { etag: info.etag } : {}) });
      }
    }
    found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { objects: found.slice(0, opts.max), truncated: found.length > opts.max };
  }

  /** The object name in a file's header; undefined for anything that is not an object file (or vanished). */
  private async nameOf(file: string): Promise<string | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch {
      return undefined;
    }
    try {
      const pre = Buffer.alloc(PREFIX);
      await fh.read(pre, 0, PREFIX, 0);
      if (!pre.subarray(0, 4).equals(MAGIC)) return undefined;
      const hbuf = Buffer.alloc(pre.readUInt32BE(4));
      await fh.read(hbuf, 0, hbuf.length, PREFIX);
      return (JSON.parse(hbuf.toString('utf8')) as Header).objectName;
    } catch {
      return undefined;
    } finally {
      await fh.close();
    }
  }
}

/** Counts bytes and fails with 413 as soon as the cap is passed (works for chunked bodies). */
class ByteCounter extends Transform {
  bytes = 0;
  private readonly max: number;

  constructor(max: number) {
    super({ highWaterMark: 1 << 20 });
    this.max = max;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.max > 0 && this.bytes > this.max) {
      cb(tooLarge(`more than ${this.max}`, this.max));
      return;
    }
    cb(null, chunk);
  }
}
