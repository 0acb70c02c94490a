/**
 * Hard links when writing tar: the second (and every later) name of an inode that the archive
 * already holds is written as a link entry (type `1`) naming the first, as GNU tar does, instead of
 * its bytes a second time. Only regular files with more than one link are candidates (select.ts
 * sets `inode` for them). Zip has no hard-link form that our reader and GitLab's (saracen/fastzip)
 * both read, so the zip writer ignores this and stores the bytes (docs/archive.md).
 */
import type { SourceEntry } from './entry.ts';

export class HardLinks {
  /** Inode → name of the entry that carries its bytes (set once that entry is written). */
  private readonly carriers = new Map<string, string>();
  /** Indexes of entries that are a later name of an inode seen earlier in the selection. */
  private readonly later = new Set<number>();

  constructor(entries: readonly SourceEntry[]) {
    const seen = new Set<string>();
    entries.forEach((e, i) => {
      if (e.type !== 'file' || e.inode === undefined) return;
      if (seen.has(e.inode)) this.later.add(i);
      else seen.add(e.inode);
    });
  }

  /** True when entry `i` may become a link: its bytes are not worth reading ahead. */
  mayLink(i: number): boolean {
    return this.later.has(i);
  }

  /** The name to link `e` to, when an earlier name of its inode was written with its bytes. */
  targetOf(e: SourceEntry): string | undefined {
    return e.type === 'file' && e.inode !== undefined ? this.carriers.get(e.inode) : undefined;
  }

  /** Records that `e` was written with its bytes (a first name, or a later one whose first vanished). */
  wrote(e: SourceEntry): void {
    if (e.type === 'file' && e.inode !== undefined && !this.carriers.has(e.inode)) this.carriers.set(e.inode, e.name);
  }
}
