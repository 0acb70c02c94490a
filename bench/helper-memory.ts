/**
 * bench/helper-memory — peak memory and time of the real helper commands (`cachegate cache-archiver`
 * and `cache-extractor`, as a CI job runs them) for each format, on each tree, with the upload and
 * download against a local `cachegate serve` (local backend, URLs from its POST /v1/presign).
 *
 *   node bench/helper-memory.ts [--tree DIR]... [--generated] [--node-modules] [--big] [--dir DIR]
 *                               [--reps N] [--formats zip,tarzstd] [--no-transfer] [--wrapper|--direct]
 *                               [--budget 128MiB] [--breakdown] [--env NAME=VALUE]... [--drop-tree]
 *
 * --generated: bench/archive.ts's tree (20,000 small files, 3 × 100 MiB); --node-modules: a `cp -a`
 * copy of this project's node_modules; --big: the generated tree plus 6 × 1 GiB (~6.87 GB).
 * --wrapper: started through the machine's `node` (bin/cachegate.js hands over to Node 24 in a
 * second process); --direct: `node24 -- bin/cachegate.js` (without the launcher's environment);
 * default: bin/cachegate.js run as a program, as a CI job runs it.
 *
 * Memory is what the container sees: the sum of the resident sets of the command's whole process
 * tree (wrapper + Node 24), sampled every 10 ms from /proc, and each process's own high-water mark
 * (VmHWM, exact) read at the same time; "peak" is max(sampled sum, sum of the HWMs last seen), an
 * upper bound. Runs are repeated --reps times (default 1) interleaved by format; time is the median,
 * peak the maximum. Results: a table on stdout and bench/results/helper-memory-<date>.json.
 *
 * --drop-tree: create every format's archive first, then delete the (generated) tree before the
 * extractions, for --big on a tmpfs that cannot hold the tree, its archives and an extracted copy.
 * --budget: CACHE_HELPER_MEMORY for the commands (src/archive/memory-budget.ts). --env: more
 * environment for the commands (A/B runs of e.g. MALLOC_ARENA_MAX). --breakdown: what the peak is
 * made of (docs/archive.md "What the peak is made of"): /proc/<pid>/smaps of the Node process at its
 * highest sampled RSS, classified (file-backed pages, glibc arenas, thread stacks, other anonymous
 * memory), and process.memoryUsage() / V8's heap spaces at the process's own highest RSS
 * (bench/memory-probe.js, loaded with NODE_OPTIONS=--import).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/cachegate.js');
const NODE24 = process.execPath;
const TOKEN = 'glrt-bench-helper-memory';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const many = (name: string): string[] => args.flatMap((a, i) => (a === name && args[i + 1] ? [args[i + 1]] : []));

interface Run {
  wallS: number;
  peakMB: number;
  load1: number;
  breakdown?: Breakdown;
}

/** MB per kind of mapping, from /proc/<pid>/smaps. */
interface Smaps {
  rssMB: number;
  /** Pages of files (the node binary, shared libraries): RssFile. A cgroup charges them too (page cache), but the kernel can drop them under pressure. */
  fileMB: number;
  /** Anonymous pages: what a cgroup cannot reclaim without swap. */
  anonMB: number;
  brkHeapMB: number;
  /** glibc's per-thread malloc arenas: 64 MiB reservations aligned to 64 MiB. */
  arenasMB: number;
  arenas: number;
  /** Thread stacks: a read-write anonymous mapping right after a guard page (---p) of 4 KiB. */
  stacksMB: number;
  /** Everything else anonymous: V8's heap and code pages, mmapped malloc blocks (ArrayBuffers ≥ the mmap threshold). */
  otherAnonMB: number;
  largestOther: Array<[string, number]>;
}

interface Breakdown {
  smaps?: Smaps;
  probe?: Record<string, unknown>;
}

const MB = (kB: number): number => Math.round(kB / 102.4) / 10;

function classifySmaps(text: string): Smaps {
  const maps: Array<{ start: bigint; end: bigint; perms: string; path: string; rss: number; anon: number }> = [];
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      maps.push({ start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3], path: head[4], rss: 0, anon: 0 });
      continue;
    }
    const f = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (f && maps.length > 0) maps[maps.length - 1][f[1] === 'Rss' ? 'rss' : 'anon'] = Number(f[2]);
  }
  const ARENA = 64n << 20n;
  let rss = 0, file = 0, anon = 0, brk = 0, arenas = 0, nArenas = 0, stacks = 0, other = 0;
  const others: Array<[string, number]> = [];
  maps.forEach((m, i) => {
    rss += m.rss;
    anon += m.anon;
    file += m.rss - m.anon;
    if (m.path.startsWith('/')) return;
    const prev = maps[i - 1];
    const next = maps[i + 1];
    if (m.path === '[heap]') brk += m.anon;
    else if (m.path === '[stack]' || (prev && prev.end === m.start && prev.perms.startsWith('---') && prev.end - prev.start === 4096n && m.path === '')) stacks += m.anon;
    else if (m.path === '' && m.start % ARENA === 0n && next && next.start === m.end && next.perms.startsWith('---') && next.end - m.start === ARENA) {
      arenas += m.anon;
      nArenas++;
    } else {
      other += m.anon;
      others.push([`${(Number(m.end - m.start) / 1048576).toFixed(1)} MiB ${m.perms} ${m.path || 'anon'}`, MB(m.anon)]);
    }
  });
  others.sort((a, b) => b[1] - a[1]);
  return { rssMB: MB(rss), fileMB: MB(file), anonMB: MB(anon), brkHeapMB: MB(brk), arenasMB: MB(arenas), arenas: nArenas, stacksMB: MB(stacks), otherAnonMB: MB(other), largestOther: others.slice(0, 8) };
}

function kb(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) : 0;
}

/** The pids of `pid` and its descendants (Linux /proc/<pid>/task/<tid>/children). */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of fs.readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').split(' ')) if (c.trim()) out.push(Number(c));
      } catch {
        // gone
      }
    }
  }
  return out;
}

async function measure(cmd: string[], cwd: string, env: NodeJS.ProcessEnv, breakdown = false): Promise<Run & { stderr: string }> {
  spawnSync('sync');
  const probeFile = breakdown ? path.join(os.tmpdir(), `cg-memory-probe-${process.pid}-${Date.now()}.json`) : undefined;
  if (probeFile) env = { ...env, CACHEGATE_MEMORY_PROBE: probeFile, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --import ${path.join(ROOT, 'bench/memory-probe.js')}`.trim() };
  let smapsText: string | undefined;
  let smapsAt = 0;
  const load1 = Number(os.loadavg()[0].toFixed(2));
  const t0 = performance.now();
  const child: ChildProcess = spawn(cmd[0], cmd.slice(1), { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const hwm = new Map<number, number>();
  let peakSum = 0;
  const sample = (): void => {
    let sum = 0;
    let biggest = { pid: 0, rss: 0 };
    for (const pid of tree(child.pid!)) {
      try {
        const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        const rss = kb(st, 'VmRSS');
        sum += rss;
        if (rss > biggest.rss) biggest = { pid, rss };
        hwm.set(pid, Math.max(hwm.get(pid) ?? 0, kb(st, 'VmHWM')));
      } catch {
        // exited between the listing and the read
      }
    }
    peakSum = Math.max(peakSum, sum);
    // smaps is slow to read: only when the RSS passed the last snapshot's by 1 MB
    if (breakdown && biggest.rss > smapsAt + 1024) {
      try {
        smapsText = fs.readFileSync(`/proc/${biggest.pid}/smaps`, 'utf8');
        smapsAt = biggest.rss;
      } catch {
        // exited
      }
    }
  };
  const timer = setInterval(sample, 10);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearInterval(timer);
  const wallS = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`${cmd.join(' ')} failed (${code}): ${stderr.slice(-2000)}`);
  const hwmSum = [...hwm.values()].reduce((a, b) => a + b, 0);
  let result: Breakdown | undefined;
  if (breakdown) {
    result = { smaps: smapsText ? classifySmaps(smapsText) : undefined };
    try {
      result.probe = JSON.parse(fs.readFileSync(probeFile!, 'utf8')) as Record<string, unknown>;
      fs.rmSync(probeFile!);
    } catch {
      // no probe output (the command exited early)
    }
  }
  return { wallS, peakMB: Math.max(peakSum, hwmSum) / 1024, load1, stderr, ...(result ? { breakdown: result } : {}) };
}

function rm(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function startService(dir: string): Promise<{ url: string; stop: () => void }> {
  const conf = path.join(dir, 'config.toml');
  fs.writeFileSync(conf, `[[runners]]\nname = "bench"\ntoken = "${TOKEN}"\n[runners.cache]\nType = "local"\n`);
  const child = spawn(NODE24, ['--', BIN, 'serve', '--config', conf, '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CACHEGATE_LOG_LEVEL: 'info', CACHEGATE_LOCAL_SIGNING_KEY: 'bench-helper-memory-signing-key-0123456789' } });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const look = (d: Buffer): void => {
      seen += d.toString();
      const m = /https?:\/\/127\.0\.0\.1:\d+/.exec(seen);
      if (m) resolve(m[0]);
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.on('exit', (c) => reject(new Error(`cachegate serve exited (${c}): ${seen.slice(-1000)}`)));
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

async function presign(service: string, operation: 'upload' | 'download', key: string): Promise<string[]> {
  const r = await fetch(`${service}/v1/presign`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ operation, key, projectId: '1' }) });
  if (!r.ok) throw new Error(`presign ${operation}: ${r.status} ${await r.text()}`);
  const a = (await r.json()) as { helperArgs: string[] };
  // drop the command and its --file: the bench passes its own
  const out: string[] = [];
  for (let i = 1; i < a.helperArgs.length; i++) {
    if (a.helperArgs[i] === '--file') i++;
    else out.push(a.helperArgs[i]);
  }
  return out;
}

async function main(): Promise<void> {
  const base = opt('--dir') ?? os.tmpdir();
  const reps = Number(opt('--reps') ?? 1);
  const formats = (opt('--formats') ?? 'zip,tarzstd').split(',');
  const transfer = !args.includes('--no-transfer');
  const dropTree = args.includes('--drop-tree');
  if (dropTree && reps !== 1) throw new Error('--drop-tree runs each command once (--reps 1)');
  const breakdown = args.includes('--breakdown');
  const budget = opt('--budget');
  const extraEnv = Object.fromEntries(many('--env').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const work = fs.mkdtempSync(path.join(base, 'cg-bench-helper-memory-'));
  // default: the program itself, as a CI job runs it (its shell line sets the helper's malloc settings)
  const launcher = args.includes('--wrapper') ? ['node', BIN] : args.includes('--direct') ? [NODE24, '--', BIN] : [BIN];
  const trees: Array<{ name: string; dir: string; made: boolean }> = many('--tree').map((d) => ({ name: path.basename(d), dir: path.resolve(d), made: false }));
  const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version, cpus: os.availableParallelism(), loadavgAtStart: os.loadavg(), launcher: launcher[0], transfer, reps, budget, env: extraEnv, rows: [] as unknown[] };
  const lines: string[] = ['| tree | command | median time | peak RSS (process tree) | load |', '|---|---|---|---|---|'];
  let service: { url: string; stop: () => void } | undefined;
  try {
    if (args.includes('--node-modules')) {
      const dir = path.join(work, 'node_modules-copy');
      spawnSync('cp', ['-a', path.join(ROOT, 'node_modules'), dir]);
      trees.push({ name: 'node_modules', dir, made: true });
    }
    for (const [flag, big] of [['--generated', 0], ['--big', 6]] as const) {
      if (!args.includes(flag)) continue;
      const dir = path.join(work, flag.slice(2));
      process.stderr.write(`generating ${dir} ...\n`);
      spawnSync(NODE24, [path.join(ROOT, 'bench/archive.ts'), '--child', 'tree', dir, String(big)], { stdio: 'inherit' });
      trees.push({ name: flag.slice(2), dir, made: true });
    }
    if (trees.length === 0) throw new Error('no tree: give --tree DIR, --generated, --node-modules or --big');
    if (transfer) service = await startService(work);
    // a bench stopped midway must not leave its server and scratch tree behind
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => (service?.stop(), rm(work), process.exit(130)));
    const env = { ...process.env, CACHEGATE_LOG_LEVEL: 'error', ...extraEnv, ...(budget ? { CACHE_HELPER_MEMORY: budget } : {}) };
    for (const t of trees) {
      spawnSync('sh', ['-c', 'tar -cf - . | cat > /dev/null'], { cwd: t.dir }); // warm the page cache
      const runs = new Map<string, Run[]>();
      const record = (name: string, r: Run): void => {
        runs.set(name, [...(runs.get(name) ?? []), r]);
        process.stderr.write(`${t.name} ${name}: ${r.wallS.toFixed(2)} s ${r.peakMB.toFixed(0)} MB (load ${r.load1})\n`);
        if (r.breakdown) process.stderr.write(`${JSON.stringify(r.breakdown)}\n`);
      };
      const fileOf = (format: string): string => path.join(work, `cache-${format}.${format === 'tarzstd' ? 'tar.zst' : 'zip'}`);
      const create = async (format: string): Promise<void> => {
        const file = fileOf(format);
        rm(file);
        const up = service ? await presign(service.url, 'upload', `bench-${t.name}-${format}`) : [];
        record(`${format} cache-archiver${service ? ' + upload' : ''}`, await measure([...launcher, 'cache-archiver', '--file', file, '--path', '.', ...up], t.dir, { ...env, CACHE_COMPRESSION_FORMAT: format, CACHE_COMPRESSION_LEVEL: 'fast' }, breakdown));
        if (service) rm(file); // the extractor downloads it again
      };
      const extract = async (format: string, rep: number): Promise<void> => {
        const file = fileOf(format);
        const down = service ? await presign(service.url, 'download', `bench-${t.name}-${format}`) : [];
        const dst = path.join(work, `x-${format}-${rep}`);
        fs.mkdirSync(dst);
        record(`${format} cache-extractor${service ? ' + download' : ''}`, await measure([...launcher, 'cache-extractor', '--file', file, ...down], dst, env, breakdown));
        rm(dst);
        rm(file);
      };
      if (dropTree) {
        // every archive first, then the tree goes before the extractions: tree, archives and an
        // extracted copy of the 6.87 GB tree do not fit the tmpfs together
        for (const format of formats) await create(format);
        if (t.made) rm(t.dir);
        for (const format of formats) await extract(format, 0);
      } else {
        for (let rep = 0; rep < reps; rep++) {
          for (const format of formats) {
            await create(format);
            await extract(format, rep);
          }
        }
      }
      for (const [name, rs] of runs) {
        const row = { tree: t.name, command: name, medianS: median(rs.map((r) => r.wallS)), peakMB: Math.max(...rs.map((r) => r.peakMB)), runs: rs };
        (results.rows as unknown[]).push(row);
        lines.push(`| ${t.name} | ${name} | ${row.medianS.toFixed(2)} s | ${row.peakMB.toFixed(0)} MB | ${rs.map((r) => r.load1).join(', ')} |`);
      }
      if (t.made) rm(t.dir);
    }
  } finally {
    service?.stop();
    rm(work);
  }
  results.loadavgAtEnd = os.loadavg();
  console.log(lines.join('\n'));
  const out = path.join(ROOT, 'bench/results', `helper-memory-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.log(`written ${path.relative(process.cwd(), out)}`);
}

await main();
