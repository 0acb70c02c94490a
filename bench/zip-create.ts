/**
 * bench/zip-create — our zip creation (native deflate addon and the node:zlib fallback) against
 * GitLab's helper rebuilt on its own libraries (bench/gitlab-ref, fastzip + klauspost flate), on
 * one tree, interleaved, medians. Peak RSS also for an empty directory: the zip path's own share is
 * the difference.
 *
 *   node bench/zip-create.ts --tree DIR [--reps N] [--levels fast,default] [--ref BIN] [--no-fallback]
 *
 * --ref: a built gitlab-ref (default: built from bench/gitlab-ref into a temp dir by its build.ts,
 * GOPATH mode, offline). Wall time and peak RSS from /usr/bin/time -v.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { measure } from './archive.ts';
import { buildGitlabRef } from './gitlab-ref/build.ts';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');

if (process.argv[2] === '--child') {
  const [dir, out, level] = process.argv.slice(3);
  const { selectFiles, createArchiveFile, limitYoungGeneration } = await import('../src/archive/index.ts');
  limitYoungGeneration(); // as the helper commands do
  const sel = await selectFiles({ cwd: dir, paths: ['.'] });
  await createArchiveFile(sel.entries, out, 'zip', level as 'fast' | 'default');
  process.exit(0);
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}

const tree = path.resolve(arg('--tree', ''));
if (!fs.existsSync(tree)) throw new Error('--tree DIR is required');
const reps = Number(arg('--reps', '3'));
const levels = arg('--levels', 'fast,default').split(',');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-create-'));

const ref = arg('--ref', '') || buildGitlabRef(work);

interface Run { wall: number; cpu: number; rss: number; size: number; load: number }

function run(cmd: string[], env: NodeJS.ProcessEnv, out: string): Run {
  const m = measure(cmd, undefined, env);
  const size = fs.existsSync(out) ? fs.statSync(out).size : 0;
  fs.rmSync(out, { force: true });
  return { wall: m.wallS, cpu: m.cpuS, rss: m.rssMB, size, load: m.load1 };
}

const node = process.execPath;
const sides: Record<string, (dir: string, level: string, out: string) => Run> = {
  native: (dir, level, out) => run([node, SELF, '--child', dir, out, level], { CACHEGATE_NATIVE_DEFLATE: '1' }, out),
  zlib: (dir, level, out) => run([node, SELF, '--child', dir, out, level], { CACHEGATE_NATIVE_DEFLATE: '0' }, out),
  gitlab: (dir, level, out) => run([ref, 'zip-create', dir, out, level], {}, out),
};
if (process.argv.includes('--no-fallback')) delete sides.zlib;

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const empty = fs.mkdtempSync(path.join(work, 'empty-'));
const out = path.join(work, 'out.zip');
const rows: string[] = [];
const results: Record<string, unknown> = { tree, reps, cpus: os.availableParallelism(), date: new Date().toISOString() };
for (const level of levels) {
  const all: Record<string, Run[]> = {};
  const names = Object.keys(sides);
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? names : [...names].reverse();
    for (const n of order) (all[n] ??= []).push(sides[n](tree, level, out));
  }
  const base: Record<string, number> = {};
  for (const n of ['native', 'gitlab']) base[n] = median([0, 1, 2].map(() => sides[n](empty, level, out).rss));
  const refWall = median(all.gitlab.map((r) => r.wall));
  const refSize = all.gitlab[0].size;
  for (const n of names) {
    const wall = median(all[n].map((r) => r.wall));
    const rss = median(all[n].map((r) => r.rss));
    const b = base[n] ?? base.native;
    rows.push(`${level.padEnd(8)} ${n.padEnd(7)} wall ${wall.toFixed(2)} s (${all[n].map((r) => r.wall.toFixed(2)).join(' ')})  x${(wall / refWall).toFixed(2)}  cpu ${median(all[n].map((r) => r.cpu)).toFixed(2)} s  ` +
      `peak ${rss.toFixed(0)} MB (empty dir ${b.toFixed(0)}, zip path ${(rss - b).toFixed(0)})  size ${(all[n][0].size / 1e6).toFixed(1)} MB x${(all[n][0].size / refSize).toFixed(3)}  load ${all[n].map((r) => r.load.toFixed(1)).join(' ')}`);
    results[`${level}/${n}`] = { wall, rss, emptyRss: b, size: all[n][0].size, runs: all[n] };
  }
}
console.log(rows.join('\n'));
fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(ROOT, 'bench/results', `zip-create-${path.basename(tree)}-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')}.json`), JSON.stringify(results, null, 2));
fs.rmSync(work, { recursive: true, force: true });
