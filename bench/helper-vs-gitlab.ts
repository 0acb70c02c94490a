/**
 * bench/helper-vs-gitlab — our helper commands, run as users run them (`cachegate cache-archiver` /
 * `cache-extractor` with CACHE_COMPRESSION_FORMAT / CACHE_COMPRESSION_LEVEL), against GitLab Runner's
 * helper archive code rebuilt on its own libraries (bench/gitlab-ref: fastzip's scheme on klauspost
 * flate, archive/tar + klauspost zstd), with Info-ZIP zip/unzip and GNU tar + zstd as textbook rows.
 *
 *   npm run bench:helper -- [--trees npm,gen] [--ops zip-fast,zip-default,zip-extract,tarzstd-fast,tarzstd-extract]
 *                           [--reps N] [--big] [--big-reps N] [--no-textbook] [--ref BIN] [--ours CHECKOUT] [--dir DIR] [--keep]
 *
 * Trees: `npm` is a `cp -a` copy of this project's node_modules (hard links kept: node_modules/node's
 * 126 MB binary has two names); `gen` is bench/archive.ts's generated tree; --big adds its ~6.87 GB
 * tree (6 × 1 GiB more), run after the others are deleted, --big-reps times (default 1).
 * Every tool runs --reps times (default 3) per operation, interleaved A B C, C B A, …; medians of wall
 * time, peak RSS the maximum over the runs (both from /usr/bin/time -v). Each tool extracts the
 * archive it made at the `fast` level; every extracted tree is compared with the source (diff -r).
 * Page cache and dirty pages are settled as bench/archive.ts does (sync before every command, the
 * source read once before, extractions away from large deletions).
 * --ref: an already built reference (node bench/gitlab-ref/build.ts DIR); --ours: another cachegate
 * checkout to run as "ours" (its bin/cachegate.js and node_modules/node), e.g. a branch in progress;
 * the npm tree is still this checkout's node_modules.
 * Results: a table on stdout and bench/results/helper-vs-gitlab-<date>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { du, makeTree, measure, median, rm, settle, type Measure } from './archive.ts';
import { buildGitlabRef } from './gitlab-ref/build.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

/** The commands compared: GitLab's (the built reference) and ours (a cachegate checkout's). */
interface Programs {
  ref: string;
  /** The Node 24 users get from the checkout's `node` package, not whichever node runs this script. */
  node: string;
  cli: string;
}

function programsOf(checkout: string, ref: string): Programs {
  const node = path.join(checkout, 'node_modules/node/bin/node');
  return { ref, node: fs.existsSync(node) ? node : process.execPath, cli: path.join(checkout, 'bin/cachegate.js') };
}

type Tool = 'ours' | 'gitlab' | 'textbook';
type Format = 'zip' | 'tarzstd';
type Level = 'fast' | 'default';
interface Op {
  id: string;
  format: Format;
  /** A create operation's level; an extraction extracts the `fast` archive. */
  level?: Level;
}
const OPS: Op[] = [
  { id: 'zip-fast', format: 'zip', level: 'fast' },
  { id: 'zip-default', format: 'zip', level: 'default' },
  { id: 'zip-extract', format: 'zip' },
  { id: 'tarzstd-fast', format: 'tarzstd', level: 'fast' },
  { id: 'tarzstd-extract', format: 'tarzstd' },
];

/** The tree to archive: `name` inside the job directory `job`, archived as `--path name`. */
interface Tree {
  id: string;
  job: string;
  name: string;
}

// Ours runs as a CI job runs it: bin/cachegate.js as a program, whose shell line execs the
// checkout's Node 24 with the helper's malloc setting (MALLOC_MMAP_THRESHOLD_); `node bin/cachegate.js`
// measured a process users never run.
function createCmd(tool: Tool, p: Programs, format: Format, level: Level, tree: Tree, out: string): string[] {
  if (tool === 'ours') return ['env', `CACHE_COMPRESSION_FORMAT=${format}`, `CACHE_COMPRESSION_LEVEL=${level}`, p.cli, 'cache-archiver', '--file', out, '--path', tree.name];
  if (tool === 'gitlab') return [p.ref, `${format}-create`, tree.job, out, level, tree.name];
  if (format === 'zip') return ['zip', '-r', '-q', '-y', level === 'fast' ? '-1' : '-6', out, tree.name];
  return ['tar', '-I', level === 'fast' ? 'zstd -1 -T0' : 'zstd -3 -T0', '-cf', out, tree.name];
}

function extractCmd(tool: Tool, p: Programs, format: Format, archive: string, dest: string): string[] {
  if (tool === 'ours') return [p.cli, 'cache-extractor', '--file', archive];
  if (tool === 'gitlab') return [p.ref, `${format}-extract`, archive, dest];
  if (format === 'zip') return ['unzip', '-q', archive, '-d', dest];
  return ['tar', '-I', 'zstd', '-xf', archive, '-C', dest];
}

interface ToolResult {
  runs: Measure[];
  medianS: number;
  peakMB: number;
  /** create: the archive's size. */
  archiveBytes?: number;
  /** extract: whether the extracted tree equals the source (diff -r --no-dereference), and how many of its files have more than one name. */
  matchesSource?: boolean;
  diffHead?: string;
  hardLinkedFiles?: number;
}
interface Row {
  tree: string;
  op: string;
  tools: Partial<Record<Tool, ToolResult>>;
  /** ours / GitLab's libraries, medians of wall time. */
  ratio: number;
}

function summarize(runs: Measure[]): ToolResult {
  return { runs, medianS: median(runs.map((m) => m.wallS)), peakMB: Math.max(...runs.map((m) => m.rssMB)) };
}

/** Order of the tools in repetition i: A B C, C B A, A B C, … so that no tool always runs first or last. */
const orderFor = (tools: Tool[], i: number): Tool[] => (i % 2 === 0 ? tools : [...tools].reverse());

function countHardLinked(dir: string): number {
  const r = spawnSync('find', [dir, '-type', 'f', '-links', '+1'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return r.stdout.split('\n').filter(Boolean).length;
}

function benchTree(tree: Tree, work: string, p: Programs, ops: Op[], tools: Tool[], reps: number, big: boolean): Row[] {
  const rows: Row[] = [];
  const archive = (tool: Tool, format: Format, level: Level): string => path.join(work, 'archives', `${tree.id}-${tool}-${level}.${format === 'zip' ? 'zip' : 'tar.zst'}`);
  fs.mkdirSync(path.join(work, 'archives'), { recursive: true });
  const create = (tool: Tool, format: Format, level: Level): Measure => {
    const out = archive(tool, format, level);
    rm(out); // else our archiver would find the archive up to date and skip it
    return measure(createCmd(tool, p, format, level, tree, out), tree.job);
  };
  // Warm the page cache (see bench/archive.ts: not `tar -cf /dev/null`, which reads nothing).
  spawnSync('sh', ['-c', `tar -cf - ${JSON.stringify(tree.name)} | cat > /dev/null`], { cwd: tree.job });

  for (const op of ops) {
    const byTool: Partial<Record<Tool, Measure[]>> = {};
    const results: Partial<Record<Tool, ToolResult>> = {};
    if (op.level) {
      const level = op.level;
      for (let i = 0; i < reps; i++) for (const t of orderFor(tools, i)) (byTool[t] ??= []).push(create(t, op.format, level));
      for (const t of tools) results[t] = { ...summarize(byTool[t]!), archiveBytes: fs.statSync(archive(t, op.format, level)).size };
      // on the big tree only the fast archives (for extraction) are kept, for the disk's sake
      if (big && level !== 'fast') for (const t of tools) rm(archive(t, op.format, level));
    } else {
      for (const t of tools) if (!fs.existsSync(archive(t, op.format, 'fast'))) create(t, op.format, 'fast');
      const dests: string[] = [];
      const checked: Partial<Record<Tool, Pick<ToolResult, 'matchesSource' | 'diffHead' | 'hardLinkedFiles'>>> = {};
      const check = (t: Tool, dest: string): void => {
        const d = spawnSync('diff', ['-r', '--no-dereference', path.join(tree.job, tree.name), path.join(dest, tree.name)], { encoding: 'utf8', maxBuffer: 64 << 20 });
        checked[t] = { matchesSource: d.status === 0, diffHead: d.status === 0 ? undefined : d.stdout.split('\n').slice(0, 5).join('\n'), hardLinkedFiles: countHardLinked(path.join(dest, tree.name)) };
      };
      settle();
      for (let i = 0; i < reps; i++) {
        for (const t of orderFor(tools, i)) {
          const dest = path.join(work, `x-${tree.id}-${t}-${i}`);
          fs.mkdirSync(dest);
          dests.push(dest);
          (byTool[t] ??= []).push(measure(extractCmd(t, p, op.format, archive(t, op.format, 'fast'), dest), dest));
          if (i === 0) check(t, dest);
          // 6.87 GB a copy: deleted at once, and the next extraction waits for the deleted inodes to age
          if (big) {
            rm(dest);
            settle();
          }
        }
      }
      for (const d of dests) rm(d);
      for (const t of tools) results[t] = { ...summarize(byTool[t]!), ...checked[t] };
      if (big) for (const t of tools) rm(archive(t, op.format, 'fast'));
    }
    const row: Row = { tree: tree.id, op: op.id, tools: results, ratio: results.ours!.medianS / results.gitlab!.medianS };
    rows.push(row);
    const fmt = (t: Tool): string => (results[t] ? `${t} ${results[t]!.runs.map((m) => m.wallS.toFixed(2)).join(' ')} s (${results[t]!.peakMB.toFixed(0)} MB)` : '');
    process.stderr.write(`  ${tree.id} ${op.id}: ${tools.map(fmt).join(', ')} → ${row.ratio.toFixed(2)}×\n`);
  }
  return rows;
}

function table(rows: Row[], reps: number, bigReps: number): string {
  const s = (r: ToolResult | undefined): string => (r ? `${r.medianS.toFixed(2)} s` : '–');
  const mb = (r: ToolResult | undefined): string => (r ? `${r.peakMB.toFixed(0)} MB` : '–');
  const size = (r: ToolResult | undefined): string => (r?.archiveBytes !== undefined ? (r.archiveBytes / 1e6).toFixed(1) : '–');
  const ok = (r: ToolResult | undefined): string => (r?.matchesSource === undefined ? '' : r.matchesSource ? '' : ' ≠src');
  return [
    `| tree | operation | ours (median of ${reps}${bigReps === reps ? '' : `, big: ${bigReps}`}) | GitLab's libraries | ratio | ours peak RSS | GitLab peak RSS | textbook | textbook RSS | archive MB ours / GitLab / textbook |`,
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const { ours, gitlab, textbook } = r.tools;
      return `| ${r.tree} | ${r.op} | ${s(ours)}${ok(ours)} | ${s(gitlab)}${ok(gitlab)} | ${r.ratio.toFixed(2)}× | ${mb(ours)} | ${mb(gitlab)} | ${s(textbook)}${ok(textbook)} | ${mb(textbook)} | ${size(ours)} / ${size(gitlab)} / ${size(textbook)} |`;
    }),
  ].join('\n');
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').trim().split('\n')[0];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const list = <T extends string>(name: string, all: readonly T[]): T[] => {
    const v = opt(name);
    if (!v) return [...all];
    const picked = v.split(',').map((x) => x.trim()) as T[];
    const bad = picked.filter((x) => !all.includes(x));
    if (bad.length > 0) throw new Error(`${name}: unknown ${bad.join(', ')}; choose from ${all.join(', ')}`);
    return picked;
  };
  const reps = Number(opt('--reps') ?? 3);
  const bigReps = Number(opt('--big-reps') ?? 1);
  if (!(reps >= 1) || !(bigReps >= 1)) throw new Error('--reps and --big-reps must be at least 1');
  const treeIds = list('--trees', ['npm', 'gen'] as const);
  const opIds = list('--ops', OPS.map((o) => o.id));
  const ops = OPS.filter((o) => opIds.includes(o.id));
  const tools: Tool[] = args.includes('--no-textbook') ? ['ours', 'gitlab'] : ['ours', 'gitlab', 'textbook'];
  const work = fs.mkdtempSync(path.join(opt('--dir') ?? os.tmpdir(), 'cg-bench-helper-'));
  try {
    const p = programsOf(path.resolve(opt('--ours') ?? ROOT), opt('--ref') ? path.resolve(opt('--ref')!) : buildGitlabRef(work));
    const results: Record<string, unknown> = {
      date: new Date().toISOString(),
      ours: p.cli,
      node: version(p.node, ['--version']),
      go: version('go', ['version']),
      klauspostCompress: version('dpkg-query', ['-W', '-f', '${Version}', 'golang-github-klauspost-compress-dev']),
      cpus: os.availableParallelism(),
      loadavgAtStart: os.loadavg(),
      method: `${reps} runs per tool (--big: ${bigReps}), interleaved A B C / C B A; medians of wall time, peak RSS the maximum (/usr/bin/time -v); each tool extracts its own fast archive into a new directory, compared with the source`,
      trees: {} as Record<string, { bytes: number; files: number }>,
    };
    const rows: Row[] = [];
    const describe = (t: Tree): void => {
      spawnSync('sync');
      const files = Number(spawnSync('sh', ['-c', `find ${JSON.stringify(t.name)} -type f | wc -l`], { cwd: t.job, encoding: 'utf8' }).stdout.trim());
      (results.trees as Record<string, unknown>)[t.id] = { bytes: du(path.join(t.job, t.name)), files, hardLinkedFiles: countHardLinked(path.join(t.job, t.name)) };
    };
    for (const id of treeIds) {
      const job = path.join(work, id);
      fs.mkdirSync(job);
      const tree: Tree = id === 'npm' ? { id, job, name: 'node_modules' } : { id, job, name: 'tree' };
      process.stderr.write(`preparing the ${id} tree in ${job} ...\n`);
      if (id === 'npm') {
        const r = spawnSync('cp', ['-a', path.join(ROOT, 'node_modules'), path.join(job, 'node_modules')]);
        if (r.status !== 0) throw new Error(`cp -a node_modules failed: ${r.stderr}`);
      } else await makeTree(path.join(job, tree.name), 0);
      describe(tree);
      rows.push(...benchTree(tree, work, p, ops, tools, reps, false));
      if (args.includes('--big')) rm(job);
    }
    if (args.includes('--big')) {
      rm(path.join(work, 'archives'));
      const tree: Tree = { id: 'big', job: path.join(work, 'big'), name: 'tree' };
      process.stderr.write('generating the ~6.87 GB tree ...\n');
      await makeTree(path.join(tree.job, tree.name), 6);
      describe(tree);
      rows.push(...benchTree(tree, work, p, ops, tools, bigReps, true));
    }
    results.rows = rows;
    results.loadavgAtEnd = os.loadavg();
    const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
    console.log(`load average ${load(results.loadavgAtStart as number[])} at start, ${load(os.loadavg())} at the end; ${os.availableParallelism()} CPUs; ${results.go}; klauspost/compress ${results.klauspostCompress}`);
    for (const [id, t] of Object.entries(results.trees as Record<string, { bytes: number; files: number; hardLinkedFiles: number }>)) {
      console.log(`tree ${id}: ${(t.bytes / 1e6).toFixed(0)} MB, ${t.files} files (${t.hardLinkedFiles} with more than one name)`);
    }
    console.log(table(rows, reps, args.includes('--big') ? bigReps : reps));
    const mismatched = rows.flatMap((r) => Object.entries(r.tools).filter(([, x]) => x?.matchesSource === false).map(([t, x]) => `${r.tree} ${r.op} ${t}:\n${x!.diffHead}`));
    if (mismatched.length > 0) console.log(`extracted trees that differ from their source (≠src):\n${mismatched.join('\n')}`);
    const dir = path.join(import.meta.dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `helper-vs-gitlab-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    console.log(`written ${path.relative(process.cwd(), file)}`);
  } finally {
    if (!args.includes('--keep')) rm(work);
  }
}

await main();
