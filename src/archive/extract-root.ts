/**
 * Directory handles under an extraction root, opened one path component at a time with
 * O_DIRECTORY|O_NOFOLLOW, each relative to its parent's handle: Node has no openat(2), but on Linux
 * `/proc/self/fd/<dirfd>/<name>` resolves `name` in the directory that `dirfd` holds, whatever has
 * happened to that directory's path since (libarchive's SECURE_SYMLINKS and Go's os.Root work the
 * same way). Every file-system call of the SafeWriter goes through such a handle, so each is checked
 * at the moment it runs: no decision about a path is remembered and acted on later.
 *
 * Symlinks already in the working directory (earlier caches, the job's checkout: attacker-controlled
 * too) are followed only by resolving them here, component by component, from the handle of the
 * directory that holds them; a target that leaves the root (absolute elsewhere, or `..` above it) or
 * a chain of more than 40 links is refused. Directories are never created through such a link's
 * target path, only below a directory it resolved to.
 *
 * Handles are cached (LRU, CACHE_MAX): a held handle stays the same directory even if its path is
 * swapped, which is the property wanted, and entries come in path order, so nearly every lookup is
 * a hit. A path that was used as a directory (`used`) is never replaced by the extraction, so a
 * cached handle cannot go stale through our own operations.
 */
import fs from 'node:fs';
import { UnsafeEntryError } from './errors.ts';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
const OPEN_DIR = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
/** Linux's own limit on symlinks followed in one lookup (MAXSYMLINKS). */
const MAX_HOPS = 40;
/** Directory handles kept open; paths arrive sorted, so a small cache is nearly always hit. */
const CACHE_MAX = 128;

/** The path that names `name` inside the directory held by `dirFd` (an openat equivalent). */
export function at(dirFd: number, name: string): string {
  return `/proc/self/fd/${dirFd}/${name}`;
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

export function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

interface Dir {
  fd: number;
  /** The directory's path from the root with every symlink resolved (for relative link targets). */
  phys: string;
}

/** Joins a relative link target to the directory holding the link; null when `..` climbs above the root. */
function joinInside(base: string, target: string): string | null {
  const parts = base === '' ? [] : base.split('/');
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return null;
      parts.pop();
    } else parts.push(part);
  }
  return parts.join('/');
}

export class ExtractRoot {
  /** The root's real path. */
  readonly path: string;
  private readonly rootDir: Dir;
  private readonly cache = new Map<string, Dir>();
  private last: { rel: string; dir: Dir } | null = null;
  private closed = false;
  /** Every path (from the root) that was looked up as a directory: never replaced by this extraction. */
  readonly used = new Set<string>();
  /** Directories this extraction created (by the path they were looked up under). */
  readonly created = new Set<string>();
  /** Handles that file-batches.ts's jobs use right now (fd → jobs): closed only once unpinned. */
  private readonly pins = new Map<number, number>();
  private readonly closeWhenUnpinned = new Set<number>();

  private constructor(real: string, fd: number) {
    this.path = real;
    this.rootDir = { fd, phys: '' };
  }

  static async open(root: string): Promise<ExtractRoot> {
    await fs.promises.mkdir(root, { recursive: true });
    const real = await fs.promises.realpath(root);
    const fd = fs.openSync(real, O_RDONLY | O_DIRECTORY);
    if (!fs.existsSync(`/proc/self/fd/${fd}`)) {
      fs.closeSync(fd);
      throw new Error('safe extraction needs Linux /proc/self/fd (to work relative to directory handles)');
    }
    return new ExtractRoot(real, fd);
  }

  /**
   * The handle of directory `rel` (creating missing directories when `create`), for immediate use:
   * it may be closed by a later call. `entry` names the archive entry in errors.
   */
  dir(entry: string, rel: string, create: boolean): number {
    if (this.closed) throw new Error('extraction already finished');
    return this.resolve(entry, rel, create, { n: 0 }).fd;
  }

  /** Like dir(), but a handle of the caller's own, to close when done. */
  openDir(entry: string, rel: string, create: boolean): number {
    return fs.openSync(`/proc/self/fd/${this.dir(entry, rel, create)}`, O_RDONLY | O_DIRECTORY);
  }

  private resolve(entry: string, rel: string, create: boolean, hops: { n: number }): Dir {
    if (rel === '') return this.rootDir;
    if (this.last?.rel === rel) return this.last.dir;
    const hit = this.cache.get(rel);
    if (hit) {
      this.cache.delete(rel);
      this.cache.set(rel, hit);
      this.last = { rel, dir: hit };
      return hit;
    }
    const parentRel = parentOf(rel);
    const parent = this.resolve(entry, parentRel, create, hops);
    const dir = this.openChild(entry, rel, parent, parentRel, create, hops);
    this.used.add(rel);
    this.cache.set(rel, dir);
    if (this.cache.size > CACHE_MAX) {
      const [oldest, d] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      this.release(d.fd);
    }
    this.last = { rel, dir };
    return dir;
  }

  private openChild(entry: string, rel: string, parent: Dir, parentRel: string, create: boolean, hops: { n: number }): Dir {
    const base = baseOf(rel);
    const p = at(parent.fd, base);
    const phys = parent.phys === '' ? base : `${parent.phys}/${base}`;
    // In a directory we made ourselves nothing exists yet: mkdir first saves a failing open.
    if (create && this.created.has(parentRel) && this.mkdir(p, rel)) return { fd: fs.openSync(p, OPEN_DIR), phys };
    try {
      return { fd: fs.openSync(p, OPEN_DIR), phys };
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT') {
        if (!create) throw Object.assign(new Error(`${rel}: no such directory`), { code: 'ENOENT' });
        this.mkdir(p, rel);
        return { fd: fs.openSync(p, OPEN_DIR), phys };
      }
      if (code !== 'ENOTDIR' && code !== 'ELOOP') throw err;
    }
    if (!fs.lstatSync(p).isSymbolicLink()) throw new Error(`${rel}: cannot create directory, a file is in the way`);
    if (++hops.n > MAX_HOPS) throw new UnsafeEntryError(entry, `too many levels of symlinks at ${JSON.stringify(rel)}`);
    const target = fs.readlinkSync(p);
    let inside: string | null;
    if (target.startsWith('/')) inside = target === this.path ? '' : target.startsWith(`${this.path}/`) ? joinInside('', target.slice(this.path.length + 1)) : null;
    else inside = joinInside(parent.phys, target);
    if (inside === null) throw new UnsafeEntryError(entry, `existing symlink ${JSON.stringify(rel)} points outside the working directory`);
    let dir: Dir;
    try {
      dir = this.resolve(entry, inside, false, hops);
    } catch (err) {
      if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') throw new UnsafeEntryError(entry, `existing symlink ${JSON.stringify(rel)} does not resolve to a directory`);
      throw err;
    }
    // A handle of its own (the cache closes each handle once), to the same directory.
    return { fd: fs.openSync(`/proc/self/fd/${dir.fd}`, O_RDONLY | O_DIRECTORY), phys: dir.phys };
  }

  /** mkdir; false when something is there already. */
  private mkdir(p: string, rel: string): boolean {
    try {
      fs.mkdirSync(p, 0o777);
      this.created.add(rel);
      return true;
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
      return false;
    }
  }

  /** Closes every handle; further calls fail (a closed descriptor number may be reused by another file). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.cache.values()) this.release(d.fd);
    this.cache.clear();
    this.last = null;
    this.release(this.rootDir.fd);
  }

  /**
   * Keeps the handle `fd` (from dir()) open while a job on another thread works in it: a handle
   * closed under the job could be reused by another open and the job would write there.
   */
  pin(fd: number): void {
    this.pins.set(fd, (this.pins.get(fd) ?? 0) + 1);
  }

  unpin(fd: number): void {
    const n = (this.pins.get(fd) ?? 1) - 1;
    if (n > 0) {
      this.pins.set(fd, n);
      return;
    }
    this.pins.delete(fd);
    if (this.closeWhenUnpinned.delete(fd)) fs.closeSync(fd);
  }

  private release(fd: number): void {
    if (this.pins.has(fd)) this.closeWhenUnpinned.add(fd);
    else fs.closeSync(fd);
  }
}
