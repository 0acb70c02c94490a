/**
 * Public API of the archive core: create an archive from selected entries, detect the format of a
 * local archive, extract it safely. Formats: zip (deflate), zipzstd (zip, method 93), tarzstd.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { SourceEntry } from './entry.ts';
import type { ArchiveFormat, CompressionLevel } from './levels.ts';
import { deflateLevel, zstdLevel } from './levels.ts';
import { METHOD_DEFLATE, METHOD_STORE, METHOD_ZSTD } from './compress.ts';
import { writeZip } from './zip-writer.ts';
import type { WriteResult, ZipWriteOptions } from './zip-writer.ts';
import { writeTar } from './tar-writer.ts';
import { createZstdCompressor } from './zstd.ts';
import { ZstdFrameWriter } from './zstd-frames.ts';
import { detectFormat } from './detect.ts';
import { extractZip } from './zip-reader.ts';
import type { ExtractOptions, ExtractResult } from './zip-reader.ts';
import { extractTarZstd } from './tar-reader.ts';

export type { SourceEntry } from './entry.ts';
export type { ArchiveFormat, CompressionLevel } from './levels.ts';
export { parseArchiveFormat, parseCompressionLevel } from './levels.ts';
export type { ExtractOptions, ExtractResult } from './zip-reader.ts';
export type { WriteResult } from './zip-writer.ts';
export { UnsafeEntryError, CorruptArchiveError } from './safe-writer.ts';
export { selectFiles } from './select.ts';
export { detectFormat } from './detect.ts';
export { verifyArchive } from './verify.ts';
export { limitYoungGeneration } from './memory.ts';
export type { GrowingFile } from './input.ts';
export type { SelectOptions, Selection } from './select.ts';

export interface CreateOptions {
  onWarning?: (message: string) => void;
  /**
   * tarzstd: 0 (default) = independent frames compressed in parallel by worker threads
   * (zstd-frames.ts); n > 0 = one zstd-napi stream with n zstd worker threads.
   */
  zstdWorkers?: number;
  /** Tuning knobs, mainly for tests. */
  zip?: Partial<ZipWriteOptions>;
}

/** Writes the archive to any Writable (ends it). */
export async function createArchive(entries: readonly SourceEntry[], format: ArchiveFormat, level: CompressionLevel, out: Writable, opts: CreateOptions = {}): Promise<WriteResult> {
  if (format === 'tarzstd' && (opts.zstdWorkers ?? 0) === 0) {
    // independent frames compressed in parallel by worker threads (see zstd-frames.ts)
    const zstd = new ZstdFrameWriter(out, zstdLevel(level));
    try {
      return await writeTar(entries, zstd, { onWarning: opts.onWarning });
    } catch (err) {
      zstd.destroy(err as Error);
      throw err;
    }
  }
  if (format === 'tarzstd') {
    const zstd = createZstdCompressor(zstdLevel(level), { workers: opts.zstdWorkers });
    const done = pipeline(zstd, out);
    try {
      const result = await writeTar(entries, zstd, { onWarning: opts.onWarning });
      await done;
      return result;
    } catch (err) {
      zstd.destroy(err as Error);
      await done.catch(() => {});
      throw err;
    }
  }
  const method = format === 'zipzstd' ? METHOD_ZSTD : deflateLevel(level) === 0 ? METHOD_STORE : METHOD_DEFLATE;
  const lvl = format === 'zipzstd' ? zstdLevel(level) : deflateLevel(level);
  return writeZip(entries, out, { method, level: lvl, onWarning: opts.onWarning, ...opts.zip });
}

/**
 * Creates `file` atomically: writes `<file>.<random>.tmp` in the same directory, renames on
 * success, removes it on failure.
 */
export async function createArchiveFile(entries: readonly SourceEntry[], file: string, format: ArchiveFormat, level: CompressionLevel, opts: CreateOptions = {}): Promise<WriteResult> {
  await fs.promises.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const out = fs.createWriteStream(tmp, { highWaterMark: 1 << 20 });
  try {
    const result = await createArchive(entries, format, level, out, opts);
    await new Promise<void>((resolve, reject) => {
      if (out.closed) resolve();
      else {
        out.once('close', resolve);
        out.once('error', reject);
      }
    });
    await fs.promises.rename(tmp, file);
    return result;
  } catch (err) {
    out.destroy();
    await fs.promises.unlink(tmp).catch(() => {});
    throw err;
  }
}

export async function extractArchive(file: string, dir: string, opts: ExtractOptions = {}): Promise<ExtractResult & { format: 'tarzstd' | 'zip' }> {
  const format = await detectFormat(file);
  const result = format === 'tarzstd' ? await extractTarZstd(file, dir, opts) : await extractZip(file, dir, opts);
  return { ...result, format };
}
