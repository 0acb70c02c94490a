/**
 * bench/archive — our archive core against the reference tools, in the same run, on a generated
 * tree like TESTING.md's (20,000 small source files in ~5,000 folders, three 100 MiB binaries, an
 * executable, a symlink). Wall time and peak RSS of every command come from `/usr/bin/time -v`
 * (else from the child's own resource usage).
 *
 *   node bench/archive.ts [--dir DIR] [--reps N] [--tree DIR] [--big] [--keep]
 *
 * Each side runs N times (default 3), interleaved A B B A …, and the medians are compared (see
 * pair()); extraction is measured away from large deletions (see settle()). --tree: an existing
 * tree instead of the generated one.
 * --big also archives and extracts a ~6 GB tree (6 × 1 GiB files + the small tree) and reports peak RSS.
 * Results: a table on stdout and bench/results/archive-<date>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const NODE = process.execPath;

async function childMain(argv: string[]): Promise<void> {
  const { selectFiles, createArchiveFile, extractArchive, limitYoungGeneration } = await import('../src/archive/index.ts');
  limitYoungGeneration(); // as the helper commands do (src/cli/helper.ts)
  const [op, a, b, format] = argv;
  if (op === 'tree') {
    await makeTree(a, Number(b)); // for bench/helper-memory.ts
    return;
  }
  if (op === 'create') {
    const sel = await selectFiles({ cwd: a, paths: ['.'] });
    await createArchiveFile(sel.entries, b, format as 'zip' | 'tarzstd', 'fast');
  } else {
    await extractArchive(a, b);
  }
  if (!fs.existsSync('/usr/bin/time')) process.stderr.write(`MAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
}

export interface Measure {
  wallS: number;
  rssMB: number;
  /** 1-minute load average when the command started (other people's work shows here). */
  load1: number;
  /** User + system CPU seconds (NaN without /usr/bin/time). */
  cpuS: number;
}

export function measure(cmd: string[], cwd?: string, env?: NodeJS.ProcessEnv): Measure {
  // flush dirty pages of earlier steps first, so that their writeback is not billed to this command
  spawnSync('sync');
  const useTime = fs.existsSync('/usr/bin/time');
  const argv = useTime ? ['/usr/bin/time', '-v', ...cmd] : cmd;
  const load1 = os.loadavg()[0];
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { cwd, env: env ? { ...process.env, ...env } : process.env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallS = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr) ?? /MAXRSS_KB=(\d+)/.exec(r.stderr);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const parsedWall = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : wallS;
  const user = /User time \(seconds\): ([\d.]+)/.exec(r.stderr);
  const sys = /System time \(seconds\): ([\d.]+)/.exec(r.stderr);
  const cpuS = user && sys ? Number(user[1]) + Number(sys[1]) : NaN;
  return { wallS: parsedWall, rssMB: m ? Number(m[1]) / 1024 : NaN, load1: Number(load1.toFixed(2)), cpuS };
}

/** Deterministic, moderately compressible bytes (6 bits of entropy per byte, with repeats). */
function binaryData(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = seed | 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeInt32LE(x & 0x3f3f3f3f, i);
  }
  // repeat every other 64 KiB block from earlier data (long-range matches)
  for (let off = 128 << 10; off + (64 << 10) <= size; off += 128 << 10) buf.copy(buf, off, off - (96 << 10), off - (32 << 10));
  return buf;
}

const WORDS = ['const', 'return', 'function', 'import', 'export', 'value', 'buffer', 'cache', 'archive', 'if', 'else', 'for', 'while', 'string', 'number', '=>', '{', '}', '(', ')', ';', 'await', 'async', 'let'];

export async function makeTree(root: string, bigFiles: number): Promise<void> {
  await fs.promises.mkdir(root, { recursive: true });
  let seed = 12345;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const dirs: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const depth = 1 + Math.floor(rnd() * 3);
    const parts = Array.from({ length: depth }, (_, k) => `m${k}_${Math.floor(rnd() * (k === 0 ? 40 : 12))}`);
    parts.push(`d${i}`);
    dirs.push(parts.join('/'));
  }
  for (const d of dirs) await fs.promises.mkdir(path.join(root, 'src', d), { recursive: true });
  const batch: Promise<void>[] = [];
  for (let i = 0; i < 20000; i++) {
    const len = 200 + Math.floor(rnd() * rnd() * 20000);
    const words: string[] = [];
    let n = 0;
    while (n < len) {
      const w = WORDS[Math.floor(rnd() * WORDS.length)];
      words.push(w);
      n += w.length + 1;
      if (rnd() < 0.1) words.push(`\n${' '.repeat(Math.floor(rnd() * 8))}`);
    }
    batch.push(fs.promises.writeFile(path.join(root, 'src', dirs[i % dirs.length], `f${i}.ts`), words.join(' ')));
    if (batch.length >= 64) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  await fs.promises.mkdir(path.join(root, 'bin'), { recursive: true });
  for (let i = 0; i < 3; i++) await fs.promises.writeFile(path.join(root, 'bin', `blob${i}.bin`), binaryData(100 << 20, 7 + i));
  for (let i = 0; i < bigFiles; i++) {
    const fh = await fs.promises.open(path.join(root, 'bin', `huge${i}.bin`), 'w');
    const block = binaryData(64 << 20, 100 + i);
    for (let k = 0; k < 16; k++) await fh.write(block);
    await fh.close();
  }
  await fs.promises.writeFile(path.join(root, 'bin', 'tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  await fs.promises.symlink('bin/tool', path.join(root, 'tool-link'));
}

export function du(p: string): number {
  const r = spawnSync('du', ['-sb', p], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]);
}

interface Row {
  name: string;
  /** Every repetition, in the order run. */
  ours: Measure[];
  ref: Measure[];
  /** Medians of wall time; peak RSS is the maximum over the repetitions. */
  oursMedianS: number;
  refMedianS: number;
  oursPeakMB: number;
  ratio: number;
  target: number;
  ok: boolean;
}

export const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/**
 * This disk is ext4 without a journal, where creating a file skips every inode deleted in the last
 * 60 s (360 s while its inode table block is dirty) one by one (`recently_deleted()` in
 * fs/ext4/ialloc.c, seen with perf: 50% of unzip's time in it right after a large rm). A command run
 * after deleting a 27,000-file tree was up to 5× slower than the same command a minute later, so
 * trees are deleted only after a pair is measured, followed by sync and a wait past that window.
 */
let lastDelete = 0;
const QUIET_AFTER_DELETE_MS = 65_000;

export function rm(p: string): void {
  if (!fs.existsSync(p)) return;
  const tree = fs.lstatSync(p).isDirectory();
  fs.rmSync(p, { recursive: true, force: true });
  if (tree) lastDelete = Date.now();
}

export function settle(): void {
  spawnSync('sync');
  const wait = lastDelete + QUIET_AFTER_DELETE_MS - Date.now();
  if (wait > 0) {
    process.stderr.write(`  (waiting ${(wait / 1000).toFixed(0)} s for the deleted inodes to age)\n`);
    spawnSync('sleep', [String(wait / 1000)]);
  }
}

async function benchAll(work: string, src: string, reps: number): Promise<Row[]> {
  const rows: Row[] = [];
  const out = (n: string): string => path.join(work, n);
  /**
   * Runs ours and the reference `reps` times each, interleaved A B B A A B …, so that neither side
   * gets the quiet or the busy end of the run; every repetition is kept.
   */
  const pair = (name: string, target: number, oursCmd: (i: number) => Measure, refCmd: (i: number) => Measure): void => {
    const ours: Measure[] = [];
    const ref: Measure[] = [];
    for (let i = 0; i < reps; i++) {
      if (i % 2 === 0) {
        ours.push(oursCmd(i));
        ref.push(refCmd(i));
      } else {
        ref.push(refCmd(i));
        ours.push(oursCmd(i));
      }
    }
    const oursMedianS = median(ours.map((m) => m.wallS));
    const refMedianS = median(ref.map((m) => m.wallS));
    const ratio = oursMedianS / refMedianS;
    const oursPeakMB = Math.max(...ours.map((m) => m.rssMB));
    rows.push({ name, ours, ref, oursMedianS, refMedianS, oursPeakMB, ratio, target, ok: ratio <= target });
    const list = (ms: Measure[]): string => ms.map((m) => m.wallS.toFixed(2)).join(' ');
    process.stderr.write(`  ${name}: ours ${list(ours)} s (peak ${oursPeakMB.toFixed(0)} MB), ref ${list(ref)} s → ${ratio.toFixed(2)}×\n`);
  };
  pair('tarzstd create (fast)', 2.0,
    () => (rm(out('ours.tar.zst')), measure([NODE, SELF, '--child', 'create', src, out('ours.tar.zst'), 'tarzstd'])),
    () => (rm(out('ref.tar.zst')), measure(['tar', '-I', 'zstd -1 -T0', '-cf', out('ref.tar.zst'), '.'], src)));
  pair('zip create (fast)', 1.0,
    () => (rm(out('ours.zip')), measure([NODE, SELF, '--child', 'create', src, out('ours.zip'), 'zip'])),
    () => (rm(out('ref.zip')), measure(['zip', '-r', '-q', '-y', '-1', out('ref.zip'), '.'], src)));
  // Every extraction goes to its own new directory; they are deleted after the pair (see settle()).
  const fresh = (n: string): string => {
    const d = out(n);
    fs.mkdirSync(d);
    return d;
  };
  const extractPair = (name: string, target: number, archive: string, refCmd: (dir: string) => string[]): void => {
    settle();
    pair(name, target,
      (i) => measure([NODE, SELF, '--child', 'extract', archive, fresh(`x-ours-${i}`)]),
      (i) => {
        const dir = fresh(`x-ref-${i}`);
        return measure(refCmd(dir));
      });
    const d = spawnSync('diff', ['-r', '--no-dereference', out('x-ours-0'), out('x-ref-0')]).status;
    for (let i = 0; i < reps; i++) {
      rm(out(`x-ours-${i}`));
      rm(out(`x-ref-${i}`));
    }
    if (d !== 0) throw new Error(`${name}: extracted trees differ between ours and the reference tool`);
  };
  extractPair('zip extract', 1.0, out('ours.zip'), (dir) => ['unzip', '-q', out('ours.zip'), '-d', dir]);
  extractPair('tar.zst extract', 1.5, out('ours.tar.zst'), (dir) => ['tar', '-I', 'zstd', '-xf', out('ours.tar.zst'), '-C', dir]);
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const base = opt('--dir') ?? os.tmpdir();
  const reps = Number(opt('--reps') ?? 3);
  const work = fs.mkdtempSync(path.join(base, 'cg-bench-archive-'));
  const given = opt('--tree');
  const src = given ? path.resolve(given) : path.join(work, 'tree');
  try {
    if (!given) {
      process.stderr.write(`generating tree in ${src} ...\n`);
      await makeTree(src, 0);
    }
    spawnSync('sync');
    const treeBytes = du(src);
    const results: Record<string, unknown> = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.availableParallelism(),
      loadavgAtStart: os.loadavg(),
      tree: { bytes: treeBytes },
      method: `${reps} interleaved repetitions per side (A B B A …), medians; extraction into new directories, deleted after the pair, then sync and ${QUIET_AFTER_DELETE_MS / 1000} s`,
    };
    // Warm the page cache. Not `tar -cf /dev/null`: GNU tar notices /dev/null and reads no file
    // contents, which left the first command of every run (ours) reading the tree from disk.
    spawnSync('sh', ['-c', 'tar -cf - . | cat > /dev/null'], { cwd: src });
    const rows = await benchAll(work, src, reps);
    results.rows = rows;
    results.loadavgAtEnd = os.loadavg();
    const sizes = { oursZip: fs.statSync(path.join(work, 'ours.zip')).size, refZip: fs.statSync(path.join(work, 'ref.zip')).size, oursTarZst: fs.statSync(path.join(work, 'ours.tar.zst')).size, refTarZst: fs.statSync(path.join(work, 'ref.tar.zst')).size };
    results.archiveSizes = sizes;
    if (args.includes('--big')) {
      for (const f of fs.readdirSync(work)) if (path.join(work, f) !== src) rm(path.join(work, f));
      const big = path.join(work, 'big');
      process.stderr.write('generating the ~6 GB tree ...\n');
      await makeTree(big, 6);
      const bytes = du(big);
      const measured: Record<string, Measure & { archiveBytes?: number }> = {};
      for (const format of ['tarzstd', 'zip'] as const) {
        const file = path.join(work, `big.${format}`);
        measured[`${format} create`] = { ...measure([NODE, SELF, '--child', 'create', big, file, format]), archiveBytes: fs.statSync(file).size };
        settle();
        const dst = path.join(work, 'x-big');
        measured[`${format} extract`] = measure([NODE, SELF, '--child', 'extract', file, dst]);
        rm(dst);
        rm(file);
      }
      rm(big);
      results.big = { treeBytes: bytes, ...measured };
    }
    const lines = [
      `| operation | ours (median of ${reps}) | ours peak RSS | reference (median of ${reps}) | ratio | target |`,
      '|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.name} | ${r.oursMedianS.toFixed(2)} s | ${r.oursPeakMB.toFixed(0)} MB | ${r.refMedianS.toFixed(2)} s | ${r.ratio.toFixed(2)}× | ≤ ${r.target.toFixed(1)}× ${r.ok ? '✓' : '✗'} |`),
    ];
    console.log(`tree: ${(treeBytes / 1e6).toFixed(0)} MB, load average ${(results.loadavgAtStart as number[]).map((l) => l.toFixed(2)).join(' ')} at start, ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`);
    console.log(lines.join('\n'));
    console.log(`archive sizes: ours zip ${sizes.oursZip}, zip -1 ${sizes.refZip}, ours tar.zst ${sizes.oursTarZst}, tar+zstd -1 ${sizes.refTarZst}`);
    if (results.big) console.log('big tree:', JSON.stringify(results.big, null, 2));
    const dir = path.join(path.dirname(SELF), 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `archive-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    console.log(`written ${path.relative(process.cwd(), file)}`);
  } finally {
    if (!args.includes('--keep')) rm(work);
  }
}

// Also a library (bench/helper-vs-gitlab.ts, bench/zip-create.ts reuse the tree generator and the
// measuring): it runs only as the entry script, whose own children it starts with --child.
if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  if (process.argv[2] === '--child') await childMain(process.argv.slice(3));
  else await main();
}
