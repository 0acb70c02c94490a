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
import { constants, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteRange, GetResult, ListOptions, ListPage, ListedObject, ObjectInfo, PutInput } from '../../src/adapter.ts';
import { CacheGateError, insufficientStorage, tooLarge } from '../../src/errors.ts';

const MAGIC = Buffer.from('CGB1');
const PREFIX = 8;

interface Header {
  objectName: string;
  metadata: Record<string, string>;
  contentType?: string;
  /** The disk tier's copy of a backend object: the backend's validators, served as its own. */
  origin?: Origin;
}

/** What the backend said of the object a disk-tier copy holds (adapters/tier). */
export interface Origin {
  etag?: string;
  /** ISO time */
  lastModified: string;
}

export interface PutOptions {
  /** Runs once the bytes are all written, before the rename. */
  beforeRename?: () => Promise<void>;
  /**
   * Origin known only once the bytes are written (a write-through upload learns the backend's ETag at
   * its end): awaited before the rename and written into room kept in the header; a rejection
   * removes the temporary file and stores nothing.
   */
  origin?: () => Promise<Origin | undefined>;
}

/** Room kept in a header for an origin written after the bytes. */
const ORIGIN_ROOM = 512;

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

  /** The file's key: the hex SHA-256 of the object name (also its file name). */
  keyOf(objectName: string): string {
    return createHash('sha256').update(objectName, 'utf8').digest('hex');
  }

  fileOf(key: string): string {
    return join(this.root, key.slice(0, 2), key);
  }

  private pathOf(objectName: string): { dir: string; file: string } {
    const h = this.keyOf(objectName);
    const dir = join(this.root, h.slice(0, 2));
    return { dir, file: join(dir, h) };
  }

  /**
   * The object name in a file's header, or undefined when the file is gone or not an object. Opened
   * with O_NOATIME: reading a header for a report is not a use, and must not move the atime that
   * stands for the last use (retention.ts).
   */
  async nameOf(key: string): Promise<string | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(this.fileOf(key), constants.O_RDONLY | (constants.O_NOATIME ?? 0));
    } catch {
      return undefined;
    }
    try {
      return (await readHeader(fh))?.header.objectName;
    } catch {
      return undefined;
    } finally {
      await fh.close();
    }
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
      const read = await readHeader(fh);
      if (!read || read.header.objectName !== objectName) {
        await fh.close(); // not an object, or a hash collision: practically impossible, but never serve another object
        return null;
      }
      const { header, dataOffset } = read;
      const info = {
        size: st.size - dataOffset,
        lastModified: header.origin ? new Date(header.origin.lastModified) : st.mtime,
        etag: header.origin ? header.origin.etag : `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`,
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

  /**
   * Writes the object to a temporary file and renames it into place. `beforeRename` runs once the
   * bytes are all written (retention.ts waits there for an unlink of the same name in progress).
   * A full disk (ENOSPC, EDQUOT) answers 507 with the temporary file removed.
   */
  async put(objectName: string, input: PutInput, opts: PutOptions = {}): Promise<ObjectInfo & { fileBytes: number; mtimeMs: number }> {
    try {
      return await this.write(objectName, input, opts);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') throw insufficientStorage(`the local data directory is full (${code}): nothing was stored`, err);
      throw err;
    }
  }

  private async write(objectName: string, input: PutInput, opts: PutOptions): Promise<ObjectInfo & { fileBytes: number; mtimeMs: number }> {
    if (input.maxSize > 0 && input.contentLength !== undefined && input.contentLength > input.maxSize) {
      throw tooLarge(input.contentLength, input.maxSize);
    }
    const { dir, file } = this.pathOf(objectName);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, tempName());
    const header: Header = { objectName, metadata: input.metadata, ...(input.contentType ? { contentType: input.contentType } : {}) };
    // JSON.parse ignores trailing spaces: the room for a later origin is spaces.
    const json = JSON.stringify(header);
    const hjson = Buffer.from(opts.origin ? json.padEnd(json.length + ORIGIN_ROOM) : json, 'utf8');
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
      const origin = await opts.origin?.();
      if (origin) await patchHeader(tmp, { ...header, origin }, hjson.length);
      await opts.beforeRename?.();
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const st = await stat(file);
    return { size: counter.bytes, lastModified: st.mtime, metadata: input.metadata, contentType: input.contentType, fileBytes: st.size, mtimeMs: st.mtimeMs };
  }

  /** Removes one object; false when there was none. (With retention, RetainedStore.delete keeps its index right.) */
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
    let shards: string[];
    try {
      shards = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { objects: [], truncated: false };
      throw err;
    }
    for (const d of shards) {
      if (!/^[0-9a-f]{2}$/.test(d)) continue;
      for (const key of await readdir(join(this.root, d))) {
        if (!/^[0-9a-f]{64}$/.test(key)) continue; // temporary files and strays
        const name = await this.nameOf(key);
        if (name === undefined || !name.startsWith(prefix) || (opts.startAfter !== undefined && name <= opts.startAfter)) continue;
        const info = await this.head(name);
        if (info) found.push({ name, size: info.size, lastModified: info.lastModified, ...(info.etag ? { etag: info.etag } : {}) });
      }
    }
    found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { objects: found.slice(0, opts.max), truncated: found.length > opts.max };
  }
}

/**
 * Temporary files carry the writer's pid (`.tmp-<pid>-<random>`), so that a start-up can remove
 * those a crashed process left (retention.ts) without touching a live writer's.
 */
export const TEMP_PREFIX = '.tmp-';
function tempName(): string {
  return `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`;
}

/** The pid in a temporary file's name; undefined for names of the older `.tmp-<random>` form. */
export function tempOwner(name: string): number | undefined {
  const m = /^\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Rewrites a header in its place, within its length (the room kept for it). */
async function patchHeader(file: string, header: Header, length: number): Promise<void> {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > length) return; // an origin too long to keep: the copy has none, and is fetched again when asked for
  const buf = Buffer.alloc(length, 0x20);
  json.copy(buf);
  const fh = await open(file, 'r+');
  try {
    await fh.write(buf, 0, length, PREFIX);
  } finally {
    await fh.close();
  }
}

async function readHeader(fh: FileHandle): Promise<{ header: Header; dataOffset: number } | undefined> {
  const pre = Buffer.alloc(PREFIX);
  await fh.read(pre, 0, PREFIX, 0);
  if (!pre.subarray(0, 4).equals(MAGIC)) return undefined;
  const hlen = pre.readUInt32BE(4);
  const hbuf = Buffer.alloc(hlen);
  await fh.read(hbuf, 0, hlen, PREFIX);
  return { header: JSON.parse(hbuf.toString('utf8')) as Header, dataOffset: PREFIX + hlen };
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
