/**
 * What the archive writers take in: one file-system object, already selected (see select.ts).
 */
export type EntryType = 'file' | 'dir' | 'symlink';

export interface SourceEntry {
  /** Name inside the archive: relative, '/'-separated, no leading './', no trailing '/'. */
  name: string;
  /** Where to read it from. */
  absPath: string;
  type: EntryType;
  /** Permission bits (07777). */
  mode: number;
  mtimeMs: number;
  /** Size in bytes for files (from lstat); 0 for others. */
  size: number;
  uid: number;
  gid: number;
  /**
   * `<st_dev>:<st_ino>` of a regular file with more than one link (st_nlink > 1), else undefined:
   * the tar writer stores later names of the same inode as hard links (hard-links.ts).
   */
  inode?: string;
}

/** An entry as read back from an archive. */
export interface ArchiveEntryInfo {
  name: string;
  type: EntryType | 'hardlink';
  mode: number;
  mtimeMs: number;
  size: number;
  /** Symlink or hardlink target. */
  linkName?: string;
  uid?: number;
  gid?: number;
}

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

export function typeBits(type: EntryType): number {
  return type === 'dir' ? S_IFDIR : type === 'symlink' ? S_IFLNK : S_IFREG;
}
