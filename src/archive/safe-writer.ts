/**
 * The only place extraction touches the file system. It guarantees that nothing is written
 * outside the working directory:
 * - names are validated: no absolute names, no `..` components, no NUL;
 * - no entry may pass through a symlink of the archive (symlinks are created last, after every
 *   file and directory, and a symlink whose path is already a directory we created is refused);
 * - a symlink that was already in the working directory is only traversed when its real path
 *   stays inside the working directory;
 * - files are created with O_CREAT|O_EXCL|O_NOFOLLOW: an existing file or symlink at the final
 *   path is removed first, never written through;
 * - a file whose data fails (CRC, size, truncated archive, I/O error) is removed: no half-written
 *   file is left behind.
 */
import fs from 'node:fs';
import path from 'node:path';

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

const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW;
const UMASK = process.umask();
const writeAsync = (fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> =>
  new Promise((resolve, reject) => fs.write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));

/** Validates an archive name; returns the clean relative path ('' for the root itself). */
export function cleanEntryName(name: string): string {
  if (name.includes('\0')) throw new UnsafeEntryError(name, 'name contains a NUL byte');
  if (name.startsWith('/')) throw new UnsafeEntryError(name, 'absolute names are refused');
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new UnsafeEntryError(name, 'names with ".." are refused (outside the working directory)');
    parts.push(part);
  }
  return parts.join('/');
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

interface DirMeta {
  rel: string;
  mode: number;
  mtimeMs: number;
}

interface LinkMeta {
  rel: string;
  target: string;
  mtimeMs: number;
}

/**
 * Where a reader hands the entries it has decoded (and, for data, verified): the SafeWriter writes
 * them to the working directory; verify.ts's sink only lets the reader check them.
 */
export interface EntrySink {
  /** Validates an entry name; returns its clean relative path. */
  check(name: string): string;
  dir(rel: string, mode: number, mtimeMs: number): void;
  symlink(name: string, rel: string, target: string, mtimeMs: number): void;
  hardlink(name: string, rel: string, targetName: string): void;
  /** A complete, verified small file. */
  writeFileSync(rel: string, mode: number, mtimeMs: number, data: Buffer): void;
  /**
   * A large file: `produce` writes chunks through `write` (or at offsets from 0 to the file's `fd`,
   * null when nothing is written) and throws when the data turns out to be bad.
   */
  streamFile(rel: string, mode: number, mtimeMs: number, produce: (write: (chunk: Buffer) => Promise<void>, fd: number | null) => Promise<void>): Promise<void>;
  /** After every entry: deferred links and directory metadata. */
  finish(): Promise<void>;
}

export class SafeWriter implements EntrySink {
  readonly root: string;
  private readonly dirs = new Set<string>();
  /** Directories this extraction created (mode 0777 & ~umask): no lstat needed at the end. */
  private readonly createdDirs = new Set<string>();
  private readonly dirMeta = new Map<string, DirMeta>();
  private readonly symlinks = new Map<string, LinkMeta>();
  private readonly hardlinks: LinkMeta[] = [];
  private readonly files = new Set<string>();
  private readonly knownSymlinks: Set<string>;
  private readonly now = Date.now() / 1000;

  private constructor(root: string, knownSymlinks: Set<string>) {
    this.root = root;
    this.knownSymlinks = knownSymlinks;
  }

  /** `knownSymlinks`: every symlink name of the archive when known up front (zip central directory). */
  static async create(root: string, knownSymlinks: Iterable<string> = []): Promise<SafeWriter> {
    await fs.promises.mkdir(root, { recursive: true });
    const real = await fs.promises.realpath(root);
    return new SafeWriter(real, new Set(knownSymlinks));
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  private inside(real: string): boolean {
    return real === this.root || real.startsWith(this.root + path.sep);
  }

  /** Throws when a proper prefix of `rel` is a symlink of the archive. */
  private checkPrefixes(name: string, rel: string): void {
    let i = rel.indexOf('/');
    while (i >= 0) {
      const prefix = rel.slice(0, i);
      if (this.symlinks.has(prefix) || this.knownSymlinks.has(prefix)) {
        throw new UnsafeEntryError(name, `path goes through the archive's symlink ${JSON.stringify(prefix)}`);
      }
      i = rel.indexOf('/', i + 1);
    }
  }

  /** Validates an entry name for a file/dir/link; returns its relative path. */
  check(name: string): string {
    const rel = cleanEntryName(name);
    this.checkPrefixes(name, rel);
    return rel;
  }

  /** Creates the directories of `rel` (synchronously: mkdir is rare and cheap, once per directory). */
  private ensureDir(name: string, rel: string): void {
    if (rel === '' || this.dirs.has(rel)) return;
    this.ensureDir(name, parentOf(rel));
    const abs = this.abs(rel);
    try {
      fs.mkdirSync(abs, 0o777);
      this.dirs.add(rel);
      this.createdDirs.add(rel);
      return;
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
    }
    const st = fs.lstatSync(abs);
    if (st.isSymbolicLink()) {
      let real: string;
      try {
        real = fs.realpathSync(abs);
      } catch {
        throw new UnsafeEntryError(name, `existing symlink ${JSON.stringify(rel)} does not resolve`);
      }
      if (!this.inside(real)) throw new UnsafeEntryError(name, `existing symlink ${JSON.stringify(rel)} points outside the working directory`);
      if (!fs.statSync(abs).isDirectory()) throw new Error(`${rel}: not a directory`);
    } else if (!st.isDirectory()) {
      throw new Error(`${rel}: cannot create directory, a file is in the way`);
    }
    this.dirs.add(rel);
  }

  /** Creates the file exclusively, replacing (never following) whatever is at the path; returns an fd. */
  private createFile(rel: string, mode: number): number {
    this.ensureDir(rel, parentOf(rel));
    const abs = this.abs(rel);
    for (let attempt = 0; ; attempt++) {
      try {
        return fs.openSync(abs, CREATE_FLAGS, mode & 0o777);
      } catch (err) {
        if (errCode(err) !== 'EEXIST' || attempt > 0) throw err;
        const st = fs.lstatSync(abs);
        if (st.isDirectory()) throw new Error(`${rel}: cannot write file, a directory is in the way`);
        fs.unlinkSync(abs);
      }
    }
  }

  private finishFile(fd: number, mode: number, mtimeMs: number): void {
    if ((mode & 0o7777) !== (mode & 0o777 & ~UMASK)) fs.fchmodSync(fd, mode & 0o7777);
    fs.futimesSync(fd, this.now, mtimeMs / 1000);
  }

  private discard(fd: number, rel: string): void {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    try {
      fs.unlinkSync(this.abs(rel));
    } catch {
      // gone
    }
  }

  /**
   * Writes a complete, already verified file. Synchronous on purpose: for many small files the
   * threadpool round trips cost more than the system calls (measured: see docs/archive.md).
   */
  writeFileSync(rel: string, mode: number, mtimeMs: number, data: Buffer): void {
    const fd = this.createFile(rel, mode);
    try {
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, off);
      this.finishFile(fd, mode, mtimeMs);
    } catch (err) {
      this.discard(fd, rel);
      throw err;
    }
    fs.closeSync(fd);
    this.files.add(rel);
  }

  /**
   * Streams a file: `produce` writes chunks through the given function and must throw when the
   * data turns out to be bad (then the file is removed).
   */
  async streamFile(rel: string, mode: number, mtimeMs: number, produce: (write: (chunk: Buffer) => Promise<void>, fd: number | null) => Promise<void>): Promise<void> {
    const fd = this.createFile(rel, mode);
    let pos = 0;
    try {
      await produce(async (chunk) => {
        let off = 0;
        while (off < chunk.length) {
          const n = await writeAsync(fd, chunk, off, chunk.length - off, pos);
          off += n;
          pos += n;
        }
      }, fd);
      this.finishFile(fd, mode, mtimeMs);
    } catch (err) {
      this.discard(fd, rel);
      throw err;
    }
    fs.closeSync(fd);
    this.files.add(rel);
  }

  dir(rel: string, mode: number, mtimeMs: number): void {
    if (rel === '') return;
    this.ensureDir(rel, rel);
    this.dirMeta.set(rel, { rel, mode, mtimeMs });
  }

  /** Records a symlink; it is created in finish(), after everything else. */
  symlink(name: string, rel: string, target: string, mtimeMs: number): void {
    if (rel === '') throw new UnsafeEntryError(name, 'a symlink cannot replace the working directory');
    if (target.includes('\0')) throw new UnsafeEntryError(name, 'symlink target contains a NUL byte');
    this.symlinks.set(rel, { rel, target, mtimeMs });
  }

  /** Records a hard link (tar); its target must be a file extracted by this run. */
  hardlink(name: string, rel: string, targetName: string): void {
    const target = cleanEntryName(targetName);
    this.checkPrefixes(targetName, target);
    if (rel === '' || target === '') throw new UnsafeEntryError(name, 'invalid hard link');
    this.hardlinks.push({ rel, target, mtimeMs: 0 });
  }

  /** Call after every file task has settled: hard links, symlinks, then directory modes and mtimes. */
  async finish(): Promise<void> {
    for (const h of this.hardlinks) {
      if (!this.files.has(h.target) || this.symlinks.has(h.target)) {
        throw new UnsafeEntryError(h.rel, `hard link target ${JSON.stringify(h.target)} is not a file of this archive`);
      }
      this.checkPrefixes(h.rel, h.rel);
      this.ensureDir(h.rel, parentOf(h.rel));
      const abs = this.abs(h.rel);
      await fs.promises.unlink(abs).catch(() => {});
      await fs.promises.link(this.abs(h.target), abs);
    }
    for (const l of this.symlinks.values()) {
      this.checkPrefixes(l.rel, l.rel);
      if (this.dirs.has(l.rel)) throw new UnsafeEntryError(l.rel, 'symlink would replace a directory that entries were extracted into');
      this.ensureDir(l.rel, parentOf(l.rel));
      const abs = this.abs(l.rel);
      for (let attempt = 0; ; attempt++) {
        try {
          await fs.promises.symlink(l.target, abs);
          break;
        } catch (err) {
          if (errCode(err) !== 'EEXIST' || attempt > 0) throw err;
          const st = await fs.promises.lstat(abs);
          if (st.isDirectory()) throw new Error(`${l.rel}: cannot create symlink, a directory is in the way`);
          await fs.promises.unlink(abs);
        }
      }
      await fs.promises.lutimes(abs, this.now, l.mtimeMs / 1000).catch(() => {});
    }
    // Synchronous: ~7,000 directories × (lstat, chmod, utimes) as promises were 21,000 threadpool
    // round trips (seconds on the bench tree, found with strace); synchronously, and without the
    // lstat and chmod where we created the directory ourselves, they take a fraction of that.
    const dirs = [...this.dirMeta.values()].sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
    const defaultMode = 0o777 & ~UMASK;
    for (const d of dirs) {
      const abs = this.abs(d.rel);
      if (!this.createdDirs.has(d.rel)) {
        const st = fs.lstatSync(abs);
        if (!st.isDirectory()) continue; // an existing in-tree symlink we went through: leave its target alone
        if ((st.mode & 0o7777) !== (d.mode & 0o7777)) fs.chmodSync(abs, d.mode & 0o7777);
      } else if ((d.mode & 0o7777) !== defaultMode) {
        fs.chmodSync(abs, d.mode & 0o7777);
      }
      fs.utimesSync(abs, this.now, d.mtimeMs / 1000);
    }
  }
}
