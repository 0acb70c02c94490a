/**
 * Streaming tar writer (POSIX ustar, with PAX extended headers for what ustar cannot hold: names or
 * link targets over 100 bytes, sizes from 8 GiB, ids over 2,097,151, times before 1970 or after 2242).
 * GNU tar, bsdtar and Python's tarfile read it. Files up to INLINE_LIMIT are read ahead on the
 * threadpool (tar-read-ahead.ts, with the native addon) or synchronously, then copied into the
 * Sink's batch after their header; larger ones are streamed into it: no buffer is allocated per
 * file. A later name of a hard-linked file is a link entry naming the first (hard-links.ts).
 *
 * Read-ahead without garbage: files of 64 KiB–1 MiB used to be read ahead on the threadpool
 * (≤ 64 files, ≤ 32 MiB) into a fresh buffer each, concatenated with their header: that garbage held
 * up to ~100 MB of external memory in the helper before V8 collected it (tar.zst of a copy of
 * node_modules: peak RSS 236 → 170 MB without it). Since session 8 the native addon reads them
 * into a few reused 1 MiB arenas instead (tar-read-ahead.ts); without it they are read here.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import type { SourceEntry } from './entry.ts';
import { Sink } from './sink.ts';
import { openForRead } from './fsread.ts';
import type { WriteResult } from './zip-writer.ts';
import { HardLinks } from './hard-links.ts';
import { nativeDeflate } from './native-deflate.ts';
import { TarReadAhead } from './tar-read-ahead.ts';

export interface TarWriteOptions {
  /** false: every name of a hard-linked file carries its bytes (for readers that restore type `1` badly). */
  hardLinks?: boolean;
  onWarning?: (message: string) => void;
  /** Small files read ahead on the threadpool (tar-read-ahead.ts); default: when the native addon is there. */
  readAhead?: boolean;
}

const ZEROS = Buffer.alloc(1024);
/** Largest file written inline: its header and data must fit one Sink region (≤ 1 MiB). */
const INLINE_LIMIT = Sink.MAX_REGION / 2;
/** A streamed file's read goes into the batch's rest when at least this much is left. */
const MIN_PIECE = 64 * 1024;
const MAX_OCTAL_11 = 0o77777777777;
const MAX_OCTAL_7 = 0o7777777;

/**
 * `value` as len − 1 octal digits and a NUL, written digit by digit: the string a
 * `toString(8).padStart()` made per field (seven per header) was a share of the main thread's time
 * and garbage on trees of many small files. Callers keep values within len − 1 digits.
 */
function octal(buf: Buffer, off: number, len: number, value: number): void {
  let v = value;
  for (let i = off + len - 2; i >= off; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  buf[off + len - 1] = 0;
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen > len) len++;
  return Buffer.from(`${len}${body}`, 'utf8');
}

function rawHeader(name: Buffer | string, type: string, size: number, mode: number, uid: number, gid: number, mtime: number, link: Buffer | string, into?: Buffer): Buffer {
  const h = into ?? Buffer.alloc(512);
  if (into) h.fill(0, 0, 512);
  if (typeof name === 'string') h.write(name, 0, 100, 'utf8');
  else name.copy(h, 0, 0, Math.min(100, name.length));
  octal(h, 100, 8, mode & 0o7777);
  octal(h, 108, 8, uid <= MAX_OCTAL_7 && uid >= 0 ? uid : 0);
  octal(h, 116, 8, gid <= MAX_OCTAL_7 && gid >= 0 ? gid : 0);
  if (size <= MAX_OCTAL_11) octal(h, 124, 12, size);
  else {
    // GNU base-256 (readers that know PAX use the PAX size anyway)
    h[124] = 0x80;
    let v = size;
    for (let i = 135; i > 124; i--) {
      h[i] = v % 256;
      v = Math.floor(v / 256);
    }
  }
  octal(h, 136, 12, Math.max(0, Math.min(MAX_OCTAL_11, mtime)));
  h.write('        ', 148, 8, 'ascii');
  h.write(type, 156, 1, 'ascii');
  if (typeof link === 'string') h.write(link, 157, 100, 'utf8');
  else link.copy(h, 157, 0, Math.min(100, link.length));
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  octal(h, 329, 8, 0);
  octal(h, 337, 8, 0);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** True when the entry fits a plain 512-byte ustar header (no PAX header needed). */
function fitsUstar(name: string, size: number, uid: number, gid: number, mtimeMs: number, linkName: string): boolean {
  const mtime = Math.floor(mtimeMs / 1000);
  return Buffer.byteLength(name) <= 100 && Buffer.byteLength(linkName) <= 100 && size <= MAX_OCTAL_11 && uid >= 0 && uid <= MAX_OCTAL_7 && gid >= 0 && gid <= MAX_OCTAL_7 && mtime >= 0 && mtime <= MAX_OCTAL_11;
}

/**
 * Writes the header block(s) of an entry into the sink without allocating in the common case
 * (per-entry Buffers from the 8 KiB pool showed up as tens of MB of resident set on 20,000 files).
 */
async function writeHeader(sink: Sink, name: string, type: '0' | '5' | '2' | '1', size: number, mode: number, uid: number, gid: number, mtimeMs: number, linkName = '', extra = 0): Promise<Buffer> {
  if (fitsUstar(name, size, uid, gid, mtimeMs, linkName)) {
    await sink.reserve(512 + extra);
    const region = sink.region(512 + extra);
    rawHeader(name, type, size, mode, uid, gid, Math.floor(mtimeMs / 1000), linkName, region);
    return region.subarray(512);
  }
  const h = tarHeader(name, type, size, mode, uid, gid, mtimeMs, linkName);
  await sink.reserve(h.length + extra);
  const region = sink.region(h.length + extra);
  h.copy(region, 0);
  return region.subarray(h.length);
}

/** Header block(s) for one entry: an optional PAX header plus the ustar header. */
export function tarHeader(name: string, type: '0' | '5' | '2' | '1', size: number, mode: number, uid: number, gid: number, mtimeMs: number, linkName = ''): Buffer {
  const nameBuf = Buffer.from(name, 'utf8');
  const linkBuf = Buffer.from(linkName, 'utf8');
  const mtime = Math.floor(mtimeMs / 1000);
  const pax: Buffer[] = [];
  if (nameBuf.length > 100) pax.push(paxRecord('path', name));
  if (linkBuf.length > 100) pax.push(paxRecord('linkpath', linkName));
  if (size > MAX_OCTAL_11) pax.push(paxRecord('size', String(size)));
  if (uid > MAX_OCTAL_7 || uid < 0) pax.push(paxRecord('uid', String(uid)));
  if (gid > MAX_OCTAL_7 || gid < 0) pax.push(paxRecord('gid', String(gid)));
  if (mtime < 0 || mtime > MAX_OCTAL_11) pax.push(paxRecord('mtime', String(mtime)));
  const header = rawHeader(nameBuf, type, size, mode, uid, gid, mtime, linkBuf);
  if (pax.length === 0) return header;
  const body = Buffer.concat(pax);
  const paxName = Buffer.from(`PaxHeaders/${name.split('/').filter(Boolean).pop() ?? 'x'}`.slice(0, 99), 'utf8');
  const paxHeader = rawHeader(paxName, 'x', body.length, 0o644, 0, 0, Math.max(0, mtime), Buffer.alloc(0));
  const pad = (512 - (body.length % 512)) % 512;
  return Buffer.concat([paxHeader, body, ZEROS.subarray(0, pad), header]);
}

export async function writeTar(entries: readonly SourceEntry[], out: Writable, opts: TarWriteOptions = {}): Promise<WriteResult> {
  const warn = opts.onWarning ?? ((): void => {});
  const sink = new Sink(out);
  const isStreamed = (e: SourceEntry): boolean => e.type === 'file' && e.size > INLINE_LIMIT;
  const links = new HardLinks(opts.hardLinks === false ? [] : entries);
  let count = 0;
  // with the native addon, small files are read ahead on the threadpool (tar-read-ahead.ts)
  const native = opts.readAhead === false ? null : nativeDeflate();
  if (opts.readAhead && !native) throw new Error('reading ahead needs the native addon (not built, or CACHEGATE_NATIVE_DEFLATE=0)');
  const isReadAhead = (i: number): boolean => entries[i].type === 'file' && entries[i].size > 0 && !isStreamed(entries[i]) && !links.mayLink(i);
  const readAhead = native ? new TarReadAhead(native, entries, isReadAhead) : null;

  const vanished = (e: SourceEntry, err: unknown): null => {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    warn(`${e.name}: file vanished while archiving, skipped`);
    return null;
  };


  /** A small file read ahead: its header, then its bytes copied into the sink's batch. */
  const writeReadAhead = async (e: SourceEntry, ahead: TarReadAhead, i: number): Promise<boolean> => {
    const data = await ahead.take(i);
    if (data === null) {
      warn(`${e.name}: file vanished while archiving, skipped`);
      return false;
    }
    if (data.length !== e.size) throw new Error(`${e.name}: file shrank while archiving (${e.size} → ${data.length} bytes)`);
    const padded = e.size + ((512 - (e.size % 512)) % 512);
    const region = await writeHeader(sink, e.name, '0', e.size, e.mode, e.uid, e.gid, e.mtimeMs, '', padded);
    data.copy(region);
    region.fill(0, e.size);
    return true;
  };

  /** Header and data of a small file go straight into the sink's batch (no intermediate copies). */
  const writeInlineFile = async (e: SourceEntry): Promise<boolean> => {
    const padded = e.size + ((512 - (e.size % 512)) % 512);
    let fd: number;
    try {
      fd = fs.openSync(e.absPath, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
    } catch (err) {
      vanished(e, err);
      return false;
    }
    try {
      const region = await writeHeader(sink, e.name, '0', e.size, e.mode, e.uid, e.gid, e.mtimeMs, '', padded);
      let off = 0;
      while (off < e.size) {
        const n = fs.readSync(fd, region, off, e.size - off, off);
        if (n === 0) break;
        off += n;
      }
      if (off !== e.size) throw new Error(`${e.name}: file shrank while archiving (${e.size} → ${off} bytes)`);
      region.fill(0, e.size);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  };

  const writeInlineOther = async (e: SourceEntry): Promise<boolean> => {
    if (e.type === 'dir') {
      await writeHeader(sink, `${e.name}/`, '5', 0, e.mode, e.uid, e.gid, e.mtimeMs);
      return true;
    }
    let target: string;
    try {
      target = fs.readlinkSync(e.absPath);
    } catch (err) {
      vanished(e, err);
      return false;
    }
    await writeHeader(sink, e.name, '2', 0, e.mode, e.uid, e.gid, e.mtimeMs, target);
    return true;
  };

  /** Streams a file of any size from the disk into the sink; false when it vanished. */
  const writeStreamed = async (e: SourceEntry): Promise<boolean> => {
    let fh;
    try {
      fh = await openForRead(e.absPath);
    } catch (err) {
      vanished(e, err);
      return false;
    }
    try {
      await writeHeader(sink, e.name, '0', e.size, e.mode, e.uid, e.gid, e.mtimeMs);
      // read straight into the sink's batches: no per-block allocation. Each read fills what is
      // left of the batch (a whole 1 MiB batch after the first): 256 KiB pieces cost four trips
      // to the threadpool per batch, and the main thread waited on them (tar.zst of the bench tree).
      let n = 0;
      while (n < e.size) {
        const want = Math.min(sink.room >= MIN_PIECE ? sink.room : Sink.MAX_REGION, e.size - n);
        await sink.reserve(want);
        const region = sink.region(want);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await fh.read(region, got, want - got, n + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        n += got;
        if (got < want) {
          sink.unreserve(want - got);
          throw new Error(`${e.name}: file shrank while archiving (${e.size} → ${n} bytes)`);
        }
      }
      const pad = (512 - (n % 512)) % 512;
      await sink.write(ZEROS.subarray(0, pad));
      return true;
    } finally {
      await fh.close();
    }
  };

  /**
   * A later name of an inode already in the archive: a hard-link entry naming the first (size 0, as
   * GNU tar writes it). When the first name vanished before it was written, this one takes its bytes.
   */
  const writeLaterName = async (e: SourceEntry): Promise<boolean> => {
    const target = links.targetOf(e);
    if (target !== undefined) {
      await writeHeader(sink, e.name, '1', 0, e.mode, e.uid, e.gid, e.mtimeMs, target);
      return true;
    }
    return isStreamed(e) ? writeStreamed(e) : writeInlineFile(e);
  };

  try {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      let written: boolean;
      if (links.mayLink(i)) written = await writeLaterName(e);
      else if (isStreamed(e)) written = await writeStreamed(e);
      else if (readAhead && isReadAhead(i)) written = await writeReadAhead(e, readAhead, i);
      else written = await (e.type === 'file' ? writeInlineFile(e) : writeInlineOther(e));
      if (!written) continue;
      links.wrote(e);
      count++;
    }
  } catch (err) {
    readAhead?.abandon();
    throw err;
  }
  await sink.write(ZEROS);
  await sink.end();
  return { entries: count, bytes: sink.offset };
}
