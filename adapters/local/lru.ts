/**
 * The in-memory index of a size-bounded store: which objects it holds, how many bytes, in the order
 * of their last use. Pure bookkeeping (no I/O): the store that owns it unlinks the files it names.
 *
 * A Map keeps insertion order, so "move to the end on use" (delete + set) makes the first entry the
 * least recently used one: touch, add and evict are O(1) each, on the hot path without any disk
 * write (the last use reaches the disk later, batched: see retention.ts).
 *
 * The bytes it counts are the bytes on disk:
 * - stored: objects in the index;
 * - reserved: uploads in progress that stated their length (room is made before they write);
 * - draining: objects already removed from the index that a reader still holds open (POSIX keeps an
 *   unlinked file's blocks until its last descriptor closes: the reader finishes intact, and the
 *   bound counts those blocks until then).
 */

export interface LruEntry {
  /** The file's key (its name in the store). */
  readonly key: string;
  /** Bytes on disk. */
  readonly size: number;
  /** Last use, ms since the epoch. */
  lastUse: number;
  /** mtime of the file in ms (kept to write the last use as atime without changing it). */
  readonly mtimeMs: number;
  /** Object name, when known (read from the file header lazily by usage reports). */
  name?: string;
  /** Open readers of this entry's file. */
  readers: number;
  /** Removed from the index (evicted or replaced): its bytes count as draining until readers = 0. */
  gone: boolean;
}

export type EvictionReason = 'size' | 'age';

export class LruIndex {
  private readonly entries = new Map<string, LruEntry>();
  private stored = 0;
  private reserved = 0;
  private draining = 0;
  /** Keys whose last use changed since the last flush (written out as atime by the owner). */
  readonly dirty = new Set<string>();

  get objects(): number {
    return this.entries.size;
  }

  get storedBytes(): number {
    return this.stored;
  }

  /** Everything the bound applies to: stored + reserved + draining. */
  get usedBytes(): number {
    return this.stored + this.reserved + this.draining;
  }

  get drainingBytes(): number {
    return this.draining;
  }

  get(key: string): LruEntry | undefined {
    return this.entries.get(key);
  }

  values(): IterableIterator<LruEntry> {
    return this.entries.values();
  }

  /** Adds (or replaces) an entry as the most recently used one; returns the replaced entry, if any. */
  add(key: string, size: number, lastUse: number, mtimeMs: number, name?: string): LruEntry | undefined {
    const old = this.remove(key);
    const entry: LruEntry = { key, size, lastUse, mtimeMs, readers: 0, gone: false, ...(name !== undefined ? { name } : {}) };
    this.entries.set(key, entry);
    this.stored += size;
    return old;
  }

  /** Builds the index from a scan: entries in any order, sorted here by last use. */
  load(entries: LruEntry[]): void {
    entries.sort((a, b) => a.lastUse - b.lastUse);
    for (const e of entries) {
      this.entries.set(e.key, e);
      this.stored += e.size;
    }
  }

  /** A use: the entry becomes the most recently used one. */
  touch(key: string, now: number): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.lastUse = now;
    this.entries.delete(key);
    this.entries.set(key, e);
    this.dirty.add(key);
  }

  /** Removes an entry from the index; its bytes move to draining while readers hold it. */
  remove(key: string): LruEntry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    this.dirty.delete(key);
    this.stored -= e.size;
    e.gone = true;
    if (e.readers > 0) this.draining += e.size;
    return e;
  }

  /** A reader opens the entry's file. Call the returned function once, when it closes. */
  acquire(key: string): () => void {
    const e = this.entries.get(key);
    if (!e) return noop;
    e.readers++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      e.readers--;
      if (e.gone && e.readers === 0) this.draining -= e.size;
    };
  }

  /**
   * Counts the bytes of an upload as they arrive (`grow`), not what it declared: a declared length
   * that never comes must not make room (evict others' objects) for it. Call `release` once, when it
   * is stored or failed.
   */
  reserve(): { grow: (bytes: number) => void; release: () => void } {
    let held = 0;
    return {
      grow: (bytes) => {
        if (held < 0) return;
        held += bytes;
        this.reserved += bytes;
      },
      release: () => {
        if (held < 0) return;
        this.reserved -= held;
        held = -1;
      },
    };
  }

  /** Bytes no eviction can free: uploads in progress and readers of removed files. */
  get pinnedBytes(): number {
    return this.reserved + this.draining;
  }

  /**
   * Removes least recently used entries until usedBytes ≤ limit (entries in `keep` stay: the upload
   * that triggered the eviction). Returns what was removed, for the owner to unlink.
   */
  evictOver(limit: number, keep?: string): LruEntry[] {
    const out: LruEntry[] = [];
    if (this.usedBytes <= limit) return out;
    for (const e of this.entries.values()) {
      if (this.usedBytes <= limit) break;
      if (e.key === keep) continue;
      this.remove(e.key);
      out.push(e);
    }
    return out;
  }

  /** Removes entries last used before `cutoff` (ms). */
  evictOlderThan(cutoff: number): LruEntry[] {
    const out: LruEntry[] = [];
    for (const e of this.entries.values()) {
      if (e.lastUse >= cutoff) break; // LRU order: everything after is newer
      out.push(e);
    }
    for (const e of out) this.remove(e.key);
    return out;
  }
}

function noop(): void {}
