/**
 * Zip reader: finds the central directory (zip64 aware), then reads entries in file order from
 * the local file. Supports stored, deflate and zstd (93), data descriptors, Info-ZIP and Python
 * zipfile archives; verifies sizes and CRC-32 of every entry.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { ArchiveEntryInfo } from './entry.ts';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './entry.ts';
import { FileSource } from './file-source.ts';
import { openInput, type GrowingFile } from './input.ts';
import { BLOCK, SYNC_LIMIT, SmallDecoder, decompressWhole, decompressWholeSync } from './compress.ts';
import { EntryWorkers } from './entry-workers.ts';
import { Budget, TaskGroup, Yielder } from './pool.ts';
import { CorruptArchiveError, PATH_MAX, SafeWriter, UnsafeEntryError, cleanEntryName, type EntrySink } from './safe-writer.ts';
import { checkLimits, extractLimits, type ExtractLimits } from './limits.ts';
import type { WriteBatchOptions } from './file-batches.ts';
import { nativeDeflate } from './native-deflate.ts';
import {
  EXTRA_TIMESTAMP, EXTRA_ZIP64, FLAG_ENCRYPTED, HOST_UNIX, MAX16, MAX32, SIG_CENTRAL, SIG_EOCD, SIG_LOCAL,
  SIG_ZIP64_EOCD, SIG_ZIP64_LOCATOR, fromDosDateTime, readU64,
} from './zip-format.ts';

export interface ZipEntry extends ArchiveEntryInfo {
  method: number;
  flags: number;
  crc: number;
  csize: number;
  localOffset: number;
}

export interface ExtractOptions {
  onWarning?: (message: string) => void;
  /** Entries decompressed/written at once (default 32). */
  maxInFlight?: number;
  /** Bytes (compressed + uncompressed) of small entries in flight (default 32 MiB). */
  budgetBytes?: number;
  /** Entries up to this size are handled whole in memory (default 1 MiB). */
  smallEntryLimit?: number;
  /** The archive is still being written (verification during a download): reads wait for their bytes. */
  growing?: GrowingFile;
  /**
   * Total bytes and entries that may be extracted (limits.ts). extractArchive applies the defaults
   * when this is not given; verification (nothing written) has none.
   */
  limits?: Partial<ExtractLimits>;
  /** Small files written in the background (safe-writer.ts, file-batches.ts); `{ inFlight: 0 }` turns it off. */
  writeBatches?: WriteBatchOptions;
  /** Restore archived owners (safe-writer.ts, owners.ts); default CACHE_RESTORE_OWNERS, else true. */
  restoreOwners?: boolean;
  /** Large zip entries decoded at once (default 2; 2 MiB each, and an isolate each when decoded by worker threads). */
  largeEntryWorkers?: number;
}

export interface ExtractResult {
  entries: number;
  bytes: number;
}

function corrupt(msg: string): CorruptArchiveError {
  return new CorruptArchiveError(`zip archive is corrupt: ${msg}`);
}

async function findEnd(src: FileSource): Promise<{ count: number; cdOffset: number; cdSize: number }> {
  if (src.size < 22) throw corrupt('too short to be a zip archive (no end of central directory)');
  // The end record is in the last 22 bytes unless the archive has a comment (up to 64 KiB): look in a
  // short tail first (a file still downloading may not have the bytes before it yet).
  let tail: Buffer = Buffer.alloc(0);
  let eocd = -1;
  for (const tailLen of [Math.min(src.size, 4096), Math.min(src.size, 22 + MAX16 + 20)]) {
    if (tailLen <= tail.length) break;
    tail = await src.read(src.size - tailLen, tailLen);
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) {
        eocd = i;
        break;
      }
    }
    if (eocd >= 0) break;
  }
  if (eocd < 0) throw corrupt('end of central directory not found (truncated or not a zip archive)');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === SIG_ZIP64_LOCATOR) {
    const z64Offset = readU64(tail, eocd - 20 + 8);
    const z = await src.read(z64Offset, 56);
    if (z.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw corrupt('zip64 end of central directory record not found');
    count = readU64(z, 32);
    cdSize = readU64(z, 40);
    cdOffset = readU64(z, 48);
  } else if (count === MAX16 || cdSize === MAX32 || cdOffset === MAX32) {
    throw corrupt('zip64 end of central directory locator missing');
  }
  if (cdOffset + cdSize > src.size) throw corrupt('central directory lies beyond the end of the file (truncated?)');
  return { count, cdOffset, cdSize };
}

function entryFromCentral(buf: Buffer, off: number): { entry: ZipEntry; next: number } {
  if (buf.readUInt32LE(off) !== SIG_CENTRAL) throw corrupt('bad central directory entry signature');
  const madeBy = buf.readUInt16LE(off + 4);
  const flags = buf.readUInt16LE(off + 8);
  const method = buf.readUInt16LE(off + 10);
  const time = buf.readUInt16LE(off + 12);
  const date = buf.readUInt16LE(off + 14);
  const crc = buf.readUInt32LE(off + 16);
  let csize = buf.readUInt32LE(off + 20);
  let usize = buf.readUInt32LE(off + 24);
  const nameLen = buf.readUInt16LE(off + 28);
  const extraLen = buf.readUInt16LE(off + 30);
  const commentLen = buf.readUInt16LE(off + 32);
  const external = buf.readUInt32LE(off + 38);
  let localOffset = buf.readUInt32LE(off + 42);
  const nameStart = off + 46;
  const extraStart = nameStart + nameLen;
  const next = extraStart + extraLen + commentLen;
  if (next > buf.length) throw corrupt('central directory entry overruns the directory');
  const name = buf.toString('utf8', nameStart, extraStart);
  let mtimeMs = fromDosDateTime(time, date);
  let uid: number | undefined;
  let gid: number | undefined;
  for (let p = extraStart; p + 4 <= extraStart + extraLen; ) {
    const id = buf.readUInt16LE(p);
    const len = buf.readUInt16LE(p + 2);
    const d = p + 4;
    if (d + len > extraStart + extraLen) break;
    if (id === EXTRA_ZIP64) {
      let q = d;
      if (usize === MAX32 && q + 8 <= d + len) {
        usize = readU64(buf, q);
        q += 8;
      }
      if (csize === MAX32 && q + 8 <= d + len) {
        csize = readU64(buf, q);
        q += 8;
      }
      if (localOffset === MAX32 && q + 8 <= d + len) {
        localOffset = readU64(buf, q);
        q += 8;
      }
    } else if (id === EXTRA_TIMESTAMP && len >= 5 && (buf[d] & 1) !== 0) {
      mtimeMs = buf.readInt32LE(d + 1) * 1000;
    } else if (id === 0x7875 && len >= 3 && buf[d] === 1) {
      const us = buf[d + 1];
      if (us === 4 && len >= 2 + 4 + 1 + 4) {
        uid = buf.readUInt32LE(d + 2);
        if (buf[d + 6] === 4) gid = buf.readUInt32LE(d + 7);
      }
    }
    p = d + len;
  }
  if (usize === MAX32 || csize === MAX32 || localOffset === MAX32) throw corrupt(`${name}: zip64 extra field missing`);
  const unixMode = (madeBy >> 8) === HOST_UNIX ? external >>> 16 : 0;
  let type: ZipEntry['type'];
  let mode: number;
  const fmt = unixMode & S_IFMT;
  if (fmt === S_IFLNK) type = 'symlink';
  else if (fmt === S_IFDIR || name.endsWith('/') || (fmt === 0 && (external & 0x10) !== 0)) type = 'dir';
  else if (fmt === S_IFREG || fmt === 0) type = 'file';
  else type = 'file';
  if (unixMode !== 0) mode = unixMode & 0o7777;
  else mode = type === 'dir' ? 0o755 : 0o644;
  if (fmt !== 0 && fmt !== S_IFLNK && fmt !== S_IFDIR && fmt !== S_IFREG) {
    // device, fifo, socket: not something a cache restores
    return { entry: { name, type: 'file', mode: -1, mtimeMs, size: usize, method, flags, crc, csize, localOffset, uid, gid }, next };
  }
  return { entry: { name, type, mode, mtimeMs, size: usize, method, flags, crc, csize, localOffset, uid, gid }, next };
}

/** Reads the central directory: every entry, in central-directory order. */
export async function readZipDirectory(src: FileSource, limits?: Partial<ExtractLimits>): Promise<ZipEntry[]> {
  const { count, cdOffset, cdSize } = await findEnd(src);
  checkLimits(limits, 0, count); // before the directory is read into memory
  const entries: ZipEntry[] = [];
  // Parse the directory in windows so that a huge directory does not need one huge buffer.
  let pos = cdOffset;
  const end = cdOffset + cdSize;
  let buf = Buffer.alloc(0);
  let bufOff = 0;
  while (entries.length < count) {
    if (buf.length - bufOff < 46 || buf.length - bufOff < 46 + buf.readUInt16LE(bufOff + 28) + buf.readUInt16LE(bufOff + 30) + buf.readUInt16LE(bufOff + 32)) {
      if (pos >= end) throw corrupt(`central directory ends after ${entries.length} of ${count} entries`);
      const n = Math.min(BLOCK, end - pos);
      const more = await src.read(pos, n);
      pos += n;
      buf = Buffer.concat([buf.subarray(bufOff), more]);
      bufOff = 0;
      continue;
    }
    const { entry, next } = entryFromCentral(buf, bufOff);
    entries.push(entry);
    bufOff = next;
  }
  return entries;
}

export async function listZip(file: string): Promise<ZipEntry[]> {
  const fh = await fs.promises.open(file, 'r');
  try {
    return await readZipDirectory(new FileSource(fh, (await fh.stat()).size));
  } finally {
    await fh.close();
  }
}

async function dataOffset(src: FileSource, e: ZipEntry): Promise<number> {
  const h = await src.read(e.localOffset, 30);
  if (h.readUInt32LE(0) !== SIG_LOCAL) throw corrupt(`${e.name}: local header not found`);
  const nameLen = h.readUInt16LE(26);
  const extraLen = h.readUInt16LE(28);
  // The central directory has no checksum: a name that differs from the local header's is damage.
  const local = await src.read(e.localOffset + 30, nameLen);
  if (local.toString('utf8') !== e.name) throw corrupt(`${e.name}: the local header names ${JSON.stringify(local.toString('utf8'))}`);
  const start = e.localOffset + 30 + nameLen + extraLen;
  if (start + e.csize > src.size) throw corrupt(`${e.name}: data runs past the end of the file (truncated?)`);
  return start;
}

function checkMethod(e: ZipEntry): void {
  if ((e.flags & FLAG_ENCRYPTED) !== 0) throw new CorruptArchiveError(`${e.name}: encrypted entries are not supported`);
  if (e.method !== 0 && e.method !== 8 && e.method !== 93) throw new CorruptArchiveError(`${e.name}: unsupported compression method ${e.method}`);
}

/** The entry's compressed bytes; copied unless `inPlace` (then valid only until the next reads). */
async function entryData(src: FileSource, e: ZipEntry, inPlace = false): Promise<Buffer> {
  const start = await dataOffset(src, e);
  const raw = await src.read(start, e.csize);
  return inPlace ? raw : Buffer.from(raw);
}

async function decodeSmall(e: ZipEntry, packed: Buffer): Promise<Buffer> {
  let data: Buffer;
  try {
    data = e.csize <= SYNC_LIMIT && e.size <= SYNC_LIMIT ? decompressWholeSync(e.method, packed, e.size) : await decompressWhole(e.method, packed, e.size);
  } catch (err) {
    throw corrupt(`${e.name}: cannot decompress (${(err as Error).message})`);
  }
  return verified(e, data);
}

function verified(e: ZipEntry, data: Buffer): Buffer {
  return checkedData(e.name, data, e.size, e.crc);
}

/** `data` when it has the central directory's size and CRC-32; CorruptArchiveError otherwise. */
export function checkedData(name: string, data: Buffer, size: number, crc: number): Buffer {
  if (data.length !== size) throw corrupt(`${name}: size mismatch (${data.length} bytes, expected ${size})`);
  if (zlib.crc32(data) !== crc) throw corrupt(`${name}: CRC-32 mismatch`);
  return data;
}

/** An entry's data decoded by `decoder` and checked against its size and CRC-32. */
export function decodeChecked(decoder: SmallDecoder, name: string, method: number, packed: Buffer, size: number, crc: number): Buffer {
  let data: Buffer;
  try {
    data = decoder.decode(method, packed, size);
  } catch (err) {
    throw corrupt(`${name}: cannot decompress (${(err as Error).message})`);
  }
  return checkedData(name, data, size, crc);
}

/** Extracts a zip archive from a local file into `dir` (see safe-writer.ts for the guarantees). */
export function extractZip(file: string, dir: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  return readZip(file, (symlinks) => SafeWriter.create(dir, symlinks, { writeBatches: opts.writeBatches, restoreOwners: opts.restoreOwners }), { ...opts, limits: extractLimits(opts.limits) });
}

/**
 * Decodes every entry of a zip file, verifying sizes and CRC-32 against the central directory, and
 * hands them to the sink that `openSink` returns (given the archive's symlink names).
 */
export async function readZip(file: string, openSink: (symlinks: string[]) => Promise<EntrySink>, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const warn = opts.onWarning ?? ((): void => {});
  const small = opts.smallEntryLimit ?? BLOCK;
  const { handle: fh, size } = await openInput(file, opts.growing);
  let closeLater: Promise<unknown> | undefined;
  let workers: EntryWorkers | undefined;
  let safe: EntrySink | undefined;
  try {
    // A file still arriving is read in smaller windows, so that a read waits only for the bytes near it.
    const window = opts.growing ? 128 * 1024 : undefined;
    const src = new FileSource(fh, size, { reuse: true, window, sync: !opts.growing });
    const limits = opts.limits;
    const entries = await readZipDirectory(src, limits);
    // Every entry's data is verified to have its declared size, so the declared total is the truth:
    // an archive over the limits is refused before anything is written.
    checkLimits(limits, entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0), entries.length);
    // Validate every name before writing anything.
    const rels = new Map<ZipEntry, string>();
    for (const e of entries) rels.set(e, cleanEntryName(e.name));
    safe = await openSink(entries.filter((e) => e.type === 'symlink').map((e) => rels.get(e)!));
    const sink = safe;
    for (const e of entries) sink.check(e.name);
    const ordered = [...entries].sort((a, b) => a.localOffset - b.localOffset);
    const budget = new Budget(opts.maxInFlight ?? 32, opts.budgetBytes ?? 32 * BLOCK);
    const decoder = new SmallDecoder();
    // Large entries: decoded two at a time (`largeEntryWorkers`) by the native addon's inflateFile on
    // the threadpool, or by worker threads (entry-workers.ts; started only when needed: zstd
    // entries, or no addon; each holds an isolate); the file is opened only when a slot is free, so
    // that a thousand large entries do not hold a thousand fds.
    const native = nativeDeflate();
    const inflateFile = native?.inflateFile?.bind(native);
    const largeWorkers = Math.max(1, opts.largeEntryWorkers ?? 2);
    workers = new EntryWorkers(largeWorkers);
    const pool = workers;
    const largeSlots = new Budget(largeWorkers, Number.MAX_SAFE_INTEGER);
    const largeEntry = async (e: ZipEntry, rel: string, start: number): Promise<void> => {
      await opts.growing?.ready(start, start + e.csize);
      await largeSlots.acquire(0);
      try {
        if (tasks.error !== null) return;
        await sink.streamFile(rel, e.mode, e.mtimeMs, async (_write, fd) => {
          let r: { crc: number; size: number };
          try {
            if (inflateFile && (e.method === 0 || e.method === 8)) {
              const [crc, n] = await inflateFile(fh.fd, start, e.csize, e.method, e.size, fd ?? -1);
              r = { crc, size: n };
            } else r = await pool.run({ archiveFd: fh.fd, start, csize: e.csize, method: e.method, size: e.size, outFd: fd ?? -1 });
          } catch (err) {
            throw corrupt(`${e.name}: cannot decompress (${(err as Error).message})`);
          }
          if (r.size !== e.size) throw corrupt(`${e.name}: size mismatch (${r.size} bytes, expected ${e.size})`);
          if (r.crc !== e.crc) throw corrupt(`${e.name}: CRC-32 mismatch`);
        }, e);
      } finally {
        largeSlots.release(0);
      }
    };
    const tasks = new TaskGroup();
    let bytes = 0;
    const yielder = new Yielder();
    const run = async (list: readonly ZipEntry[], src: FileSource): Promise<void> => {
      for (const e of list) {
        const turn = yielder.due();
        if (turn) await turn;
        tasks.throwIfFailed();
        const rel = rels.get(e)!;
        if (e.mode === -1) {
          warn(`${e.name}: special file (device, fifo or socket) skipped`);
          continue;
        }
        const wait = e.type === 'symlink' ? null : sink.ready?.(rel);
        if (wait) await wait;
        if (e.type === 'dir') {
          sink.dir(rel, e.mode, e.mtimeMs, e);
          continue;
        }
        checkMethod(e);
        if (e.type === 'symlink') {
          // A target is a path: refused by its declared sizes before anything is read or decoded
          // (issue 14, item 2); decoding is bounded by the declared size + 1 (a lying size fails).
          if (e.size > PATH_MAX || e.csize > PATH_MAX + 1024) throw new UnsafeEntryError(e.name, `symlink target longer than ${PATH_MAX} bytes (declared ${e.size} bytes, ${e.csize} compressed)`);
          const target = await decodeSmall(e, await entryData(src, e));
          sink.symlink(e.name, rel, target.toString('utf8'), e.mtimeMs, e);
          continue;
        }
        bytes += e.size;
        if (sink.writePacked && e.size <= small && e.csize <= small) {
          // used synchronously: writePacked copies it
          if (sink.writePacked(e.name, rel, e.mode, e.mtimeMs, e.method, await entryData(src, e, true), e.size, e.crc, e)) continue;
        }
        if (e.size <= SYNC_LIMIT && e.csize <= SYNC_LIMIT) {
          const packed = await entryData(src, e, true); // used synchronously below
          // a view of the decoder's buffer, written at once
          sink.writeFileSync(rel, e.mode, e.mtimeMs, decodeChecked(decoder, e.name, e.method, packed, e.size, e.crc), e);
          continue;
        }
        if (e.size <= small && e.csize <= small) {
          const cost = e.size + e.csize;
          await budget.acquire(cost);
          let packed: Buffer;
          try {
            packed = await entryData(src, e);
          } catch (err) {
            budget.release(cost);
            throw err;
          }
          tasks.add(
            (async () => {
              try {
                sink.writeFileSync(rel, e.mode, e.mtimeMs, await decodeSmall(e, packed), e);
              } finally {
                budget.release(cost);
              }
            })(),
          );
          continue;
        }
        tasks.add(largeEntry(e, rel, await dataOffset(src, e)));
      }
    };
    // A local file: one loop in file order. A file still arriving in parts (verification during a
    // ranged download): one loop per part, each following its part's bytes as they come.
    const groups = segment(ordered, opts.growing?.starts);
    const loops = groups.map((list, i) => run(list, i === 0 ? src : new FileSource(fh, size, { reuse: true, window })));
    try {
      await Promise.all(loops);
    } catch (err) {
      tasks.error ??= err;
      if (groups.length > 1) {
        // The other loops may wait for bytes that only come if this failure is reported first.
        closeLater = Promise.allSettled([...loops, tasks.settle()]);
        throw err;
      }
      await tasks.settle();
      throw err;
    }
    await tasks.wait();
    await sink.finish();
    return { entries: entries.length, bytes };
  } finally {
    if (closeLater) void closeLater.then(() => Promise.all([workers?.close(), fh.close()])).finally(() => safe?.close());
    else {
      await Promise.all([safe?.close(), workers?.close(), fh.close()]);
    }
  }
}

/** Entries (sorted by offset) grouped by the part of the file (`starts`, ascending) they begin in. */
function segment(ordered: readonly ZipEntry[], starts: readonly number[] | undefined): ZipEntry[][] {
  if (!starts || starts.length < 2) return [[...ordered]];
  const groups: ZipEntry[][] = starts.map(() => []);
  let g = 0;
  for (const e of ordered) {
    while (g + 1 < starts.length && e.localOffset >= starts[g + 1]) g++;
    groups[g].push(e);
  }
  return groups.filter((list) => list.length > 0);
}
