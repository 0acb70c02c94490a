/**
 * Streaming tar reader for tar.zst: ustar, GNU (long names 'L'/'K', base-256 numbers) and PAX
 * ('x' per-entry, 'g' global ignored) headers, as written by GNU tar, bsdtar, Python's tarfile
 * and our own writer. Entries are handed to an EntrySink (the SafeWriter when extracting).
 */
import { StreamReader } from './stream-reader.ts';
import { CorruptArchiveError, SafeWriter, type EntrySink } from './safe-writer.ts';
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

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = parseInt(data.toString('ascii', pos, sp), 10);
    if (!(len > 0) || pos + len > data.length) throw corrupt('invalid PAX header record');
    const rec = data.toString('utf8', sp + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
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
  let pax: Record<string, string> = {};
  let longName: string | null = null;
  let longLink: string | null = null;
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
      if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
        if (size > 16 << 20) throw corrupt('extended header too large');
        const data = Buffer.from(await readData(size));
        if (type === 'x') pax = { ...pax, ...parsePax(data) };
        else if (type === 'L') longName = cstring(data, 0, data.length);
        else if (type === 'K') longLink = cstring(data, 0, data.length);
        continue;
      }
      if (pax.path !== undefined) name = pax.path;
      else if (longName !== null) name = longName;
      let link = cstring(h, 157, 100);
      if (pax.linkpath !== undefined) link = pax.linkpath;
      else if (longLink !== null) link = longLink;
      if (pax.size !== undefined) size = Number(pax.size);
      let mtimeMs = numeric(h, 136, 12) * 1000;
      if (pax.mtime !== undefined) mtimeMs = Math.round(Number(pax.mtime) * 1000);
      const mode = numeric(h, 100, 8) & 0o7777;
      pax = {};
      longName = null;
      longLink = null;
      if (!Number.isSafeInteger(size) || size < 0) throw corrupt(`${name}: invalid size`);
      entries++;
      const isDir = type === '5' || ((type === '0' || type === '\0' || type === '7') && name.endsWith('/'));
      if (isDir) {
        safe.dir(safe.check(name), mode, mtimeMs);
        await r.skip(size + pad512(size));
        continue;
      }
      if (type === '2') {
        safe.symlink(name, safe.check(name), link, mtimeMs);
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
      bytes += size;
      if (size <= small) {
        safe.writeFileSync(rel, mode, mtimeMs, await readData(size));
        continue;
      }
      await safe.streamFile(rel, mode, mtimeMs, async (write) => {
        for await (const chunk of r.take(size)) await write(chunk);
      });
      await r.skip(pad512(size));
    }
  } catch (err) {
    await r.close().catch(() => {});
    if (err instanceof CorruptArchiveError || err instanceof Error && err.name === 'UnsafeEntryError') throw err;
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
  const safe = await SafeWriter.create(dir);
  try {
    return await readTarZstd(file, safe, opts);
  } finally {
    safe.close();
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
