/**
 * Compression primitives on node:zlib for whole entries, asynchronous so that they run on the libuv
 * threadpool (several entries compress at the same time), and the small-entry decoder.
 *
 * Large entries are cut into BLOCK-sized pieces compressed in parallel by worker threads
 * (block-workers.ts):
 * - deflate: pigz's method — every block but the last ends with a sync flush (byte-aligned,
 *   not final), and is primed with the previous block's last 32 KiB as dictionary, so the
 *   concatenation is one ordinary deflate stream that any inflater reads;
 * - zstd: every block is its own zstd frame; concatenated frames are one valid zstd stream.
 */
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { zstdDecompressExact } from './zstd.ts';
import { StreamingRawInflater } from './raw-inflate.ts';

export const METHOD_STORE = 0;
export const METHOD_DEFLATE = 8;
export const METHOD_ZSTD = 93;
export type ZipMethod = typeof METHOD_STORE | typeof METHOD_DEFLATE | typeof METHOD_ZSTD;

export const BLOCK = 1 << 20;

const deflateRaw = promisify(zlib.deflateRaw) as (buf: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>;
const inflateRaw = promisify(zlib.inflateRaw) as (buf: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>;
const zstdCompress = promisify(zlib.zstdCompress) as (buf: Buffer, opts: zlib.ZstdOptions) => Promise<Buffer>;

function windowBitsFor(size: number): number {
  let bits = 9;
  while (bits < 15 && 1 << bits < size) bits++;
  return bits;
}

/** One-shot compression of a whole small entry. */
export function compressWhole(method: ZipMethod, level: number, data: Buffer): Promise<Buffer> {
  if (method === METHOD_DEFLATE) {
    return deflateRaw(data, { level, windowBits: windowBitsFor(data.length), chunkSize: Math.max(1024, Math.min(BLOCK, data.length + 64)) });
  }
  if (method === METHOD_ZSTD) {
    return zstdCompress(data, {
      chunkSize: Math.max(1024, Math.min(BLOCK, data.length + 64)),
      params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 0 },
    });
  }
  return Promise.resolve(data);
}

/** One-shot decompression of a small entry; the result must have exactly `size` bytes. */
export async function decompressWhole(method: number, data: Buffer, size: number): Promise<Buffer> {
  if (method === METHOD_STORE) return data;
  const chunkSize = Math.max(1024, Math.min(BLOCK, size + 64));
  // maxOutputLength bounds what a hostile entry can make us allocate.
  const maxOutputLength = Math.max(size, 1) + 1;
  if (method === METHOD_DEFLATE) return inflateRaw(data, { chunkSize, maxOutputLength });
  if (method === METHOD_ZSTD) return checkedZstd(data, size);
  throw new Error(`unsupported compression method ${method}`);
}

/** Entries up to this size are handled synchronously on the main thread (see docs/archive.md). */
export const SYNC_LIMIT = 64 * 1024;

export function compressWholeSync(method: ZipMethod, level: number, data: Buffer): Buffer {
  if (method === METHOD_DEFLATE) {
    const windowBits = windowBitsFor(data.length);
    return zlib.deflateRawSync(data, { level, windowBits, memLevel: Math.max(2, windowBits - 7), chunkSize: Math.max(1024, data.length + 64) });
  }
  if (method === METHOD_ZSTD) return zstdCompressSmall(level, data);
  return data;
}

export function decompressWholeSync(method: number, data: Buffer, size: number): Buffer {
  if (method === METHOD_STORE) return data;
  const maxOutputLength = Math.max(size, 1) + 1;
  const chunkSize = Math.max(1024, Math.min(BLOCK, size + 64));
  if (method === METHOD_DEFLATE) return zlib.inflateRawSync(data, { chunkSize, maxOutputLength });
  if (method === METHOD_ZSTD) return checkedZstd(data, size);
  throw new Error(`unsupported compression method ${method}`);
}

function checkedZstd(data: Buffer, size: number, scratch?: Buffer): Buffer {
  const out = zstdDecompressExact(data, size, scratch);
  if (out === null) throw new Error(`more data than the ${size} bytes announced`);
  return out;
}

/**
 * One raw inflater reused for every small entry, driven synchronously into the caller's buffer
 * (raw-inflate.ts: the zlib handle of a node:zlib stream, what `inflateRawSync` uses inside). Why:
 * `inflateRawSync` builds a zlib stream object and fresh output buffers per call; on 20,000 small
 * entries that was ~0.25 s of constructors and most of a second of garbage collection (profiled,
 * see docs/archive.md). Falls back to `inflateRawSync` if the handle is not there.
 */
class RawInflater {
  private readonly inflater: StreamingRawInflater | undefined;

  constructor() {
    try {
      this.inflater = new StreamingRawInflater();
    } catch {
      this.inflater = undefined;
    }
  }

  /** Inflates a whole raw deflate stream into `out`; the view it returns is valid until the next call. */
  inflate(input: Buffer, out: Buffer, size: number): Buffer {
    if (!this.inflater) return zlib.inflateRawSync(input, { maxOutputLength: Math.max(size, 1) + 1 });
    this.inflater.reset();
    let produced = 0;
    // Room for one byte more than announced: filling it means the entry is larger than it says.
    this.inflater.write(input, true, out.subarray(0, size + 1), (n) => {
      if (n > size) throw new Error(`more data than the ${size} bytes announced`);
      produced = n;
    });
    return out.subarray(0, produced);
  }
}

/**
 * Synchronous decoding of small entries (≤ `limit`, SYNC_LIMIT unless told) into one reused output
 * buffer, grown as entries need, up to `limit` + 1.
 */
export class SmallDecoder {
  private readonly limit: number;
  private out = Buffer.allocUnsafe(SYNC_LIMIT + 1);
  private inflater: RawInflater | null = null;

  constructor(limit = SYNC_LIMIT) {
    this.limit = limit;
  }

  /** The entry's data (a view valid until the next call). */
  decode(method: number, data: Buffer, size: number): Buffer {
    if (method === METHOD_STORE) return data;
    if (size > this.limit) return decompressWholeSync(method, data, size);
    if (this.out.length < size + 1) this.out = Buffer.allocUnsafe(Math.min(this.limit, 2 * size) + 1);
    if (method === METHOD_DEFLATE) return (this.inflater ??= new RawInflater()).inflate(data, this.out, size);
    if (method === METHOD_ZSTD) return checkedZstd(data, size, this.out);
    throw new Error(`unsupported compression method ${method}`);
  }
}

/**
 * Long-lived raw-deflate streams that compress many small files, one after another: each file is
 * written and then flushed with Z_FULL_FLUSH (byte-aligned, compression state reset, so the file's
 * bytes do not refer to earlier files), and a final empty fixed-Huffman block (03 00) closes it:
 * each file's output is a complete, independent raw deflate stream.
 * Why: `deflateRawSync` creates a zlib stream object per call; 20,000 calls left ~95 MB of garbage
 * in the resident set (measured), these lanes ~10 MB. The lanes run on the threadpool.
 */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

class DeflateLane {
  private readonly ds: zlib.DeflateRaw;
  private chunks: Buffer[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  busy = 0;

  constructor(level: number) {
    this.ds = zlib.createDeflateRaw({ level, chunkSize: 64 * 1024 });
    this.ds.on('data', (c: Buffer) => this.chunks.push(c));
  }

  compress(data: Buffer): Promise<Buffer> {
    this.busy++;
    const job = this.tail.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          const onError = (err: Error): void => reject(err);
          this.ds.once('error', onError);
          this.ds.write(data);
          this.ds.flush(zlib.constants.Z_FULL_FLUSH, () => {
            this.ds.off('error', onError);
            const out = Buffer.concat([...this.chunks, FINAL_BLOCK]);
            this.chunks = [];
            resolve(out);
          });
        }),
    );
    this.tail = job.catch(() => {});
    return job.finally(() => {
      this.busy--;
    });
  }

  close(): void {
    this.ds.destroy();
  }
}

export class DeflateLanes {
  private readonly lanes: DeflateLane[];

  constructor(level: number, count = 4) {
    this.lanes = Array.from({ length: count }, () => new DeflateLane(level));
  }

  compress(data: Buffer): Promise<Buffer> {
    let best = this.lanes[0];
    for (const l of this.lanes) if (l.busy < best.busy) best = l;
    return best.compress(data);
  }

  close(): void {
    for (const l of this.lanes) l.close();
  }
}

interface ZstdNapiCompressor {
  setParameters(p: { compressionLevel: number }): void;
  compress(data: Uint8Array): Buffer;
}

let zstdCompressors: Map<number, ZstdNapiCompressor> | null = null;

/** zstd for small entries with one reused context (zstd-napi); node:zlib if it cannot load. */
export function zstdCompressSmall(level: number, data: Buffer): Buffer {
  try {
    zstdCompressors ??= new Map();
    let c = zstdCompressors.get(level);
    if (!c) {
      const mod = createRequire(import.meta.url)('zstd-napi') as { Compressor: new () => ZstdNapiCompressor };
      c = new mod.Compressor();
      c.setParameters({ compressionLevel: level });
      zstdCompressors.set(level, c);
    }
    return c.compress(data);
  } catch {
    return zlib.zstdCompressSync(data, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level } });
  }
}
