/**
 * What extraction throws for bad input: an entry refused for safety, a corrupt archive, an archive
 * over the extraction limits. Each message names the entry or the limit so that a user can act on it.
 */

export class UnsafeEntryError extends Error {
  readonly entryName: string;
  constructor(entryName: string, reason: string) {
    super(`${JSON.stringify(entryName)}: ${reason}`);
    this.name = 'UnsafeEntryError';
    this.entryName = entryName;
  }
}

export class CorruptArchiveError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CorruptArchiveError';
  }
}

/** The archive expands to more bytes or entries than extraction allows (limits.ts). */
export class ArchiveLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveLimitError';
  }
}
