/**
 * Loaded into the `cachegate serve` child of bench/s3api.ts with `--import` (never by the service
 * itself): every 5 s it appends one JSON line to $CACHEGATE_BENCH_MEMLOG with process.memoryUsage()
 * split into heap / external / arrayBuffers and the live handles by type, so that a climbing RSS can
 * be told apart: V8 heap, Buffers, sockets held, or the allocator (RSS growing while all of these stay flat).
 */
import { appendFileSync } from 'node:fs';

const file = process.env.CACHEGATE_BENCH_MEMLOG;
if (file) {
  const start = Date.now();
  const mib = (n: number): number => Math.round((n / 2 ** 20) * 10) / 10;
  const sample = (): void => {
    const m = process.memoryUsage();
    const handles: Record<string, number> = {};
    for (const h of process.getActiveResourcesInfo()) handles[h] = (handles[h] ?? 0) + 1;
    appendFileSync(file, JSON.stringify({ s: Math.round((Date.now() - start) / 1000), rss: mib(m.rss), heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers), handles }) + '\n');
  };
  setInterval(sample, 5000).unref();
}
