/**
 * zstd streams for tar.zst.
 * - Compression: independent frames on worker threads (zstd-frames.ts) by default; on request
 *   (`zstdWorkers: n`), zstd-napi's CompressStream with zstd's own worker threads, which
 *   busy-waits the calling thread (see docs/archive.md). Falls back to node:zlib if the native
 *   module cannot load.
 * - Decompression: zstd-napi too (in a worker for local files over 4 MiB, zstd-worker.ts), because
 *   node:zlib's zstd decompressor does not reliably continue past the end of the first frame.
 */
import os from 'node:os';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import type { Transform } from 'node:stream';
import { openInput, type GrowingFile } from './input.ts';
import { zstdDecodeInWorker } from './zstd-worker.ts';

interface ZstdNapi {
  CompressStream: new (params: { compressionLevel?: number; nbWorkers?: number; checksumFlag?: boolean }) => Transform;
  DecompressStream: new () => Transform;
}

interface DCtx {
  decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number];
  reset(directive: number): void;
}

interface ZstdBinding {
  DCtx: new () => DCtx;
}

let napi: ZstdNapi | null | undefined;
let binding: ZstdBinding | null = null;

function loadNapi(): ZstdNapi | null {
  if (napi === undefined) {
    try {
      const require = createRequire(import.meta.url);
      napi = require('zstd-napi') as ZstdNapi;
      binding = require('zstd-napi/binding') as ZstdBinding;
    } catch {
      napi = null;
    }
  }
  return napi;
}

let dctx: DCtx | null = null;

/**
 * Decompresses a whole zstd input (one or several frames) that must produce exactly `size` bytes;
 * never produces (or allocates) more than size + 1 bytes, whatever the frame headers claim.
 * Returns null when the output would be larger than `size`; throws when the last frame is cut.
 * With `out` (at least size + 1 bytes) the result is a view of it (valid until `out` is reused).
 */
export function zstdDecompressExact(input: Buffer, size: number, out?: Buffer): Buffer | null {
  if (!loadNapi() || !binding) {
    // node:zlib stops after the first frame when frames are small (measured); single frame only.
    return zlib.zstdDecompressSync(input, { maxOutputLength: Math.max(1, size + 1) });
  }
  dctx ??= new binding.DCtx();
  dctx.reset(1); // ZSTD_reset_session_only
  const dst = out && out.length > size ? out : Buffer.allocUnsafe(size + 1);
  let produced = 0;
  let consumed = 0;
  let rest = 0;
  while (consumed < input.length) {
    const [r, p, c] = dctx.decompressStream(dst.subarray(produced, size + 1), input.subarray(consumed));
    rest = r;
    produced += p;
    consumed += c;
    if (produced > size) return null;
    if (p === 0 && c === 0) break;
  }
  if (rest !== 0) throw new Error('the zstd frame is cut short');
  return dst.subarray(0, produced);
}

export interface ZstdCompressOptions {
  /** zstd worker threads; default: number of CPUs (at most 4). 0 = single-threaded node:zlib. */
  workers?: number;
}

export function createZstdCompressor(level: number, opts: ZstdCompressOptions = {}): Transform {
  const workers = opts.workers ?? Math.min(4, Math.max(1, os.availableParallelism()));
  const mod = workers > 0 ? loadNapi() : null;
  if (mod) return new mod.CompressStream({ compressionLevel: level, nbWorkers: workers, checksumFlag: true });
  return zlib.createZstdCompress({
    chunkSize: 1 << 20,
    params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 },
  });
}

/**
 * zstd-napi's DecompressStream: node:zlib's zstd decompressor stops after the first frame when
 * frames are small (measured on Node 24.21: two concatenated 6-byte frames decode to the first
 * only), which breaks multi-frame input such as `zstd` CLI output of concatenated files.
 */
export function createZstdDecompressor(): Transform {
  const mod = loadNapi();
  if (mod) return new mod.DecompressStream();
  return zlib.createZstdDecompress({ chunkSize: 1 << 20 });
}

/** Below this, starting a worker thread (~30 ms) costs more than decoding on the main thread. */
const WORKER_MIN_SIZE = 4 << 20;

/**
 * Decodes a zstd file (any number of frames) into a sequence of chunks without allocating per
 * chunk: a yielded chunk stays valid until the consumer asks for the chunk after next (StreamReader
 * copies what it keeps longer). A local file of more than 4 MiB is decoded in a worker thread; a
 * small one, or one still arriving, here: two 1 MiB output buffers used in turn, input read 1 MiB
 * at a time into one reused buffer.
 */
export async function* zstdDecodeFile(path: string, onCorrupt: (message: string, cause?: unknown) => Error, growing?: GrowingFile): AsyncGenerator<Buffer> {
  if (!loadNapi() || !binding) {
    await growing?.ready(0, growing.size);
    const { createReadStream } = await import('node:fs');
    const { pipeline } = await import('node:stream');
    yield* pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), createZstdDecompressor(), () => {}) as AsyncIterable<Buffer>;
    return;
  }
  const { handle: fh, size } = await openInput(path, growing);
  if (!growing && size > WORKER_MIN_SIZE) {
    // A local file of some size: decoded in a worker thread, beside the consumer (zstd-worker.ts).
    await fh.close();
    yield* zstdDecodeInWorker(path, onCorrupt);
    return;
  }
  try {
    const d = new binding.DCtx();
    const input = Buffer.allocUnsafe(1 << 20);
    const outs = [Buffer.allocUnsafe(1 << 20), Buffer.allocUnsafe(1 << 20)];
    let k = 0;
    let pos = 0;
    let inFrame = false;
    let any = false;
    for (;;) {
      const { bytesRead } = await fh.read(input, 0, input.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      any = true;
      let src = input.subarray(0, bytesRead);
      for (;;) {
        const out = outs[k];
        k ^= 1;
        let ret: number;
        let produced: number;
        let consumed: number;
        try {
          [ret, produced, consumed] = d.decompressStream(out, src);
        } catch (err) {
          throw onCorrupt((err as Error).message, err);
        }
        src = src.subarray(consumed);
        inFrame = ret !== 0;
        if (produced > 0) yield out.subarray(0, produced);
        if (src.length === 0 && produced < out.length) break;
      }
    }
    if (!any) throw onCorrupt('empty file');
    if (inFrame) throw onCorrupt('unexpected end of data inside a zstd frame (truncated?)');
  } finally {
    await fh.close();
  }
}
