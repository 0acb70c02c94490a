/**
 * Notices every way a configuration file gets replaced, not only writes in place:
 *  - `sed -i` and editors' atomic save write a new file and rename it over the old one;
 *  - a Kubernetes ConfigMap volume swaps a symlink (`config.toml` → `..data/config.toml`, and `..data`
 *    is renamed to point at a new timestamped directory).
 * fs.watch on the file itself follows its inode: after the first rename it watches a file that no
 * longer has a name, and every later edit goes unseen. So this watches the directories instead: the
 * one that holds the configured path (which sees the rename and the `..data` swap), and the one that
 * holds the file the path resolves to when it is a symlink (edits of the target). The symlink is
 * resolved again after every event, and the watches follow it. Events are debounced: one change
 * (temp file written, renamed, old one removed) calls `onChange` once.
 */
import { watch, realpathSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface ConfigWatch {
  /** Resolve the symlink again and re-open the directory watches (after SIGHUP, or a watch error). */
  rearm(): void;
  close(): void;
}

export interface WatchOptions {
  debounceMs?: number;
  /** A watch could not be opened (reason for the log); reloads still work with SIGHUP. */
  onError?: (message: string) => void;
}

export function watchConfigFile(file: string, onChange: () => void, opts: WatchOptions = {}): ConfigWatch {
  const path = resolve(file);
  const debounceMs = opts.debounceMs ?? 250;
  const watchers = new Map<string, FSWatcher>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  /** The names in `dir` whose change may change what `path` reads. */
  const relevant = (dir: string, name: string | null): boolean => {
    if (name === null) return true;
    if (dir === dirname(path) && (name === basename(path) || name.startsWith('..'))) return true; // ..data, ..data_tmp, ..2026_…
    return targets().some((t) => dirname(t) === dir && basename(t) === name);
  };

  const targets = (): string[] => {
    try {
      const real = realpathSync(path);
      return real === path ? [path] : [path, real];
    } catch {
      return [path]; // not there right now (between a remove and a rename): watch where it will come back
    }
  };

  const arm = (): void => {
    if (closed) return;
    const dirs = new Set(targets().map((t) => dirname(t)));
    for (const [dir, w] of watchers) {
      if (!dirs.has(dir)) {
        w.close();
        watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      try {
        const w = watch(dir, (_event, name) => {
          if (!relevant(dir, name === null ? null : String(name))) return;
          clearTimeout(timer);
          timer = setTimeout(() => {
            arm(); // the symlink may point elsewhere now
            onChange();
          }, debounceMs);
        });
        w.on('error', (err) => {
          w.close();
          watchers.delete(dir);
          opts.onError?.(`watching ${dir} failed: ${err.message}`);
        });
        watchers.set(dir, w);
      } catch (err) {
        opts.onError?.(`cannot watch ${dir}: ${(err as Error).message}`);
      }
    }
  };

  arm();
  return {
    rearm: arm,
    close() {
      closed = true;
      clearTimeout(timer);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
