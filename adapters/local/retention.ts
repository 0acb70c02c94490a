/**
 * A FileStore bounded in size ([cachegate.retention] max_size) and in age since last use (max_age):
 * least recently used objects go first.
 *
 * - A use is a download (GET) or an upload (PUT). It moves the object to the end of an in-memory LRU
 *   (lru.ts): no disk write on the request's path. The last use reaches the disk as the file's atime,
 *   written by utimes() in a batch every FLUSH_MS and at close; after a crash the order is at most
 *   that old.
 * - Eviction runs after every stored upload (and before an upload that states its length, to make
 *   room), so the store stays under max_size whenever a write completes; max_age is swept on a timer.
 * - An object being read is never removed under its reader: unlink() leaves the open descriptor
 *   valid (POSIX), and the bytes count as draining until the reader closes.
 * - Restart: the index is rebuilt from the directory (stat of every file; the atime is the last
 *   use), and temporary files a crashed process left (`.tmp-<pid>-…` with a dead pid, or our own
 *   pid from a previous life in a container) are removed first.
 *
 * One RetainedStore per directory, shared by every profile that stores there (openRetained): the
 * bound is about the disk, not a profile.
 */
import { readdirSync, statSync } from 'node:fs';
import { rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import type { ByteRange, GetResult, ListOptions, ListPage, ObjectInfo, PutInput, RetainedStoreStats, RetainedView } from '../../src/adapter.ts';
import { insufficientStorage, tooLarge } from '../../src/errors.ts';
import { LruIndex, type EvictionReason, type LruEntry } from './lru.ts';
import { RoomMeter } from './room-meter.ts';
import { FileStore, TEMP_PREFIX, tempOwner, type PutOptions } from './store.ts';

export interface RetentionLimits {
  /** Bytes on disk the store may hold. */
  maxSize: number;
  /** Seconds since last use after which an object is removed; 0 = no age limit. */
  maxAge: number;
}

/** How often last uses are written to disk as atimes. */
const FLUSH_MS = 30_000;
/** utimes() calls in flight at once while flushing or unlinks while evicting. */
const IO_PARALLEL = 16;

export class RetainedStore implements RetainedView {
  readonly files: FileStore;
  readonly index = new LruIndex();
  limits: RetentionLimits;
  readonly evictions: Record<EvictionReason, number> = { size: 0, age: 0 };
  private readonly now: () => number;
  /** Unlinks in progress by key: an upload of the same key waits for it before its rename. */
  private readonly unlinking = new Map<string, Promise<void>>();
  private flushTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  /** 'local' or 'disk_cache', for metrics and reports. */
  readonly label: string;

  constructor(dataDir: string, limits: RetentionLimits, opts: { label?: string; now?: () => number } = {}) {
    this.files = new FileStore(dataDir);
    this.label = opts.label ?? 'local';
    const now = opts.now ?? Date.now;
    this.limits = limits;
    this.now = now;
  }

  get root(): string {
    return this.files.root;
  }

  /** Removes stale temporary files, builds the index, evicts down to the limits, starts the timers. */
  async open(): Promise<void> {
    await this.files.ready();
    this.index.load(await scanStore(this.files.root));
    this.evictForSize();
    this.sweep();
    this.flushTimer = setInterval(() => void this.flush(), FLUSH_MS).unref();
    this.setLimits(this.limits);
  }

  /** New limits (a reload): applied at once, and the sweep follows max_age. */
  setLimits(limits: RetentionLimits): void {
    this.limits = limits;
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    if (limits.maxAge > 0) {
      const every = Math.min(60_000, Math.max(1_000, (limits.maxAge * 1000) / 4));
      this.sweepTimer = setInterval(() => this.sweep(), every).unref();
    }
    this.evictForSize();
  }

  ready(): Promise<void> {
    return this.files.ready();
  }

  async head(objectName: string): Promise<(ObjectInfo & { dataOffset: number }) | null> {
    const info = await this.files.head(objectName);
    if (!info) this.forget(this.files.keyOf(objectName));
    return info;
  }

  /** A download: a use. The entry is held (not counted as freed) until the body closes. */
  async get(objectName: string, range?: ByteRange): Promise<GetResult | null> {
    const key = this.files.keyOf(objectName);
    const release = this.index.acquire(key);
    let got: GetResult | null;
    try {
      got = await this.files.get(objectName, range);
    } catch (err) {
      release();
      throw err;
    }
    if (!got) {
      release();
      this.forget(key);
      return null;
    }
    got.body.once('close', release);
    this.index.touch(key, this.now());
    return got;
  }

  /**
   * An upload: room is made as its bytes arrive (room-meter.ts), never for bytes only declared; the
   * store is evicted down after it.
   */
  async put(objectName: string, input: PutInput, origin?: PutOptions['origin']): Promise<ObjectInfo> {
    const key = this.files.keyOf(objectName);
    const cap = input.maxSize > 0 ? Math.min(input.maxSize, this.limits.maxSize) : this.limits.maxSize;
    // An object that cannot fit is refused before anything is evicted for it.
    if (input.contentLength !== undefined && input.contentLength > cap) throw tooLarge(input.contentLength, cap);
    const room = this.index.reserve();
    const body = new RoomMeter((bytes) => {
      room.grow(bytes);
      this.evictForSize(key);
      if (this.index.pinnedBytes > this.limits.maxSize) {
        throw insufficientStorage(`the store's max_size (${this.limits.maxSize} bytes) is taken by uploads in progress and open downloads: nothing was stored`);
      }
    });
    // As the store's own pipeline would: a refusal here ends the source too. Bytes flow before the
    // store's pipeline listens; it reads an earlier error from the stream.
    pipeline(input.body, body, () => undefined);
    try {
      // Before the rename: wait for an eviction's unlink of this name, and take the old version out
      // of the index, so that no eviction between the rename and add() can unlink the new file.
      const beforeRename = async (): Promise<void> => {
        await this.unlinking.get(key);
        this.index.remove(key);
      };
      const stored = await this.files.put(objectName, { ...input, body, maxSize: cap }, { beforeRename, ...(origin ? { origin } : {}) });
      room.release();
      this.index.add(key, stored.fileBytes, this.now(), stored.mtimeMs, objectName);
      this.evictForSize(key);
      const { fileBytes: _f, mtimeMs: _m, ...info } = stored;
      return info;
    } finally {
      room.release();
    }
  }

  /** Removes an object (not an eviction: the disk tier drops a copy the backend changed or lost). */
  remove(objectName: string): void {
    const key = this.files.keyOf(objectName);
    const e = this.index.remove(key);
    this.unlinkAll([e ?? { key, size: 0, lastUse: 0, mtimeMs: 0, readers: 0, gone: true }], undefined);
  }

  /** DeleteObject (S3 front door): out of the index and off the disk before it answers; false when there was none. */
  async delete(objectName: string): Promise<boolean> {
    const key = this.files.keyOf(objectName);
    const existed = (await this.files.head(objectName)) !== null;
    this.remove(objectName);
    await this.unlinking.get(key);
    return existed;
  }

  /** ListObjects (S3 front door): not a use of any object. */
  list(prefix: string, opts: ListOptions): Promise<ListPage> {
    return this.files.list(prefix, opts);
  }

  /** Removes objects not used for max_age seconds. */
  sweep(): void {
    if (this.limits.maxAge <= 0) return;
    const victims = this.index.evictOlderThan(this.now() - this.limits.maxAge * 1000);
    this.unlinkAll(victims, 'age');
  }

  stats(): RetainedStoreStats {
    return {
      store: this.label,
      dir: this.files.root,
      maxSize: this.limits.maxSize,
      storedBytes: this.index.storedBytes,
      usedBytes: this.index.usedBytes,
      objects: this.index.objects,
      evictions: { ...this.evictions },
    };
  }

  /** Entries with their object names (read from the file headers the first time they are asked for). */
  entries(): Promise<LruEntry[]> {
    return withNames(this.files, [...this.index.values()]);
  }

  /** Writes the last uses changed since the previous flush as atimes (mtime unchanged: it is the ETag). */
  flush(): Promise<void> {
    this.flushing ??= this.writeUses().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.sweepTimer);
    await this.flush();
    await Promise.all(this.unlinking.values());
  }

  private async writeUses(): Promise<void> {
    const keys = [...this.index.dirty];
    this.index.dirty.clear();
    await eachLimited(keys, IO_PARALLEL, async (key) => {
      const e = this.index.get(key);
      if (!e) return;
      await utimes(this.files.fileOf(key), e.lastUse / 1000, e.mtimeMs / 1000).catch(() => undefined);
    });
  }

  private evictForSize(keep?: string): void {
    this.unlinkAll(this.index.evictOver(this.limits.maxSize, keep), 'size');
  }

  /** A file the index holds but the disk does not (removed by hand): the index forgets it. */
  private forget(key: string): void {
    if (this.index.get(key) && !this.unlinking.has(key)) this.index.remove(key);
  }

  private unlinkAll(victims: LruEntry[], reason: EvictionReason | undefined): void {
    if (reason) this.evictions[reason] += victims.length;
    for (const e of victims) {
      const prev = this.unlinking.get(e.key) ?? Promise.resolve();
      const done: Promise<void> = prev
        .then(() => rm(this.files.fileOf(e.key), { force: true }))
        .catch(() => undefined)
        .finally(() => {
          if (this.unlinking.get(e.key) === done) this.unlinking.delete(e.key);
        });
      this.unlinking.set(e.key, done);
    }
  }
}

/**
 * Reads the store's directory: one entry per object file (size on disk, last use = atime, or the
 * mtime when that is later), and removes the temporary files no live process writes.
 *
 * Synchronous on purpose: it runs once, before the service listens, and 100k statSync() calls take
 * a fraction of the time of 100k promise-based stat() (docs/retention.md: measured start-up).
 */
export async function scanStore(root: string, opts: { removeStale?: boolean } = {}): Promise<LruEntry[]> {
  let shards: string[];
  try {
    shards = readdirSync(root).filter((d) => /^[0-9a-f]{2}$/.test(d));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: LruEntry[] = [];
  const stale: string[] = [];
  for (const shard of shards) {
    const dir = join(root, shard);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const file = join(dir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        if (opts.removeStale !== false && !liveWriter(tempOwner(name))) stale.push(file);
        continue;
      }
      if (name.length !== 64 || !/^[0-9a-f]{64}$/.test(name)) continue;
      const st = statSync(file, { throwIfNoEntry: false });
      if (!st?.isFile()) continue;
      out.push({ key: name, size: st.size, lastUse: Math.max(st.atimeMs, st.mtimeMs), mtimeMs: st.mtimeMs, readers: 0, gone: false });
    }
  }
  await Promise.all(stale.map((f) => rm(f, { force: true })));
  return out;
}

async function withNames(files: FileStore, all: LruEntry[]): Promise<LruEntry[]> {
  await eachLimited(all.filter((e) => e.name === undefined), IO_PARALLEL, async (e) => {
    const name = await files.nameOf(e.key);
    if (name !== undefined) e.name = name;
  });
  return all;
}

/**
 * A look at a store's directory without opening it for service (`cachegate usage` beside a running
 * service): nothing is removed, nothing evicted, no timer started.
 */
export async function inspectStore(dataDir: string, label: string, maxSize: number): Promise<RetainedView> {
  const files = new FileStore(dataDir);
  const entries = await scanStore(files.root, { removeStale: false });
  const storedBytes = entries.reduce((n, e) => n + e.size, 0);
  return {
    stats: () => ({ store: label, dir: files.root, maxSize, storedBytes, usedBytes: storedBytes, objects: entries.length, evictions: { size: 0, age: 0 } }),
    entries: () => withNames(files, entries),
  };
}

/**
 * Whether the process that named a temporary file still runs (and is not us: at start-up nothing of
 * ours is in flight, and in a container a restarted service often gets the same pid again).
 */
function liveWriter(pid: number | undefined): boolean {
  if (pid === undefined || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function eachLimited<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

/** One RetainedStore per directory, shared by the adapters (profiles, reloads) that use it. */
const stores = new Map<string, { store: Promise<RetainedStore>; refs: number }>();

export async function openRetained(dataDir: string, limits: RetentionLimits, label = 'local'): Promise<{ store: RetainedStore; release: () => Promise<void> }> {
  const root = join(dataDir, 'objects');
  let slot = stores.get(root);
  if (!slot) {
    const s = new RetainedStore(dataDir, limits, { label });
    slot = { store: s.open().then(() => s), refs: 0 };
    stores.set(root, slot);
    slot.store.catch(() => stores.delete(root));
  }
  slot.refs++;
  const held = slot;
  const store = await held.store;
  store.setLimits(limits);
  let released = false;
  return {
    store,
    release: async () => {
      if (released) return;
      released = true;
      if (--held.refs === 0 && stores.get(root) === held) {
        stores.delete(root);
        await store.close();
      }
    },
  };
}
