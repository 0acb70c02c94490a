/**
 * Archive formats and compression levels (SPEC §5, vectors/naming.json `compressionLevel`).
 */
export type ArchiveFormat = 'zip' | 'zipzstd' | 'tarzstd';
export type CompressionLevel = 'fastest' | 'fast' | 'default' | 'slow' | 'slowest';

export const ARCHIVE_FORMATS: readonly ArchiveFormat[] = ['zip', 'zipzstd', 'tarzstd'];
export const COMPRESSION_LEVELS: readonly CompressionLevel[] = ['fastest', 'fast', 'default', 'slow', 'slowest'];

/** Deflate level per named level; 0 means "store" (no compression). */
const ZIP_LEVELS: Record<CompressionLevel, number> = { fastest: 0, fast: 1, default: 5, slow: 7, slowest: 9 };
const ZSTD_LEVELS: Record<CompressionLevel, number> = { fastest: 1, fast: 1, default: 3, slow: 7, slowest: 11 };

export function deflateLevel(level: CompressionLevel): number {
  return ZIP_LEVELS[level];
}

export function zstdLevel(level: CompressionLevel): number {
  return ZSTD_LEVELS[level];
}

export interface Parsed<T> {
  value: T;
  /** A warning to print (upstream wording) when the input was not understood. */
  warning?: string;
}

/** Parses CACHE_COMPRESSION_LEVEL; empty means default, anything unknown falls back to default with a warning. */
export function parseCompressionLevel(raw: string | undefined): Parsed<CompressionLevel> {
  const v = (raw ?? '').trim().toLowerCase();
  if (v === '') return { value: 'default' };
  if ((COMPRESSION_LEVELS as readonly string[]).includes(v)) return { value: v as CompressionLevel };
  return { value: 'default', warning: `compression level "${raw}" is invalid, falling back to default` };
}

/** Parses CACHE_COMPRESSION_FORMAT; empty means zip, anything unknown falls back to zip with a warning. */
export function parseArchiveFormat(raw: string | undefined): Parsed<ArchiveFormat> {
  const v = (raw ?? '').trim().toLowerCase();
  if (v === '') return { value: 'zip' };
  if ((ARCHIVE_FORMATS as readonly string[]).includes(v)) return { value: v as ArchiveFormat };
  return { value: 'zip', warning: `compression format "${raw}" is invalid, falling back to zip` };
}
