/**
 * Streaming zip writer (zip / zipzstd).
 *
 * Entries are written in the order given (the caller sorts them). Small files are read and
 * compressed ahead of time, several at once, within a Budget (entries and bytes in flight); each
 * is then written with a complete local header (sizes and CRC known). Large files are streamed
 * with a data descriptor (flag bit 3), their blocks compressed in parallel (compress.ts).
 * Zip64 structures are used exactly when needed: an entry or offset past 4 GiB, or more than
 * 65,535 entries. Memory: O(budget + parallel blocks × 1 MiB) plus one serialized central-directory
 * record per entry.
 */
import zlib from 'node:zlib';
import fs from 'node:fs';
import os from 'node:os';
import type { Writable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import type { SourceEntry } from './entry.ts';
import { typeBits } from './entry.ts';
import { Sink } from './sink.ts';
import { BlockCompressor, type CompressedBlock } from './block-workers.ts';
import { nativeDeflate } from './native-deflate.ts';
import { NativeFileStreamer } from './native-stream.ts';
import { FileBatches, type Prepared } from './zip-batches.ts';
import { Budget, ReadAhead } from './pool.ts';
import { openForRead, readBlocks, readSmallFile, readSmallFileSync } from './fsread.ts';
import {
  BLOCK, DeflateLanes, METHOD_DEFLATE, METHOD_STORE, METHOD_ZSTD, SYNC_LIMIT, compressWhole, compressWholeSync,
} from './compress.ts';
import type { ZipMethod } from './compress.ts';
import {
  EXTRA_TIMESTAMP, EXTRA_UNIX_UIDGID, EXTRA_ZIP64, FLAG_DESCRIPTOR, FLAG_UTF8, MADE_BY_UNIX, MAX16, MAX32,
  SIG_CENTRAL, SIG_DESCRIPTOR, SIG_EOCD, SIG_LOCAL, SIG_ZIP64_EOCD, SIG_ZIP64_LOCATOR,
  toDosDateTime, unixSeconds32, writeU64,
} from './zip-format.ts';

export interface ZipWriteOptions {
  /** Compression method for file data: 0 store, 8 deflate, 93 zstd. */
  method: ZipMethod;
  /** Deflate or zstd level. */
  level: number;
  /** Files up to this size are read whole and compressed ahead (default 1 MiB). */
  smallFileLimit?: number;
  /** Entries prepared ahead (default 64). */
  maxInFlight?: number;
  /** Bytes of file data prepared ahead (default 32 MiB). */
  budgetBytes?: number;
  /** Blocks of one large file compressed at once (default 4). */
  parallelBlocks?: number;
  /**
   * Deflate engine: the native addon (native-deflate.ts; an error if it is not built) or node:zlib.
   * Default: native when built and not turned off with CACHEGATE_NATIVE_DEFLATE=0.
   */
  engine?: 'native' | 'zlib';
  /** Entry size from which a streamed entry gets zip64 local fields (default 0xF0000000; tests lower it). */
  zip64Threshold?: number;
  onWarning?: (message: string) => void;
}

export interface WriteResult {
  entries: number;
  bytes: number;
}

interface CentralRecord {
  name: Buffer;
  flags: number;
  method: number;
  versionNeeded: number;
  time: number;
  date: number;
  crc: number;
  csize: number;
  usize: number;
  offset: number;
  externalAttr: number;
  mtimeMs: number;
  uid: number;
  gid: number;
}

const EXTRA_TS_LEN = 4 + 5;
const EXTRA_UX_LEN = 4 + 11;

function extraCommon(buf: Buffer, off: number, r: CentralRecord): number {
  buf.writeUInt16LE(EXTRA_TIMESTAMP, off);
  buf.writeUInt16LE(5, off + 2);
  buf.writeUInt8(1, off + 4);
  buf.writeInt32LE(unixSeconds32(r.mtimeMs), off + 5);
  off += EXTRA_TS_LEN;
  buf.writeUInt16LE(EXTRA_UNIX_UIDGID, off);
  buf.writeUInt16LE(11, off + 2);
  buf.writeUInt8(1, off + 4);
  buf.writeUInt8(4, off + 5);
  buf.writeUInt32LE(r.uid >>> 0, off + 6);
  buf.writeUInt8(4, off + 10);
  buf.writeUInt32LE(r.gid >>> 0, off + 11);
  return off + EXTRA_UX_LEN;
}

function localHeaderLength(r: CentralRecord, zip64: boolean): number {
  return 30 + r.name.length + EXTRA_TS_LEN + EXTRA_UX_LEN + (zip64 ? 20 : 0);
}

function localHeader(r: CentralRecord, zip64: boolean, into?: Buffer): Buffer {
  const extraLen = EXTRA_TS_LEN + EXTRA_UX_LEN + (zip64 ? 20 : 0);
  const buf = into ?? Buffer.allocUnsafe(30 + r.name.length + extraLen);
  buf.writeUInt32LE(SIG_LOCAL, 0);
  buf.writeUInt16LE(r.versionNeeded, 4);
  buf.writeUInt16LE(r.flags, 6);
  buf.writeUInt16LE(r.method, 8);
  buf.writeUInt16LE(r.time, 10);
  buf.writeUInt16LE(r.date, 12);
  const descriptor = (r.flags & FLAG_DESCRIPTOR) !== 0;
  buf.writeUInt32LE(descriptor ? 0 : r.crc, 14);
  buf.writeUInt32LE(zip64 ? MAX32 : descriptor ? 0 : r.csize, 18);
  buf.writeUInt32LE(zip64 ? MAX32 : descriptor ? 0 : r.usize, 22);
  buf.writeUInt16LE(r.name.length, 26);
  buf.writeUInt16LE(extraLen, 28);
  r.name.copy(buf, 30);
  let off = extraCommon(buf, 30 + r.name.length, r);
  if (zip64) {
    buf.writeUInt16LE(EXTRA_ZIP64, off);
    buf.writeUInt16LE(16, off + 2);
    writeU64(buf, descriptor ? 0 : r.usize, off + 4);
    writeU64(buf, descriptor ? 0 : r.csize, off + 12);
    off += 20;
  }
  return buf;
}

function zip64Fields(r: CentralRecord): number[] {
  const z64: number[] = [];
  if (r.usize >= MAX32) z64.push(r.usize);
  if (r.csize >= MAX32) z64.push(r.csize);
  if (r.offset >= MAX32) z64.push(r.offset);
  return z64;
}

function centralHeaderLength(r: CentralRecord): number {
  const n = zip64Fields(r).length;
  return 46 + r.name.length + EXTRA_TS_LEN + EXTRA_UX_LEN + (n > 0 ? 4 + 8 * n : 0);
}

function centralHeader(r: CentralRecord, into: Buffer): Buffer {
  const z64 = zip64Fields(r);
  const z64Len = z64.length > 0 ? 4 + 8 * z64.length : 0;
  const extraLen = EXTRA_TS_LEN + EXTRA_UX_LEN + z64Len;
  const buf = into;
  buf.writeUInt32LE(SIG_CENTRAL, 0);
  buf.writeUInt16LE(MADE_BY_UNIX, 4);
  buf.writeUInt16LE(z64.length > 0 ? Math.max(45, r.versionNeeded) : r.versionNeeded, 6);
  buf.writeUInt16LE(r.flags, 8);
  buf.writeUInt16LE(r.method, 10);
  buf.writeUInt16LE(r.time, 12);
  buf.writeUInt16LE(r.date, 14);
  buf.writeUInt32LE(r.crc, 16);
  buf.writeUInt32LE(Math.min(r.csize, MAX32), 20);
  buf.writeUInt32LE(Math.min(r.usize, MAX32), 24);
  buf.writeUInt16LE(r.name.length, 28);
  buf.writeUInt16LE(extraLen, 30);
  buf.writeUInt16LE(0, 32); // comment
  buf.writeUInt16LE(0, 34); // disk
  buf.writeUInt16LE(0, 36); // internal attributes
  buf.writeUInt32LE(r.externalAttr >>> 0, 38);
  buf.writeUInt32LE(Math.min(r.offset, MAX32), 42);
  r.name.copy(buf, 46);
  let off = extraCommon(buf, 46 + r.name.length, r);
  if (z64.length > 0) {
    buf.writeUInt16LE(EXTRA_ZIP64, off);
    buf.writeUInt16LE(8 * z64.length, off + 2);
    off += 4;
    for (const v of z64) {
      writeU64(buf, v, off);
      off += 8;
    }
  }
  return buf;
}

/**
 * The central directory, serialized as entries are written, into 1 MiB chunks: ~140 bytes per
 * entry of external memory instead of a record object and a name Buffer on the heap (which V8
 * kept scavenging and promoting: 38,000 entries were ~10 MB of heap).
 */
class CentralDirectory {
  private static readonly CHUNK = 1 << 20;
  private readonly chunks: Buffer[] = [];
  private used = CentralDirectory.CHUNK;
  count = 0;

  add(r: CentralRecord): void {
    const len = centralHeaderLength(r);
    if (this.used + len > CentralDirectory.CHUNK) {
      const n = this.chunks.length;
      if (n > 0) this.chunks[n - 1] = this.chunks[n - 1].subarray(0, this.used); // its unused tail
      this.chunks.push(Buffer.allocUnsafe(Math.max(CentralDirectory.CHUNK, len)));
      this.used = 0;
    }
    const last = this.chunks[this.chunks.length - 1];
    centralHeader(r, last.subarray(this.used, this.used + len));
    this.used += len;
    this.count++;
  }

  /** The serialized records, in order (the last chunk cut to what is used). */
  parts(): Buffer[] {
    return this.chunks.map((c, i) => (i === this.chunks.length - 1 ? c.subarray(0, this.used) : c));
  }
}

function endRecords(count: number, cdOffset: number, cdSize: number): Buffer {
  const zip64 = count >= MAX16 || cdOffset >= MAX32 || cdSize >= MAX32;
  const parts: Buffer[] = [];
  if (zip64) {
    const z = Buffer.alloc(56 + 20);
    z.writeUInt32LE(SIG_ZIP64_EOCD, 0);
    writeU64(z, 44, 4);
    z.writeUInt16LE(MADE_BY_UNIX, 12);
    z.writeUInt16LE(45, 14);
    z.writeUInt32LE(0, 16);
    z.writeUInt32LE(0, 20);
    writeU64(z, count, 24);
    writeU64(z, count, 32);
    writeU64(z, cdSize, 40);
    writeU64(z, cdOffset, 48);
    z.writeUInt32LE(SIG_ZIP64_LOCATOR, 56);
    z.writeUInt32LE(0, 60);
    writeU64(z, cdOffset + cdSize, 64);
    z.writeUInt32LE(1, 72);
    parts.push(z);
  }
  const e = Buffer.alloc(22);
  e.writeUInt32LE(SIG_EOCD, 0);
  e.writeUInt16LE(Math.min(count, MAX16), 8);
  e.writeUInt16LE(Math.min(count, MAX16), 10);
  e.writeUInt32LE(Math.min(cdSize, MAX32), 12);
  e.writeUInt32LE(Math.min(cdOffset, MAX32), 16);
  parts.push(e);
  return Buffer.concat(parts);
}

function isVanished(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export async function writeZip(entries: readonly SourceEntry[], out: Writable, opts: ZipWriteOptions): Promise<WriteResult> {
  const small = opts.smallFileLimit ?? BLOCK;
  const budget = new Budget(opts.maxInFlight ?? 64, opts.budgetBytes ?? 32 * BLOCK);
  const parallel = opts.parallelBlocks ?? 4;
  const zip64Threshold = opts.zip64Threshold ?? 0xf0000000;
  const warn = opts.onWarning ?? ((): void => {});
  const sink = new Sink(out);
  const central = new CentralDirectory();
  const isStreamed = (e: SourceEntry): boolean => e.type === 'file' && e.size > small;
  // deflate: small files go through long-lived deflate lanes (compress.ts) on the threadpool;
  // stored and zstd small files are done inline, synchronously.
  const isInline = (e: SourceEntry): boolean => e.type !== 'file' || e.size === 0 || (e.size <= SYNC_LIMIT && opts.method !== METHOD_DEFLATE);
  // deflate with the native addon: small files in batches (zip-batches.ts), large files' blocks
  // read and deflated on the threadpool (native-stream.ts); else node:zlib: deflate lanes and block workers
  const native = opts.method === METHOD_DEFLATE && opts.engine !== 'zlib' ? nativeDeflate() : null;
  if (opts.engine === 'native' && native === null) throw new Error('the native deflate addon is not built or is turned off (CACHEGATE_NATIVE_DEFLATE=0)');
  const batches = native ? new FileBatches(native, opts.method, opts.level) : null;
  const lanes = opts.method === METHOD_DEFLATE && !native ? new DeflateLanes(opts.level) : null;
  // large files: blocks compressed by worker threads (block-workers.ts), started with the first one
  let blockWorkers: BlockCompressor | null = null;
  const streamer = native ? new NativeFileStreamer(native, opts.level, BLOCK, parallel) : null;
  const compressor = (): BlockCompressor =>
    (blockWorkers ??= new BlockCompressor(opts.method, opts.level, Math.min(parallel, Math.max(2, os.availableParallelism())), BLOCK));
  // Reused 64 KiB read buffers for small files in flight (a fresh Buffer per file left ~100 MB of
  // garbage in the resident set on 20,000 files); at most maxInFlight are ever taken.
  const slots: Buffer[] = [];
  const slotOwner = new Map<number, Buffer>();
  const takeSlot = (i: number): Buffer => {
    const b = slots.pop() ?? Buffer.allocUnsafe(SYNC_LIMIT);
    slotOwner.set(i, b);
    return b;
  };
  const releaseSlot = (i: number): void => {
    const b = slotOwner.get(i);
    if (b) {
      slotOwner.delete(i);
      slots.push(b);
    }
  };
  const scratch = Buffer.allocUnsafe(SYNC_LIMIT);

  /** Tiny files, directories and symlinks: done synchronously, cheaper than a threadpool round trip. */
  const prepareSync = (e: SourceEntry): Prepared => {
    try {
      if (e.type === 'dir') return { data: Buffer.alloc(0), method: METHOD_STORE, crc: 0, usize: 0 };
      if (e.type === 'symlink') {
        const target = Buffer.from(fs.readlinkSync(e.absPath), 'utf8');
        return { data: target, method: METHOD_STORE, crc: zlib.crc32(target), usize: target.length };
      }
      // one reusable scratch buffer: the data is copied into the sink before the next file
      const raw = readSmallFileSync(e.absPath, e.size, scratch);
      const crc = zlib.crc32(raw);
      if (opts.method === METHOD_STORE || raw.length === 0) return { data: raw, method: METHOD_STORE, crc, usize: raw.length };
      const packed = compressWholeSync(opts.method, opts.level, raw);
      if (packed.length >= raw.length) return { data: raw, method: METHOD_STORE, crc, usize: raw.length };
      return { data: packed, method: opts.method, crc, usize: raw.length };
    } catch (err) {
      if (isVanished(err)) {
        warn(`${e.name}: file vanished while archiving, skipped`);
        return { data: null, method: METHOD_STORE, crc: 0, usize: 0 };
      }
      throw err;
    }
  };

  const prepare = async (e: SourceEntry, i: number): Promise<Prepared> => {
    try {
      if (e.type === 'dir') return { data: Buffer.alloc(0), method: METHOD_STORE, crc: 0, usize: 0 };
      if (e.type === 'symlink') {
        const target = Buffer.from(await fs.promises.readlink(e.absPath), 'utf8');
        return { data: target, method: METHOD_STORE, crc: zlib.crc32(target), usize: target.length };
      }
      const raw = e.size <= SYNC_LIMIT ? readSmallFileSync(e.absPath, e.size, takeSlot(i)) : await readSmallFile(e.absPath, e.size);
      const crc = zlib.crc32(raw);
      if (opts.method === METHOD_STORE || raw.length === 0) return { data: raw, method: METHOD_STORE, crc, usize: raw.length };
      const packed = lanes ? await lanes.compress(raw) : await compressWhole(opts.method, opts.level, raw);
      // Incompressible: store it (as zip -r does); the reader never needs to know.
      if (packed.length >= raw.length) return { data: raw, method: METHOD_STORE, crc, usize: raw.length };
      return { data: packed, method: opts.method, crc, usize: raw.length };
    } catch (err) {
      if (isVanished(err)) {
        warn(`${e.name}: file vanished while archiving, skipped`);
        return { data: null, method: METHOD_STORE, crc: 0, usize: 0 };
      }
      throw err;
    }
  };

  const readAhead = new ReadAhead(entries, budget, (i) => isStreamed(entries[i]) || isInline(entries[i]), (i) => prepare(entries[i], i));

  const record = (e: SourceEntry, method: number, flags: number, crc: number, csize: number, usize: number, offset: number): CentralRecord => {
    const { time, date } = toDosDateTime(e.mtimeMs);
    const mode = typeBits(e.type) | (e.mode & 0o7777);
    let versionNeeded = method === METHOD_DEFLATE ? 20 : method === METHOD_ZSTD ? 63 : 10;
    if (e.type === 'dir') versionNeeded = 20;
    return {
      name: Buffer.from(e.type === 'dir' ? `${e.name}/` : e.name, 'utf8'),
      flags: flags | FLAG_UTF8,
      method,
      versionNeeded,
      time,
      date,
      crc,
      csize,
      usize,
      offset,
      externalAttr: ((mode << 16) | (e.type === 'dir' ? 0x10 : 0)) >>> 0,
      mtimeMs: e.mtimeMs,
      uid: e.uid,
      gid: e.gid,
    };
  };

  /** Without the addon: blocks read here, compressed by worker threads (or stored), written in order. */
  const streamBlocks = async (fh: FileHandle, size: number, method: number): Promise<{ crc: number; usize: number }> => {
    let crc = 0;
    let usize = 0;
    // input blocks come from a small pool and go back once their output is in the sink
    const pool: Buffer[] = [];
    const inFlight: Array<Promise<CompressedBlock>> = [];
    let prev: Buffer | null = null;
    if (method !== METHOD_STORE) compressor().begin();
    const submit = (block: Buffer, last: boolean): void => {
      if (method === METHOD_STORE) {
        inFlight.push(Promise.resolve({ data: block, block, release: () => {} }));
        return;
      }
      const job = compressor().compress(block, last);
      job.catch(() => {}); // observed in writeOldest
      inFlight.push(job);
    };
    const writeOldest = async (): Promise<void> => {
      const done = await inFlight.shift()!;
      await sink.write(done.data);
      done.release();
      if (done.block.buffer.byteLength === BLOCK) pool.push(Buffer.from(done.block.buffer, 0, BLOCK));
    };
    const take = (): Buffer => pool.pop() ?? Buffer.allocUnsafe(BLOCK);
    for await (const block of readBlocks(fh, size, BLOCK, take)) {
      crc = zlib.crc32(block, crc);
      usize += block.length;
      if (prev) submit(prev, false);
      prev = block;
      while (inFlight.length >= parallel) await writeOldest();
    }
    submit(prev ?? Buffer.alloc(0), true);
    while (inFlight.length > 0) await writeOldest();
    return { crc, usize };
  };

  const writeStreamed = async (e: SourceEntry): Promise<void> => {
    let fh;
    try {
      fh = await openForRead(e.absPath);
    } catch (err) {
      if (isVanished(err)) {
        warn(`${e.name}: file vanished while archiving, skipped`);
        return;
      }
      throw err;
    }
    try {
      const zip64 = e.size >= zip64Threshold;
      const method = opts.method;
      const r = record(e, method, FLAG_DESCRIPTOR, 0, 0, 0, sink.offset);
      if (zip64) r.versionNeeded = Math.max(45, r.versionNeeded);
      await sink.write(localHeader(r, zip64));
      const dataStart = sink.offset;
      const { crc, usize } = streamer ? await streamer.write(fh.fd, e.size, sink) : await streamBlocks(fh, e.size, method);
      if (usize !== e.size) warn(`${e.name}: file size changed while archiving (${e.size} → ${usize} bytes)`);
      r.crc = crc;
      r.usize = usize;
      r.csize = sink.offset - dataStart;
      if ((r.usize >= MAX32 || r.csize >= MAX32) && !zip64) {
        throw new Error(`${e.name}: grew past 4 GiB while archiving`);
      }
      const dd = Buffer.allocUnsafe(zip64 ? 24 : 16);
      dd.writeUInt32LE(SIG_DESCRIPTOR, 0);
      dd.writeUInt32LE(crc, 4);
      if (zip64) {
        writeU64(dd, r.csize, 8);
        writeU64(dd, r.usize, 16);
      } else {
        dd.writeUInt32LE(r.csize, 8);
        dd.writeUInt32LE(r.usize, 12);
      }
      await sink.write(dd);
      central.add(r);
    } finally {
      await fh.close();
    }
  };

  /**
   * Writes an entry whose data is ready (copied into the sink: `prep.data` may be reused after);
   * a promise only when the sink must wait (no promise per entry on 38,000 small files).
   */
  const writePrepared = (e: SourceEntry, prep: Prepared): Promise<void> | undefined => {
    if (prep.data === null) return undefined;
    const data = prep.data;
    const r = record(e, prep.method, 0, prep.crc, data.length, prep.usize, sink.offset);
    const hlen = localHeaderLength(r, false);
    central.add(r);
    if (hlen + data.length > Sink.MAX_REGION) {
      return (async () => {
        await sink.write(localHeader(r, false));
        await sink.write(data);
      })();
    }
    const copy = (): void => {
      const region = sink.region(hlen + data.length);
      localHeader(r, false, region);
      data.copy(region, hlen);
    };
    const room = sink.reserve(hlen + data.length);
    if (room) return room.then(copy);
    copy();
    return undefined;
  };

  /** The native path's small entries: read and compressed by their batch's job, written when it is done. */
  const writeBatched = (j: number, p: Prepared): Promise<void> | undefined => {
    if (p.vanished) warn(`${entries[j].name}: file vanished while archiving, skipped`);
    return writePrepared(entries[j], p);
  };
  const addToBatch = (b: FileBatches, e: SourceEntry, i: number): Promise<void> | undefined => {
    if (e.type !== 'file' || e.size === 0) {
      b.addPrepared(i, prepareSync(e));
      return undefined;
    }
    if (!b.fits(e.size) && b.submit()) return b.writeOldest(writeBatched).then(() => b.addFile(i, e.absPath, e.size));
    b.addFile(i, e.absPath, e.size);
    return undefined;
  };
  const drainBatches = async (b: FileBatches): Promise<void> => {
    b.submit();
    while (b.pending > 0) await b.writeOldest(writeBatched);
  };

  try {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (batches) {
        if (isStreamed(e)) {
          await drainBatches(batches);
          await writeStreamed(e);
        } else {
          const w = addToBatch(batches, e, i);
          if (w) await w;
        }
        continue;
      }
      readAhead.fill(i);
      if (isStreamed(e)) {
        await writeStreamed(e);
        continue;
      }
      const prep = isInline(e) ? prepareSync(e) : await readAhead.take(i);
      const w = writePrepared(e, prep);
      if (w) await w;
      releaseSlot(i);
    }
    if (batches) await drainBatches(batches);
    const cdOffset = sink.offset;
    for (const part of central.parts()) await sink.write(part);
    const cdSize = sink.offset - cdOffset;
    await sink.write(endRecords(central.count, cdOffset, cdSize));
    await sink.end();
    return { entries: central.count, bytes: sink.offset };
  } catch (err) {
    readAhead.abandon();
    batches?.abandon();
    throw err;
  } finally {
    lanes?.close();
    await (blockWorkers as BlockCompressor | null)?.close();
  }
}
