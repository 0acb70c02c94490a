/**
 * zstd streams for tar.zst.
 * - Compression: zstd-napi's CompressStream with zstd's own worker threads (nbWorkers): measured
 *   370 MiB/s at level 1 single-threaded, 464 with 2 workers (TESTING.md); node:zlib's zstd cannot
 *   use workers. Falls back to node:zlib if the native module cannot load.
 * - Decompression: zstd-napi too (synchronous on the main thread), because node:zlib's zstd
 *   decompressor does not reliably continue past the end of the first frame.
 */
import os from 'node:os';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import type { Transform } from 'node:stream';

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
 * Returns null when the output would be larger than `size`.
 */
export function zstdDecompressExact(input: Buffer, size: number): Buffer | null {
  if (!loadNapi() || !binding) {
    // node:zlib stops after the first frame when frames are small (measured); single frame only.
    return zlib.zstdDecompressSync(input, { maxOutputLength: Math.max(1, size + 1) });
  }
  dctx ??= new binding.DCtx();
  dctx.reset(1); // ZSTD_reset_session_only
  const out = Buffer.allocUnsafe(size + 1);
  let produced = 0;
  let consumed = 0;
  while (consumed < input.length) {
    const [, p, c] = dctx.decompressStream(out.subarray(produced), input.subarray(consumed));
    produced += p;
    consumed += c;
    if (produced > size) return null;
    if (p === 0 && c === 0) break;
  }
  return out.subarray(0, produced);
}

export const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

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
