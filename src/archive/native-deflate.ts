/**
 * The native deflate addon (`native/`, libdeflate linked statically, jobs on libuv's threadpool),
 * or null: not built (no libdeflate-dev or no compiler at `npm ci`), failed to load, or turned off
 * with CACHEGATE_NATIVE_DEFLATE=0. Without it zip creation uses node:zlib (compress.ts,
 * block-workers.ts); both write ordinary deflate streams. Why native: docs/archive.md, "Deflate
 * engines".
 */
import { fileURLToPath } from 'node:url';

export interface NativeDeflate {
  /** e.g. "libdeflate 1.14". */
  readonly engine: string;
  /**
   * Files back to back in `input` (`lengths[i]` bytes each): CRC-32 of each into results[2i], its
   * raw deflate stream appended to `output` with the length in results[2i+1], or 0xFFFFFFFF when
   * not smaller than the file (nothing appended: store it). `output` must be PACK_SLACK longer
   * than `input`. With `paths` (NUL-terminated names back to back, one per length), the job
   * reads each file first (O_NOFOLLOW, at most lengths[i] bytes into its slot): results then has
   * 3 slots per file, the third the bytes read, or 0xFFFFFFFF when it vanished (ENOENT, ENOTDIR);
   * other errors reject with their errno name in the message.
   */
  packFiles(level: number, input: Uint8Array, lengths: Uint32Array, output: Uint8Array, results: Uint32Array, paths?: Uint8Array): Promise<void>;
  /**
   * One block of a large file, read by the job: up to input.length bytes of `fd` at `position` into
   * `input` (fewer when the file ends): [CRC-32 of the bytes read, bytes written to `output`, bytes
   * read]. Every block but the last ends byte-aligned and not final, so the blocks' concatenation is
   * one deflate stream. `output` must hold blockBound(input.length) bytes.
   */
  packBlockAt(level: number, fd: number, position: number, input: Uint8Array, output: Uint8Array, last: boolean): Promise<[number, number, number]>;
  blockBound(bytes: number): number;
  /**
   * packFiles' reads alone (no CRC, no deflate): each file of `paths` into its slot of `lengths[i]`
   * bytes; results[3i+2] the bytes read, or 0xFFFFFFFF when it vanished (ENOENT, ENOTDIR); other
   * errors reject with their errno name and the file's name. For the tar writer's small files.
   */
  readFiles(input: Uint8Array, lengths: Uint32Array, results: Uint32Array, paths: Uint8Array): Promise<void>;
  /** zlib's crc32_combine: the CRC-32 of A then B. */
  crc32Combine(crcA: number, crcB: number, lengthB: number): number;
  /**
   * Extraction (file-batches.ts): small files written on the threadpool, each `name` (NUL-terminated,
   * back to back; one path component) in the directory handle meta[WF_SLOTS*i]: see native/deflate.c.
   * Absent from an addon built before it.
   */
  writeFiles?(input: Uint8Array, meta: Float64Array, names: Uint8Array, results: Int32Array): Promise<void>;
  /** WF_SLOTS of the sources it was built from (absent before owners were restored: 9). */
  readonly wfSlots?: number;
  /**
   * Extraction: one large zip entry (method 0 or 8) read from `archiveFd` at `start`, decoded, its
   * CRC-32 computed, written from offset 0 to `outFd` (-1: only checked): [crc, bytes produced].
   * Rejects when the data does not decode, yields more than `size`, or the file ends. Absent from an
   * addon built before it.
   */
  inflateFile?(archiveFd: number, start: number, csize: number, method: number, size: number, outFd: number): Promise<[number, number]>;
}

/** writeFiles' layout: slots per file in `meta`, and the statuses besides an errno. */
export const WF_SLOTS = 11;
export const WF_BAD_DATA = -2;
export const WF_BAD_CRC = -3;
export const WF_BAD_SIZE = -4;
export const WF_DIR_IN_WAY = -5;
export const WF_NOT_RUN = -6;

export const PACK_SLACK = 4096;

let loaded: NativeDeflate | null | undefined;
export const ADDON = new URL('../../native/build/Release/cachegate_deflate.node', import.meta.url);

export function nativeDeflate(): NativeDeflate | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.CACHEGATE_NATIVE_DEFLATE === '0') return loaded;
  try {
    // process.dlopen, not require: the addon is optional (absent where libdeflate-dev or a compiler
    // was missing at `npm ci`; the deploy test checks that every require()d file is present)
    const mod = { exports: {} as NativeDeflate };
    process.dlopen(mod, fileURLToPath(ADDON));
    // wfSlots: writeFiles' meta layout; an addon with another one would misread every file's metadata
    if (typeof mod.exports.writeFiles === 'function' && typeof mod.exports.inflateFile === 'function' && typeof mod.exports.packBlockAt === 'function' && typeof mod.exports.readFiles === 'function' && mod.exports.wfSlots === WF_SLOTS) loaded = mod.exports;
    // An addon built from older sources (a checkout updated without `npm ci`): its missing functions
    // would silently send extraction down the slower path, so none of it is used, and it is said.
    else process.stderr.write('cachegate: the native addon was built from older sources: run `npm run install` to rebuild it; using node:zlib meanwhile\n');
  } catch {
    // not built here: the node:zlib path does the same work, slower
  }
  return loaded;
}

/** What compresses zip entries in this process, for `cachegate version` and the helper's log. */
export function deflateEngine(): string {
  const n = nativeDeflate();
  if (n) return `${n.engine} (native addon)`;
  return process.env.CACHEGATE_NATIVE_DEFLATE === '0' ? 'node:zlib (CACHEGATE_NATIVE_DEFLATE=0)' : 'node:zlib (native addon not built)';
}
