/**
 * File selection for cache-archiver, as GitLab Runner's fileArchiver does it:
 * every --path is variable-expanded, globbed (doublestar, `**`), and each match is walked
 * recursively without following symlinks; --untracked adds `git ls-files -o -z`; every
 * candidate is checked against --exclude. Paths outside the working directory are refused with a
 * warning; symlinks are kept as links; sockets, devices and pipes are skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Stats } from 'node:fs';
import type { EntryType, SourceEntry } from './entry.ts';
import { globToRegExp, hasMeta, splitPattern } from './glob.ts';

export interface SelectOptions {
  /** Working directory (default process.cwd()). */
  cwd?: string;
  paths: readonly string[];
  exclude?: readonly string[];
  untracked?: boolean;
  env?: Record<string, string | undefined>;
  onWarning?: (message: string) => void;
  onInfo?: (message: string) => void;
}

export interface Selection {
  /** Sorted by name. */
  entries: SourceEntry[];
  /** Newest mtime among the entries (0 when none), for change detection. */
  newestMtimeMs: number;
  /** Exclude pattern → number of paths it excluded. */
  excluded: Map<string, number>;
  /** Sockets, devices and pipes that were skipped. */
  skippedSpecial: number;
}

/** os.ExpandEnv: `$VAR` and `${VAR}`; unknown variables expand to ''. */
export function expandVars(s: string, env: Record<string, string | undefined>): string {
  return s.replace(/\$\{([^}]*)\}|\$([A-Za-z0-9_]+)/g, (_m, a: string | undefined, b: string | undefined) => env[a ?? b ?? ''] ?? '');
}

const toSlash = (p: string): string => p.split(path.sep).join('/');

export async function selectFiles(opts: SelectOptions): Promise<Selection> {
  const wd = path.resolve(opts.cwd ?? process.cwd());
  const env = opts.env ?? process.env;
  const warn = opts.onWarning ?? ((): void => {});
  const info = opts.onInfo ?? ((): void => {});
  // Compact records, not the Stats: ~42,000 Stats objects were most of the heap while selecting.
  const files = new Map<string, SelectedEntry>();
  const excluded = new Map<string, number>();
  let skippedSpecial = 0;

  /** Relative path inside wd, or null when outside. */
  const relInProject = (p: string): string | null => {
    const rel = toSlash(path.relative(wd, path.resolve(wd, p)));
    if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) return null;
    return rel === '' ? '.' : rel;
  };

  const excludes: Array<{ raw: string; re: RegExp }> = [];
  for (const raw of opts.exclude ?? []) {
    const expanded = toSlash(expandVars(raw, env));
    const rel = relInProject(expanded);
    if (rel === null) {
      warn(`isExcluded: artifact path is not a subpath of project directory: ${raw}`);
      continue;
    }
    excludes.push({ raw, re: globToRegExp(rel) });
  }
  const isExcluded = (rel: string): string | null => {
    for (const x of excludes) if (x.re.test(rel)) return x.raw;
    return null;
  };

  /** Adds one path (already relative to wd); returns true when it was added. */
  const consider = (rel: string, st: Stats): boolean => {
    if (rel === '.' || rel === '') return false;
    const rule = isExcluded(rel);
    if (rule !== null) {
      excluded.set(rule, (excluded.get(rule) ?? 0) + 1);
      return false;
    }
    if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) {
      skippedSpecial++;
      return false;
    }
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
    files.set(rel, new SelectedEntry(wd, rel, type, st, type === 'file' && st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined));
    return true;
  };

  // Synchronous on purpose: one lstat per path is a few microseconds, while tens of thousands of
  // pending promises cost more time and tens of MB of memory (measured, see docs/archive.md).
  // `rel` is normalized (path.relative, readdir names, posix.normalize): plain concatenation, not
  // path.join, which was 8 % of the selection's CPU on the bench tree (docs/archive.md "Session 8")
  const abs = (rel: string): string => `${wd}/${rel}`;
  const lstat = (rel: string): Stats | null => {
    try {
      return fs.lstatSync(abs(rel), { throwIfNoEntry: false }) ?? null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      warn(`${rel}: ${(err as Error).message}`);
      return null;
    }
  };

  /**
   * Walks `rel` depth-first (not following symlinks), calling `visit` for every path; `visit`
   * returns true to also descend (for directories).
   */
  const walk = (rootRel: string, rootStat: Stats, visit: (rel: string, st: Stats) => boolean): void => {
    const stack: string[] = [];
    if (visit(rootRel, rootStat) && rootStat.isDirectory()) stack.push(rootRel);
    while (stack.length > 0) {
      const dirRel = stack.pop()!;
      let names: string[];
      try {
        names = fs.readdirSync(abs(dirRel));
      } catch (err) {
        warn(`Walking ${dirRel}: ${(err as Error).message}`);
        continue;
      }
      for (const name of names) {
        const childRel = dirRel === '.' ? name : `${dirRel}/${name}`;
        const st = lstat(childRel);
        if (st && visit(childRel, st) && st.isDirectory()) stack.push(childRel);
      }
    }
  };

  const processPath = async (raw: string): Promise<void> => {
    const expanded = toSlash(expandVars(raw, env));
    const { base, rest } = splitPattern(expanded);
    const relBase = relInProject(base);
    if (relBase === null) {
      warn(`processPath: artifact path is not a subpath of project directory: ${expanded}`);
      return;
    }
    const pattern = path.posix.normalize(rest === '' ? relBase : relBase === '.' ? rest : `${relBase}/${rest}`).replace(/\/$/, '');
    let found = 0;
    const addAll = (rel: string, st: Stats): boolean => {
      if (consider(rel, st)) found++;
      return true; // walk children even of excluded directories, as upstream does
    };
    if (!hasMeta(pattern)) {
      const st = lstat(pattern);
      if (st) walk(pattern, st, addAll);
    } else {
      const re = globToRegExp(pattern);
      const baseStat = lstat(relBase);
      if (baseStat?.isDirectory()) {
        const matched: Array<[string, Stats]> = [];
        walk(relBase, baseStat, (rel, st) => {
          if (re.test(rel)) {
            matched.push([rel, st]);
            return false; // the match is walked whole below
          }
          return true;
        });
        for (const [rel, st] of matched) walk(rel, st, addAll);
      }
    }
    if (found === 0) {
      warn(`${pattern}: no matching files. Ensure that the artifact path is relative to the working directory (${wd})`);
    } else {
      info(`${pattern}: found ${found} matching artifact files and directories`);
    }
  };

  for (const p of opts.paths) await processPath(p);

  if (opts.untracked) {
    const out = await gitUntracked(wd).catch((err: unknown) => {
      warn(`untracked: ${(err as Error).message}`);
      return null;
    });
    if (out !== null) {
      let found = 0;
      for (const p of out) {
        const rel = relInProject(p);
        if (rel === null) {
          warn(`${p}: not supported: outside build directory`);
          continue;
        }
        const st = lstat(rel);
        if (st && consider(rel, st)) found++;
      }
      if (found === 0) warn('untracked: no files');
      else info(`untracked: found ${found} files`);
    }
  }

  for (const [rule, count] of excluded) info(`${rule}: excluded ${count} files`);

  const names = [...files.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let newest = 0;
  const entries: SourceEntry[] = names.map((name) => {
    const e = files.get(name)!;
    if (e.mtimeMs > newest) newest = e.mtimeMs;
    return e;
  });
  return { entries, newestMtimeMs: newest, excluded, skippedSpecial };
}

/**
 * One selected path. Its absolute path is made when a writer asks for it, not kept: a string from
 * `path.join` per entry was ~685 of the ~920 bytes of heap each entry held (measured on a copy of
 * node_modules, 42,666 entries: 39 MB of heap after selection, 10 MB with this class; see
 * docs/archive.md "Memory bound").
 */
class SelectedEntry implements SourceEntry {
  readonly name: string;
  readonly type: EntryType;
  readonly mode: number;
  readonly mtimeMs: number;
  readonly size: number;
  readonly uid: number;
  readonly gid: number;
  readonly inode: string | undefined;
  private readonly root: string;

  constructor(root: string, name: string, type: EntryType, st: Stats, inode: string | undefined) {
    this.root = root;
    this.name = name;
    this.type = type;
    this.mode = st.mode & 0o7777;
    this.mtimeMs = st.mtimeMs;
    this.size = type === 'file' ? st.size : 0;
    this.uid = st.uid;
    this.gid = st.gid;
    this.inode = inode;
  }

  get absPath(): string {
    return path.join(this.root, this.name);
  }
}

function gitUntracked(cwd: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['ls-files', '-o', '-z'], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`git ls-files exited with ${code}`));
      resolve(Buffer.concat(chunks).toString('utf8').split('\0').filter((s) => s !== ''));
    });
  });
}
