/**
 * Public API of the archive core: create an archive from selected entries, detect the format of a
 * local archive, extract it safely. Formats: zip (deflate), zipzstd (zip, method 93), tarzstd.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { SourceEntry } from './entry.ts';
import type { ArchiveFormat, CompressionLevel } from './levels.ts';
import { deflateLevel, zstdLevel } from './levels.ts';
import type { WriteResult, ZipWriteOptions } from './zip-writer.ts';
import type { ExtractOptions, ExtractResult } from './zip-reader.ts';
import type { SelectOptions, Selection } from './select.ts';
import type { ZstdFramesOptions } from './zstd-frames.ts';

// Writers, readers, selection and verification are loaded when first used: a helper command needs
// one side only, and every module loaded is TypeScript stripped and compiled at start-up.
export type { SourceEntry } from './entry.ts';
export type { ArchiveFormat, CompressionLevel } from './levels.ts';
export { parseArchiveFormat, parseCompressionLevel } from './levels.ts';
export type { ExtractOptions, ExtractResult } from './zip-reader.ts';
export type { WriteResult } from './zip-writer.ts';
export { UnsafeEntryError, CorruptArchiveError, ArchiveLimitError } from './errors.ts';
export { extractLimits, type ExtractLimits } from './limits.ts';
export { detectFormat } from './detect.ts';
export { limitYoungGeneration } from './memory.ts';
export type { GrowingFile } from './input.ts';
export type { SelectOptions, Selection } from './select.ts';

export async function selectFiles(opts: SelectOptions): Promise<Selection> {
  return (await import('./select.ts')).selectFiles(opts);
}

export async function verifyArchive(...args: Parameters<typeof import('./verify.ts').verifyArchive>): ReturnType<typeof import('./verify.ts').verifyArchive> {
  return (await import('./verify.ts')).verifyArchive(...args);
}

export interface CreateOptions {
  onWarning?: (message: string) => void;
  /**
   * tarzstd: 0 (default) = independent frames compressed in parallel by worker threads
   * (zstd-frames.ts); n > 0 = one zstd-napi stream with n zstd worker threads.
   */
  zstdWorkers?: number;
  /**
   * tarzstd: write later names of a hard-linked file as link entries (default true). GitLab's own
   * helper extracts those as empty files (docs/archive.md): false stores every name's bytes.
   */
  hardLinks?: boolean;
  /** Tuning knobs, mainly for tests. */
  zip?: Partial<ZipWriteOptions>;
  /** tarzstd frames: workers and buffers (the helper's memory budget, memory-budget.ts). */
  zstdFrames?: ZstdFramesOptions;
}

/** Writes the archive to any Writable (ends it). */
export async function createArchive(entries: readonly SourceEntry[], format: ArchiveFormat, level: CompressionLevel, out: Writable, opts: CreateOptions = {}): Promise<WriteResult> {
  if (format === 'tarzstd') {
    const { writeTar } = await import('./tar-writer.ts');
    return (opts.zstdWorkers ?? 0) === 0 ? writeTarFrames(entries, out, zstdLevel(level), writeTar, opts) : writeTarStream(entries, out, zstdLevel(level), writeTar, opts);
  }
  const [{ writeZip }, { METHOD_DEFLATE, METHOD_STORE, METHOD_ZSTD }] = await Promise.all([import('./zip-writer.ts'), import('./compress.ts')]);
  const method = format === 'zipzstd' ? METHOD_ZSTD : deflateLevel(level) === 0 ? METHOD_STORE : METHOD_DEFLATE;
  const lvl = format === 'zipzstd' ? zstdLevel(level) : deflateLevel(level);
  return writeZip(entries, out, { method, level: lvl, onWarning: opts.onWarning, ...opts.zip });
}

type WriteTar = typeof import('./tar-writer.ts').writeTar;

/** Independent frames compressed in parallel by worker threads (the default, zstd-frames.ts). */
async function writeTarFrames(entries: readonly SourceEntry[], out: Writable, level: number, writeTar: WriteTar, opts: CreateOptions): Promise<WriteResult> {
  const { ZstdFrameWriter } = await import('./zstd-frames.ts');
  const zstd = new ZstdFrameWriter(out, level, opts.zstdFrames);
  try {
    return await writeTar(entries, zstd, { onWarning: opts.onWarning, ...(opts.hardLinks === false ? { hardLinks: false } : {}) });
  } catch (err) {
    zstd.destroy(err as Error);
    throw err;
  }
}

/** One zstd-napi stream with its own worker threads (`zstdWorkers: n`). */
async function writeTarStream(entries: readonly SourceEntry[], out: Writable, level: number, writeTar: WriteTar, opts: CreateOptions): Promise<WriteResult> {
  const [{ createZstdCompressor }, { pipeline }] = await Promise.all([import('./zstd.ts'), import('node:stream/promises')]);
  const zstd = createZstdCompressor(level, { workers: opts.zstdWorkers });
  const done = pipeline(zstd, out);
  try {
    const result = await writeTar(entries, zstd, { onWarning: opts.onWarning, ...(opts.hardLinks === false ? { hardLinks: false } : {}) });
    await done;
    return result;
  } catch (err) {
    zstd.destroy(err as Error);
    await done.catch(() => {});
    throw err;
  }
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
    return { ...result, bytes: out.bytesWritten }; // the file's size, whatever the format counted
  } catch (err) {
    out.destroy();
    await fs.promises.unlink(tmp).catch(() => {});
    throw err;
  }
}

export async function extractArchive(file: string, dir: string, opts: ExtractOptions = {}): Promise<ExtractResult & { format: 'tarzstd' | 'zip' }> {
  const { detectFormat } = await import('./detect.ts');
  const format = await detectFormat(file);
  const result = format === 'tarzstd' ? await (await import('./tar-reader.ts')).extractTarZstd(file, dir, opts) : await (await import('./zip-reader.ts')).extractZip(file, dir, opts);
  return { ...result, format };
}
