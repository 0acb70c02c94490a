/**
 * How much one extraction may write (issue 14, item 9): total bytes of file data and number of
 * entries. A zip is checked against its central directory before anything is written (every
 * entry's data is then verified to have exactly its declared size); a tar.zst, a stream, at each
 * header, before that entry is written.
 *
 * Defaults are generous, for caches of any size: 64 GiB and 10 million entries, or 10 × the
 * runner's MaxUploadedArchiveSize when the helper is told it (cache-extractor
 * --max-uploaded-archive-size / CACHE_MAX_UPLOADED_ARCHIVE_SIZE); --max-extracted-size and
 * --max-extracted-entries (CACHE_MAX_EXTRACTED_SIZE, CACHE_MAX_EXTRACTED_ENTRIES) set them directly.
 */
import { ArchiveLimitError } from './errors.ts';

export interface ExtractLimits {
  /** Total bytes of file data (0 = no limit). */
  bytes: number;
  /** Entries of any kind (0 = no limit). */
  entries: number;
}

export const DEFAULT_MAX_EXTRACTED_BYTES = 64 * 1024 ** 3;
export const DEFAULT_MAX_EXTRACTED_ENTRIES = 10_000_000;
/** The default byte limit is this many times MaxUploadedArchiveSize, when that is known. */
export const UPLOAD_SIZE_FACTOR = 10;

export function extractLimits(given: Partial<ExtractLimits> = {}, maxUploadedArchiveSize = 0): ExtractLimits {
  return {
    bytes: given.bytes ?? (maxUploadedArchiveSize > 0 ? UPLOAD_SIZE_FACTOR * maxUploadedArchiveSize : DEFAULT_MAX_EXTRACTED_BYTES),
    entries: given.entries ?? DEFAULT_MAX_EXTRACTED_ENTRIES,
  };
}

/** Throws when `bytes` or `entries` (running totals) are over the limits (an absent limit: none). */
export function checkLimits(limits: Partial<ExtractLimits> | undefined, bytes: number, entries: number): void {
  if (!limits) return;
  if (limits.bytes !== undefined && limits.bytes > 0 && bytes > limits.bytes) {
    throw new ArchiveLimitError(`the archive expands to more than ${limits.bytes} bytes, the extraction limit (set --max-extracted-size or CACHE_MAX_EXTRACTED_SIZE to allow more)`);
  }
  if (limits.entries !== undefined && limits.entries > 0 && entries > limits.entries) {
    throw new ArchiveLimitError(`the archive holds more than ${limits.entries} entries, the extraction limit (set --max-extracted-entries or CACHE_MAX_EXTRACTED_ENTRIES to allow more)`);
  }
}
