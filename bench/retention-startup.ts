/**
 * Start-up of a retained local store: the time to rebuild the index from a directory of N objects
 * (default 100,000), cold in the sense that the index is built from nothing (the page cache holds
 * the directories, as on a restarted service). Usage: node bench/retention-startup.ts [N] [DIR]
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RetainedStore } from '../adapters/local/retention.ts';

const n = Number(process.argv[2] ?? 100_000);
const dir = process.argv[3] ?? join(tmpdir(), `cachegate-startup-${n}`);
const root = join(dir, 'objects');
const header = (name: string): Buffer => {
  const h = Buffer.from(JSON.stringify({ objectName: name, metadata: {} }));
  const pre = Buffer.alloc(8);
  pre.write('CGB1');
  pre.writeUInt32BE(h.length, 4);
  return Buffer.concat([pre, h, Buffer.alloc(64)]);
};
const t0 = performance.now();
for (let i = 0; i < n; i += 500) {
  await Promise.all(Array.from({ length: Math.min(500, n - i) }, async (_, j) => {
    const name = `runner/abcdefghi/project/${(i + j) % 50}/key-${i + j}`;
    const key = createHash('sha256').update(name).digest('hex');
    await mkdir(join(root, key.slice(0, 2)), { recursive: true });
    await writeFile(join(root, key.slice(0, 2), key), header(name));
  }));
}
process.stdout.write(`created ${n} objects in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
for (let run = 1; run <= 3; run++) {
  const s = new RetainedStore(dir, { maxSize: 1e15, maxAge: 0 });
  const t = performance.now();
  await s.open();
  const ms = performance.now() - t;
  process.stdout.write(`run ${run}: index of ${s.index.objects} objects (${s.index.storedBytes} bytes) built in ${ms.toFixed(0)} ms, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB\n`);
  await s.close();
}
if (process.argv[3] === undefined) await rm(dir, { recursive: true, force: true });
