/**
 * Loaded into the `cachegate serve` child of bench/s3api.ts with `--import` (never by the service
 * itself): every 5 s it appends one JSON line to $CACHEGATE_BENCH_MEMLOG with process.memoryUsage()
 * split into heap / external / arrayBuffers, the live handles by type, glibc's split of the native
 * heap (mallinfo2 through the native/sigv4 addon: `malloc` in use / free but held / mmapped) and the
 * kernel's (/proc/self/smaps_rollup; the resident part of the brk heap, i.e. the main arena), V8's
 * resident heap by space, so that a climbing RSS can be told apart: V8 heap, Buffers,
 * sockets held, native memory in use (uordblks grows: something holds it), or the allocator keeping
 * freed memory (fordblks grows while uordblks stays flat: fragmentation/retention).
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { sigv4Addon } from '../src/sign/native-sigv4.ts';

const file = process.env.CACHEGATE_BENCH_MEMLOG;
if (file) {
  const start = Date.now();
  const mib = (n: number): number => Math.round((n / 2 ** 20) * 10) / 10;
  const mallocStats = sigv4Addon()?.mallocStats; // absent until built (npm run install): the sample goes without it
  const smaps = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const m of readFileSync('/proc/self/smaps_rollup', 'utf8').matchAll(/^(Rss|Anonymous|Private_Dirty):\s+(\d+) kB/gm)) out[m[1]] = mib(Number(m[2]) * 1024);
    // The main malloc arena is the [heap] (brk) mapping: its resident part, against mallinfo2's arena size.
    const heap = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps', 'utf8'));
    if (heap) out.brkHeapRss = mib(Number(heap[1]) * 1024);
    return out;
  };
  const sample = (): void => {
    const m = process.memoryUsage();
    const handles: Record<string, number> = {};
    for (const h of process.getActiveResourcesInfo()) handles[h] = (handles[h] ?? 0) + 1;
    const heap = mallocStats?.();
    const malloc = heap ? Object.fromEntries(Object.entries(heap).map(([k, v]) => [k, mib(v)])) : undefined;
    // V8's committed heap (heapTotal) against what of it is resident, by space: [size, used, resident] MiB.
    const v8 = { physical: mib(getHeapStatistics().total_physical_size), spaces: Object.fromEntries(getHeapSpaceStatistics().map((x) => [x.space_name.replace(/_space$/, ''), [mib(x.space_size), mib(x.space_used_size), mib(x.physical_space_size)]])) };
    appendFileSync(file, JSON.stringify({ s: Math.round((Date.now() - start) / 1000), rss: mib(m.rss), heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers), malloc, v8, smaps: smaps(), flags: process.execArgv.join(' '), handles }) + '\n');
  };
  setInterval(sample, 5000).unref();
}
