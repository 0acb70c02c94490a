/**
 * The zip central directory, found (zip64 aware) and kept compact: its raw bytes, off the V8 heap,
 * and per entry only where its record starts and where its data lies. An entry is parsed again
 * from the raw bytes when the reader comes to it, so its object and name string die young.
 * Why: a ZipEntry object per entry, its name, its cleaned path and the map between them held
 * ~15 MB of heap for the 42,666 entries of a node_modules copy, twice in a row when a download is
 * verified and then extracted (docs/archive.md "Session 8: memory"); the raw records are ~110
 * bytes per entry, the index 20.
 */
import type { ArchiveEntryInfo } from './entry.ts';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './entry.ts';
import type { FileSource } from './file-source.ts';
import { BLOCK } from './compress.ts';
import { CorruptArchiveError } from './errors.ts';
import { checkLimits, type ExtractLimits } from './limits.ts';
import {
  EXTRA_TIMESTAMP, EXTRA_ZIP64, HOST_UNIX, MAX16, MAX32, SIG_CENTRAL, SIG_EOCD, SIG_ZIP64_EOCD, SIG_ZIP64_LOCATOR,
  fromDosDateTime, readU64,
} from './zip-format.ts';

export interface ZipEntry extends ArchiveEntryInfo {
  method: number;
  flags: number;
  crc: number;
  csize: number;
  localOffset: number;
}

/** The smallest central directory record (no name, extra field or comment). */
const RECORD = 46;

export function corrupt(msg: string): CorruptArchiveError {
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

/** The central directory as raw records and a compact index, in central-directory order. */
export class CentralDirectory {
  readonly count: number;
  private readonly records: Buffer;
  /** Where each entry's record starts in `records`. */
  private readonly starts: Float64Array;
  /** Each entry's local header offset (for reading in file order). */
  private readonly offsets: Float64Array;
  /** Sum of the declared sizes of the file entries. */
  readonly fileBytes: number;
  /** The indexes of the symlink entries. */
  readonly symlinks: readonly number[];

  constructor(records: Buffer, starts: Float64Array, offsets: Float64Array, fileBytes: number, symlinks: readonly number[]) {
    this.records = records;
    this.starts = starts;
    this.offsets = offsets;
    this.count = starts.length;
    this.fileBytes = fileBytes;
    this.symlinks = symlinks;
  }

  /** Entry `i`, parsed anew (a short-lived object). */
  entry(i: number): ZipEntry {
    return entryFromCentral(this.records, this.starts[i]).entry;
  }

  /** Entry `i`'s name. */
  name(i: number): string {
    const off = this.starts[i];
    return this.records.toString('utf8', off + RECORD, off + RECORD + this.records.readUInt16LE(off + 28));
  }

  localOffset(i: number): number {
    return this.offsets[i];
  }

  /** Entry indexes in the order of their data in the file (archives are usually written that way already). */
  fileOrder(): Uint32Array {
    const order = new Uint32Array(this.count);
    let sorted = true;
    for (let i = 0; i < order.length; i++) {
      order[i] = i;
      if (i > 0 && this.offsets[i] < this.offsets[i - 1]) sorted = false;
    }
    if (!sorted) order.sort((a, b) => this.offsets[a] - this.offsets[b] || a - b);
    return order;
  }
}

/** Reads and checks the central directory (every record parsed once; `limits`: its entry count before it is read). */
export async function readCentralDirectory(src: FileSource, limits?: Partial<ExtractLimits>): Promise<CentralDirectory> {
  const { count, cdOffset, cdSize } = await findEnd(src);
  checkLimits(limits, 0, count); // before the directory is read into memory
  // every record takes at least 46 bytes: a count the directory cannot hold is damage, not an allocation
  if (count * RECORD > cdSize) throw corrupt(`central directory ends after ${Math.floor(cdSize / RECORD)} of ${count} entries`);
  const records = Buffer.allocUnsafe(cdSize);
  for (let pos = 0; pos < cdSize; ) {
    const n = Math.min(BLOCK, cdSize - pos);
    (await src.read(cdOffset + pos, n)).copy(records, pos);
    pos += n;
  }
  const starts = new Float64Array(count);
  const offsets = new Float64Array(count);
  let fileBytes = 0;
  const symlinks: number[] = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + RECORD > cdSize) throw corrupt(`central directory ends after ${i} of ${count} entries`);
    const { entry, next } = entryFromCentral(records, off);
    starts[i] = off;
    offsets[i] = entry.localOffset;
    if (entry.type === 'file') fileBytes += entry.size;
    else if (entry.type === 'symlink') symlinks.push(i);
    off = next;
  }
  return new CentralDirectory(records, starts, offsets, fileBytes, symlinks);
}

/** Reads the central directory: every entry, in central-directory order. */
export async function readZipDirectory(src: FileSource, limits?: Partial<ExtractLimits>): Promise<ZipEntry[]> {
  const cd = await readCentralDirectory(src, limits);
  return Array.from({ length: cd.count }, (_, i) => cd.entry(i));
}
