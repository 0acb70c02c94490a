/**
 * bench/zip-timeline — where one zip creation's wall time goes (docs/archive.md "Session 8"):
 * module loading, selection, then the native addon's jobs on libuv's threadpool (packFiles: small-file
 * batches, packBlockAt: large files' blocks): when the first and last start and end, and how long
 * at least one and at least two were in flight (two CPUs: time with fewer than two in flight is a
 * core idle, unless the main thread works). Our CPU time at the end.
 *
 *   node bench/zip-timeline.ts --tree DIR [--level fast|default] [--out FILE] [--reps N]
 *
 * --tree: the directory to archive (e.g. bench/helper-vs-gitlab.ts's `gen` tree kept with --keep,
 * or one made by bench/archive.ts's makeTree). Runs in this process, as cache-archiver does
 * (selectFiles + createArchiveFile), without the CLI's start-up.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const tree = path.resolve(arg('--tree', ''));
const level = arg('--level', 'fast') as 'fast' | 'default';
const out = path.resolve(arg('--out', '/tmp/zip-timeline.zip'));
const reps = Number(arg('--reps', '1'));

const t0 = performance.now();
const { selectFiles, createArchiveFile, limitYoungGeneration } = await import('../src/archive/index.ts');
const { nativeDeflate } = await import('../src/archive/native-deflate.ts');
limitYoungGeneration(); // as the helper commands do
const nd = nativeDeflate();
if (!nd) throw new Error('the native addon is not built (npm run install) or CACHEGATE_NATIVE_DEFLATE=0');
const tImport = performance.now();

type Span = [start: number, end: number];
const spans = new Map<string, Span[]>();
for (const k of ['packFiles', 'packBlockAt'] as const) {
  const orig = nd[k].bind(nd) as (...a: unknown[]) => Promise<unknown>;
  spans.set(k, []);
  (nd as unknown as Record<string, unknown>)[k] = (...a: unknown[]): Promise<unknown> => {
    const s = performance.now();
    const p = orig(...a);
    p.then(() => spans.get(k)!.push([s, performance.now()]), () => {});
    return p;
  };
}

const ms = (x: number): string => `${x.toFixed(0)} ms`;
for (let rep = 0; rep < reps; rep++) {
  for (const s of spans.values()) s.length = 0;
  const cpu0 = process.cpuUsage();
  const tSel0 = performance.now();
  const sel = await selectFiles({ cwd: path.dirname(tree), paths: [path.basename(tree)] });
  const tSel = performance.now();
  await createArchiveFile(sel.entries, out, 'zip', level, {});
  const tEnd = performance.now();
  const cpu = process.cpuUsage(cpu0);
  console.log(`run ${rep + 1}: ${rep === 0 ? `process start -> script ${ms(t0)}, imports ${ms(tImport - t0)}, ` : ''}select ${ms(tSel - tSel0)} (${sel.entries.length} entries), write ${ms(tEnd - tSel)}, CPU ${ms(cpu.user / 1000)} user + ${ms(cpu.system / 1000)} sys`);
  for (const [k, js] of spans) {
    if (js.length === 0) continue;
    const events = js.flatMap(([s, e]) => [[s, 1], [e, -1]] as const).sort((a, b) => a[0] - b[0]);
    let inFlight = 0;
    let prev = 0;
    let one = 0;
    let two = 0;
    for (const [t, d] of events) {
      if (inFlight >= 1) one += t - prev;
      if (inFlight >= 2) two += t - prev;
      inFlight += d;
      prev = t;
    }
    const first = Math.min(...js.map((j) => j[0])) - tSel;
    const last = Math.max(...js.map((j) => j[1])) - tSel;
    console.log(`  ${k}: ${js.length} jobs from ${ms(first)} to ${ms(last)} after selection; >= 1 in flight ${ms(one)}, >= 2 ${ms(two)}`);
  }
}
