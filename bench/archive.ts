/**
 * bench/archive — our archive core against the reference tools, in the same run, on a generated
 * tree like TESTING.md's (20,000 small source files in ~5,000 folders, three 100 MiB binaries, an
 * executable, a symlink). Wall time and peak RSS of every command come from `/usr/bin/time -v`
 * (else from the child's own resource usage).
 *
 *   node bench/archive.ts [--dir DIR] [--runs N] [--big] [--keep]
 *
 * Every command runs twice (A B B A) and the faster run counts (see pair()).
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
  const { selectFiles, createArchiveFile, extractArchive } = await import('../src/archive/index.ts');
  const [op, a, b, format] = argv;
  if (op === 'create') {
    const sel = await selectFiles({ cwd: a, paths: ['.'] });
    await createArchiveFile(sel.entries, b, format as 'zip' | 'tarzstd', 'fast');
  } else {
    await extractArchive(a, b);
  }
  if (!fs.existsSync('/usr/bin/time')) process.stderr.write(`MAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
}

interface Measure {
  wallS: number;
  rssMB: number;
}

function measure(cmd: string[], cwd?: string): Measure {
  // flush dirty pages of earlier steps first, so that their writeback is not billed to this command
  spawnSync('sync');
  const useTime = fs.existsSync('/usr/bin/time');
  const argv = useTime ? ['/usr/bin/time', '-v', ...cmd] : cmd;
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallS = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr) ?? /MAXRSS_KB=(\d+)/.exec(r.stderr);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const parsedWall = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : wallS;
  return { wallS: parsedWall, rssMB: m ? Number(m[1]) / 1024 : NaN };
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

async function makeTree(root: string, bigFiles: number): Promise<void> {
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

function du(p: string): number {
  const r = spawnSync('du', ['-sb', p], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]);
}

interface Row {
  name: string;
  ours: Measure;
  ref: Measure;
  ratio: number;
  target: number;
  ok: boolean;
}

function rm(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

async function benchOnce(work: string, src: string, oursFirst: boolean): Promise<Row[]> {
  const rows: Row[] = [];
  const out = (n: string): string => path.join(work, n);
  const pair = (name: string, target: number, oursCmd: () => Measure, refCmd: () => Measure): void => {
    // Each side runs twice, in the order A B B A (A = the reference in odd runs, ours in even
    // ones), and the faster of its two runs counts: on this machine the first command after a
    // large delete or write (ext4 with online discard, other people's load) is often much slower,
    // whichever tool it is.
    const best = (a: Measure, b: Measure): Measure => (a.wallS <= b.wallS ? { wallS: a.wallS, rssMB: Math.max(a.rssMB, b.rssMB) } : { wallS: b.wallS, rssMB: Math.max(a.rssMB, b.rssMB) });
    let ours: Measure;
    let ref: Measure;
    if (oursFirst) {
      const o1 = oursCmd();
      const r1 = refCmd();
      const r2 = refCmd();
      const o2 = oursCmd();
      ours = best(o1, o2);
      ref = best(r1, r2);
    } else {
      const r1 = refCmd();
      const o1 = oursCmd();
      const o2 = oursCmd();
      const r2 = refCmd();
      ours = best(o1, o2);
      ref = best(r1, r2);
    }
    const ratio = ours.wallS / ref.wallS;
    rows.push({ name, ours, ref, ratio, target, ok: ratio <= target });
    process.stderr.write(`  ${name}: ours ${ours.wallS.toFixed(2)} s / ${ours.rssMB.toFixed(0)} MB, ref ${ref.wallS.toFixed(2)} s / ${ref.rssMB.toFixed(0)} MB\n`);
  };
  pair('tarzstd create (fast)', 2.0,
    () => (rm(out('ours.tar.zst')), measure([NODE, SELF, '--child', 'create', src, out('ours.tar.zst'), 'tarzstd'])),
    () => (rm(out('ref.tar.zst')), measure(['tar', '-I', 'zstd -1 -T0', '-cf', out('ref.tar.zst'), '.'], src)));
  pair('zip create (fast)', 1.0,
    () => (rm(out('ours.zip')), measure([NODE, SELF, '--child', 'create', src, out('ours.zip'), 'zip'])),
    () => (rm(out('ref.zip')), measure(['zip', '-r', '-q', '-y', '-1', out('ref.zip'), '.'], src)));
  const x = (n: string): string => {
    const d = out(n);
    rm(d);
    fs.mkdirSync(d);
    return d;
  };
  pair('zip extract', 1.0,
    () => measure([NODE, SELF, '--child', 'extract', out('ours.zip'), x('x-ours')]),
    () => measure(['unzip', '-q', out('ours.zip'), '-d', x('x-ref')]));
  const diffZip = spawnSync('diff', ['-r', '--no-dereference', out('x-ours'), out('x-ref')]).status;
  rm(out('x-ours'));
  rm(out('x-ref'));
  pair('tar.zst extract', 1.5,
    () => measure([NODE, SELF, '--child', 'extract', out('ours.tar.zst'), x('x-ours')]),
    () => measure(['tar', '-I', 'zstd', '-xf', out('ours.tar.zst'), '-C', x('x-ref')]));
  const diffTar = spawnSync('diff', ['-r', '--no-dereference', out('x-ours'), out('x-ref')]).status;
  if (diffZip !== 0 || diffTar !== 0) throw new Error('extracted trees differ between ours and the reference tool');
  rm(out('x-ours'));
  rm(out('x-ref'));
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const base = opt('--dir') ?? os.tmpdir();
  const runs = Number(opt('--runs') ?? 1);
  const work = fs.mkdtempSync(path.join(base, 'cg-bench-archive-'));
  const src = path.join(work, 'tree');
  try {
    process.stderr.write(`generating tree in ${src} ...\n`);
    await makeTree(src, 0);
    spawnSync('sync');
    const treeBytes = du(src);
    const results: Record<string, unknown> = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.availableParallelism(),
      loadavg: os.loadavg(),
      tree: { files: 20_005, bytes: treeBytes },
      runs: [] as Row[][],
    };
    // warm the page cache
    spawnSync('tar', ['-cf', '/dev/null', '.'], { cwd: src });
    for (let r = 0; r < runs; r++) {
      process.stderr.write(`run ${r + 1}/${runs}\n`);
      (results.runs as Row[][]).push(await benchOnce(work, src, r % 2 === 1));
    }
    const sizes = { oursZip: fs.statSync(path.join(work, 'ours.zip')).size, refZip: fs.statSync(path.join(work, 'ref.zip')).size, oursTarZst: fs.statSync(path.join(work, 'ours.tar.zst')).size, refTarZst: fs.statSync(path.join(work, 'ref.tar.zst')).size };
    results.archiveSizes = sizes;
    if (args.includes('--big')) {
      rm(src);
      for (const f of fs.readdirSync(work)) rm(path.join(work, f));
      process.stderr.write('generating the ~6 GB tree ...\n');
      await makeTree(src, 6);
      const bytes = du(src);
      const big: Record<string, Measure & { archiveBytes?: number }> = {};
      for (const format of ['tarzstd', 'zip'] as const) {
        const file = path.join(work, `big.${format}`);
        big[`${format} create`] = { ...measure([NODE, SELF, '--child', 'create', src, file, format]), archiveBytes: fs.statSync(file).size };
        const dst = path.join(work, 'x-big');
        big[`${format} extract`] = measure([NODE, SELF, '--child', 'extract', file, dst]);
        rm(dst);
        rm(file);
      }
      results.big = { treeBytes: bytes, ...big };
    }
    const lines = ['| operation | ours wall | ours peak RSS | reference wall | reference peak RSS | ratio | target |', '|---|---|---|---|---|---|---|'];
    (results.runs as Row[][]).forEach((rows, i) => {
      for (const r of rows) {
        lines.push(`| ${r.name}${runs > 1 ? ` (run ${i + 1})` : ''} | ${r.ours.wallS.toFixed(2)} s | ${r.ours.rssMB.toFixed(0)} MB | ${r.ref.wallS.toFixed(2)} s | ${r.ref.rssMB.toFixed(0)} MB | ${r.ratio.toFixed(2)}× | ≤ ${r.target.toFixed(1)}× ${r.ok ? '✓' : '✗'} |`);
      }
    });
    console.log(`tree: ${(treeBytes / 1e6).toFixed(0)} MB, load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
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

if (process.argv[2] === '--child') await childMain(process.argv.slice(3));
else await main();
