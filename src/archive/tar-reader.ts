/**
 * Streaming tar reader for tar.zst: ustar, GNU (long names 'L'/'K', base-256 numbers) and PAX
 * ('x' per-entry, 'g' global ignored) headers, as written by GNU tar, bsdtar, Python's tarfile
 * and our own writer. Entries are handed to an EntrySink (the SafeWriter when extracting).
 */
import { StreamReader } from './stream-reader.ts';
import { CorruptArchiveError, PATH_MAX, SafeWriter, UnsafeEntryError, type EntrySink } from './safe-writer.ts';
import { checkLimits, extractLimits } from './limits.ts';
import { zstdDecodeFile } from './zstd.ts';
import { BLOCK } from './compress.ts';
import type { ExtractOptions, ExtractResult } from './zip-reader.ts';

function corrupt(msg: string): CorruptArchiveError {
  return new CorruptArchiveError(`tar archive is corrupt: ${msg}`);
}

function cstring(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function numeric(buf: Buffer, off: number, len: number): number {
  if (buf[off] & 0x80) {
    // GNU base-256, positive values only
    let v = buf[off] & 0x7f;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + buf[i];
    return v;
  }
  const s = buf.toString('ascii', off, off + len).replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw corrupt(`invalid number field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

/**
 * An owner id: the PAX record when there is one, else the header field; undefined when unreadable
 * (the entry then keeps the extracting user's owner: an owner is never a reason to refuse a cache).
 */
function ownerId(h: Buffer, off: number, pax: string | undefined): number | undefined {
  if (pax !== undefined) return /^\d{1,10}$/.test(pax) ? Number(pax) : undefined;
  try {
    return numeric(h, off, 8);
  } catch {
    return undefined;
  }
}

function checksumOk(h: Buffer): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 32 : h[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  const stored = numeric(h, 148, 8);
  return stored === unsigned || stored === signed;
}

/**
 * Extended headers of one entry (issue 14, item 4): consecutive `x`, `L` and `K` headers apply to
 * the next real entry, so their total is bounded (MAX_EXTENDED_BYTES, MAX_PAX_RECORDS), and only
 * the four keys we use are kept: memory and time stay linear in the archive, whatever it repeats.
 */
const MAX_EXTENDED_BYTES = 1 << 20;
const MAX_PAX_RECORDS = 10_000;

interface Extended {
  path?: string;
  linkpath?: string;
  size?: string;
  mtime?: string;
  uid?: string;
  gid?: string;
  longName?: string;
  longLink?: string;
  bytes: number;
  records: number;
}

const noExtended = (): Extended => ({ bytes: 0, records: 0 });

/** Parses PAX records `<len> <key>=<value>\n` into `ext` in one pass. */
function parsePax(data: Buffer, ext: Extended): void {
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // NUL padding after the last record (some writers)
    let len = 0;
    let p = pos;
    while (p < data.length && data[p] >= 0x30 && data[p] <= 0x39 && p - pos < 8) len = len * 10 + data[p++] - 0x30;
    if (p === pos || data[p] !== 0x20 || len <= p - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) throw corrupt('invalid PAX header record');
    if (++ext.records > MAX_PAX_RECORDS) throw corrupt(`more than ${MAX_PAX_RECORDS} PAX records for one entry`);
    const eq = data.indexOf(0x3d, p + 1);
    if (eq > p + 1 && eq < pos + len) {
      const key = data.toString('utf8', p + 1, eq);
      if (key === 'path' || key === 'linkpath' || key === 'size' || key === 'mtime' || key === 'uid' || key === 'gid') ext[key] = data.toString('utf8', eq + 1, pos + len - 1);
    }
    pos += len;
  }
}

const pad512 = (n: number): number => (512 - (n % 512)) % 512;

export interface TarReadOptions extends ExtractOptions {
  /**
   * Refuse a stream that ends without the end-of-archive zero block (verification: a tar stream cut
   * at an entry boundary is otherwise indistinguishable from a complete one). Extraction accepts it,
   * as GNU tar does.
   */
  requireEnd?: boolean;
}

export async function readTarStream(source: AsyncIterable<Buffer>, safe: EntrySink, opts: TarReadOptions = {}): Promise<ExtractResult> {
  const warn = opts.onWarning ?? ((): void => {});
  const small = opts.smallEntryLimit ?? BLOCK;
  const r = new StreamReader(source);
  let entries = 0;
  let bytes = 0;
  let ext = noExtended();
  const readData = async (size: number): Promise<Buffer> => {
    const d = await r.read(size + pad512(size));
    if (d === null) throw corrupt('truncated entry data');
    return d.subarray(0, size);
  };
  try {
    for (;;) {
      const h = await r.read(512);
      if (h === null) {
        if (opts.requireEnd) throw corrupt('the stream ends without the end-of-archive block (truncated?)');
        break; // end of data without the two zero blocks: accepted, as GNU tar does
      }
      if (h.every((b) => b === 0)) {
        await r.drain();
        break;
      }
      if (!checksumOk(h)) throw corrupt(`bad header checksum at offset ${r.position - 512}`);
      const type = String.fromCharCode(h[156] || 0x30);
      let size = numeric(h, 124, 12);
      const magic = h.toString('ascii', 257, 263);
      let name = cstring(h, 0, 100);
      if (magic === 'ustar\0') {
        const prefix = cstring(h, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      if (type === 'g') {
        await r.skip(size + pad512(size)); // global headers are ignored: streamed past, never kept
        continue;
      }
      if (type === 'x' || type === 'L' || type === 'K') {
        // Bounded before anything is read or allocated.
        if (type === 'K' && size > PATH_MAX + 1) throw new UnsafeEntryError(name, `link target longer than ${PATH_MAX} bytes`);
        if (!Number.isSafeInteger(size) || size < 0 || ext.bytes + size > MAX_EXTENDED_BYTES) throw corrupt(`extended headers of more than ${MAX_EXTENDED_BYTES} bytes for one entry`);
        ext.bytes += size;
        const data = await readData(size);
        if (type === 'x') parsePax(data, ext);
        else if (type === 'L') ext.longName = cstring(data, 0, data.length);
        else ext.longLink = cstring(data, 0, data.length);
        continue;
      }
      name = ext.path ?? ext.longName ?? name;
      const link = ext.linkpath ?? ext.longLink ?? cstring(h, 157, 100);
      if (ext.size !== undefined) size = /^\d+$/.test(ext.size) ? Number(ext.size) : NaN;
      let mtimeMs = numeric(h, 136, 12) * 1000;
      if (ext.mtime !== undefined) mtimeMs = Math.round(Number(ext.mtime) * 1000);
      if (!Number.isFinite(mtimeMs)) mtimeMs = 0;
      const mode = numeric(h, 100, 8) & 0o7777;
      const owner = { uid: ownerId(h, 108, ext.uid), gid: ownerId(h, 116, ext.gid) };
      ext = noExtended();
      if (!Number.isSafeInteger(size) || size < 0) throw corrupt(`${name}: invalid size`);
      entries++;
      checkLimits(opts.limits, bytes, entries);
      if ((type === '1' || type === '2') && Buffer.byteLength(link) > PATH_MAX) throw new UnsafeEntryError(name, `link target longer than ${PATH_MAX} bytes`);
      const isDir = type === '5' || ((type === '0' || type === '\0' || type === '7') && name.endsWith('/'));
      if (isDir) {
        const rel = safe.check(name);
        const wait = safe.ready?.(rel);
        if (wait) await wait;
        safe.dir(rel, mode, mtimeMs, owner);
        await r.skip(size + pad512(size));
        continue;
      }
      if (type === '2') {
        safe.symlink(name, safe.check(name), link, mtimeMs, owner);
        await r.skip(size + pad512(size));
        continue;
      }
      if (type === '1') {
        safe.hardlink(name, safe.check(name), link);
        await r.skip(size + pad512(size));
        continue;
      }
      if (type !== '0' && type !== '\0' && type !== '7') {
        warn(`${name}: tar entry type ${JSON.stringify(type)} skipped`);
        await r.skip(size + pad512(size));
        continue;
      }
      const rel = safe.check(name);
      const wait = safe.ready?.(rel);
      if (wait) await wait;
      bytes += size;
      checkLimits(opts.limits, bytes, entries);
      if (size <= small) {
        safe.writeFileSync(rel, mode, mtimeMs, await readData(size), owner);
        continue;
      }
      await safe.streamFile(rel, mode, mtimeMs, async (write) => {
        for await (const chunk of r.take(size)) await write(chunk);
      }, owner);
      await r.skip(pad512(size));
    }
  } catch (err) {
    await r.close().catch(() => {});
    if (err instanceof CorruptArchiveError || err instanceof Error && (err.name === 'UnsafeEntryError' || err.name === 'ArchiveLimitError')) throw err;
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (typeof code === 'string' && code.startsWith('ZSTD') || code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') {
      throw new CorruptArchiveError(`tar.zst archive is corrupt: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  }
  await safe.finish();
  return { entries, bytes };
}

/** Extracts a tar.zst file into `dir`. */
export async function extractTarZstd(file: string, dir: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const safe = await SafeWriter.create(dir, [], { writeBatches: opts.writeBatches, restoreOwners: opts.restoreOwners });
  try {
    return await readTarZstd(file, safe, { ...opts, limits: extractLimits(opts.limits) });
  } finally {
    await safe.close();
  }
}

/** Decodes a tar.zst file (zstd frame checksums are checked by libzstd) into `sink`. */
export async function readTarZstd(file: string, sink: EntrySink, opts: TarReadOptions = {}): Promise<ExtractResult> {
  const chunks = zstdDecodeFile(file, (message, cause) => new CorruptArchiveError(`tar.zst archive is corrupt: ${message}`, { cause }), opts.growing);
  async function* decoded(): AsyncGenerator<Buffer> {
    try {
      yield* chunks;
    } catch (err) {
      if (err instanceof CorruptArchiveError) throw err;
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (typeof code === 'string' && code.startsWith('E')) throw err; // reading the file failed
      throw new CorruptArchiveError(`tar.zst archive is corrupt: ${(err as Error).message}`, { cause: err });
    }
  }
  return readTarStream(decoded(), sink, opts);
}
