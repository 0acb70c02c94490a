/**
 * Zip reader: finds the central directory (zip64 aware), then reads entries in file order from
 * the local file. Supports stored, deflate and zstd (93), data descriptors, Info-ZIP and Python
 * zipfile archives; verifies sizes and CRC-32 of every entry.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { FileSource } from './file-source.ts';
import { openInput, type GrowingFile } from './input.ts';
import { BLOCK, SYNC_LIMIT, SmallDecoder, decompressWhole, decompressWholeSync } from './compress.ts';
import { EntryWorkers } from './entry-workers.ts';
import { Budget, TaskGroup, Yielder } from './pool.ts';
import { PATH_MAX, SafeWriter, UnsafeEntryError, cleanEntryName, type EntrySink } from './safe-writer.ts';
import { checkLimits, extractLimits, type ExtractLimits } from './limits.ts';
import type { WriteBatchOptions } from './file-batches.ts';
import { nativeDeflate } from './native-deflate.ts';
import { FLAG_ENCRYPTED, SIG_LOCAL } from './zip-format.ts';
import { CorruptArchiveError } from './errors.ts';
import { corrupt, readCentralDirectory, readZipDirectory, type CentralDirectory, type ZipEntry } from './zip-directory.ts';

export { readZipDirectory, type ZipEntry };

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
  return readZip(file, (symlinks) => SafeWriter.create(dir, symlinks, { writeBatches: opts.writeBatches, restoreOwners: opts.restoreOwners, hardLinks: false }), { ...opts, limits: extractLimits(opts.limits) });
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
    const cd = await readCentralDirectory(src, limits);
    // Every entry's data is verified to have its declared size, so the declared total is the truth:
    // an archive over the limits is refused before anything is written.
    checkLimits(limits, cd.fileBytes, cd.count);
    // Validate every name before writing anything (the paths are made again as each entry comes).
    for (let i = 0; i < cd.count; i++) cleanEntryName(cd.name(i));
    safe = await openSink(cd.symlinks.map((i) => cleanEntryName(cd.name(i))));
    const sink = safe;
    for (let i = 0; i < cd.count; i++) sink.check(cd.name(i));
    const ordered = cd.fileOrder();
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
    // A file still arriving (verification during a download): deflate and stored entries longer
    // than the read window go to the addon, which reads them from the file itself. Read whole, they
    // grew each part's two reused windows to the largest entry it met (≤ 1 MiB; the npm tree's zip
    // in 12 parts: ~25 MB of ArrayBuffers held for the whole download).
    const nativeSmall = opts.smallEntryLimit ?? (opts.growing && inflateFile && window ? window : small);
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
    const run = async (list: Uint32Array, src: FileSource): Promise<void> => {
      for (const i of list) {
        const turn = yielder.due();
        if (turn) await turn;
        tasks.throwIfFailed();
        const e = cd.entry(i);
        const rel = cleanEntryName(e.name);
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
        const limit = e.method === 93 ? small : nativeSmall;
        if (e.size > limit || e.csize > limit) {
          tasks.add(largeEntry(e, rel, await dataOffset(src, e)));
          continue;
        }
        if (sink.writePacked) {
          // used synchronously: writePacked copies it
          if (sink.writePacked(e.name, rel, e.mode, e.mtimeMs, e.method, await entryData(src, e, true), e.size, e.crc, e)) continue;
        }
        if (e.size <= SYNC_LIMIT && e.csize <= SYNC_LIMIT) {
          const packed = await entryData(src, e, true); // used synchronously below
          // a view of the decoder's buffer, written at once
          sink.writeFileSync(rel, e.mode, e.mtimeMs, decodeChecked(decoder, e.name, e.method, packed, e.size, e.crc), e);
          continue;
        }
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
      }
    };
    // A local file: one loop in file order. A file still arriving in parts (verification during a
    // ranged download): one loop per part, each following its part's bytes as they come.
    const groups = segment(cd, ordered, opts.growing?.starts);
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
    return { entries: cd.count, bytes };
  } finally {
    if (closeLater) void closeLater.then(() => Promise.all([workers?.close(), fh.close()])).finally(() => safe?.close());
    else {
      await Promise.all([safe?.close(), workers?.close(), fh.close()]);
    }
  }
}

/** Entry indexes (in file order) cut where the parts of the file (`starts`, ascending) begin. */
function segment(cd: CentralDirectory, ordered: Uint32Array, starts: readonly number[] | undefined): Uint32Array[] {
  if (!starts || starts.length < 2) return [ordered];
  const groups: Uint32Array[] = [];
  let from = 0;
  for (let g = 1; g <= starts.length; g++) {
    let to = from;
    while (to < ordered.length && (g === starts.length || cd.localOffset(ordered[to]) < starts[g])) to++;
    if (to > from) groups.push(ordered.subarray(from, to));
    from = to;
  }
  return groups;
}
