// Plain JavaScript (types in helper-startup.d.ts): bin/cachegate.js loads it before any TypeScript,
// so that with a warm cache not even main.ts is stripped and Node's TypeScript loader never loads
// (measured, tar.zst of a node_modules copy: 146–153 MB peak RSS with the cache enabled from
// helper.ts, 132 MB enabled from the start, 170–176 MB without a cache).
/**
 * Node's compile cache for the helper commands: the TypeScript of each module is stripped and
 * compiled once, then read back (measured: `cache-extractor --help` 280 → 113 ms, see
 * docs/performance.md). Node keys each entry by the module's content, and the cache holds code
 * that will run, so it lives in a directory of the user's own (mode 0700), never a shared /tmp:
 * `$NODE_COMPILE_CACHE` when set (Node then enabled it already), else `$XDG_CACHE_HOME` (when
 * absolute) or `~/.cache`, under `cachegate/compile-cache`. `CACHEGATE_COMPILE_CACHE=0` turns it off. A
 * directory that cannot be created only costs the speed-up.
 */
import fs from 'node:fs';
import module from 'node:module';
import os from 'node:os';
import path from 'node:path';

/** @param {Record<string, string | undefined>} [env] @returns {string | undefined} */
export function compileCacheDir(env = process.env) {
  if (env.CACHEGATE_COMPILE_CACHE === '0' || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  let home;
  try {
    home = os.homedir();
  } catch {
    home = '';
  }
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : home ? path.join(home, '.cache') : '';
  return path.isAbsolute(base) ? path.join(base, 'cachegate', 'compile-cache') : undefined;
}

/** @param {Record<string, string | undefined>} [env] */
export function enableCompileCache(env = process.env) {
  if (typeof module.enableCompileCache !== 'function' || env.NODE_COMPILE_CACHE) return;
  const dir = compileCacheDir(env);
  if (!dir) return;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(dir);
    // Only a real directory of ours that nobody else can write to.
    if (!st.isDirectory() || (typeof process.getuid === 'function' && st.uid !== process.getuid()) || (st.mode & 0o022) !== 0) return;
  } catch {
    return;
  }
  module.enableCompileCache(dir);
}
